"""``hyso train`` with ``finetune.lora``: adapter-only checkpoints, exact resume after a
SIGKILL, the exported adapters, and ``hyso generate --adapter``."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
import torch
from resume_helpers import WRAPPER, final_weights, metric_rows, only_run, run_hyso

from hyso.core.config import load_config
from hyso.core.models.lora import LoRASettings, apply_lora, is_lora_key
from hyso.core.storage import CheckpointConfig, CheckpointManager, load_manifest, set_global_seed
from hyso.core.train.cli import main
from hyso.core.train.commands._model import (
    add_adapter,
    build_model,
    load_model_folder,
    load_run,
)
from hyso.core.train.commands.train import make_optimizer
from hyso.core.train.finetune import checkpoint_module
from hyso.core.train.settings import resolve_settings

REPO = Path(__file__).resolve().parents[1]

# Dropout on the adapter path: the resumed run must also restore the RNG exactly.
TINY = """
model: {{name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}}
finetune:
  lora: {{r: 2, alpha: 4, dropout: 0.1, targets: [q, v, down]}}
training:
  seed: 0
  device: cpu
  lr: 0.01
  batch_size: 4
  grad_accum_steps: 2
  epochs: 1
  log_every: 1
  eval_every: 2
  save_every: 2
  max_steps: 8
  progress_bar: false
  num_threads: 1
data:
  name: python-stdlib
  max_bytes: 20000
  vocab_size: 300
  cache_dir: {cache}
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_lora")
    (root / "tiny.yaml").write_text(TINY.format(cache=root / "cache"), encoding="utf-8")
    (root / "wrapper.py").write_text(WRAPPER, encoding="utf-8")
    done = run_hyso(root, "tiny.yaml", "--runs-root", "full", "--sample-tokens", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    (root / "full.out").write_text(done.stdout + done.stderr, encoding="utf-8")
    return root


def test_a_lora_run_trains_and_checkpoints_the_adapters_only(space: Path) -> None:
    out = (space / "full.out").read_text(encoding="utf-8")
    assert "LoRA r=2 on q, v, down: trainable " in out
    run_dir = only_run(space / "full")
    weights = final_weights(run_dir)
    # one layer: q A (2, 32) B (32, 2), v A (2, 32) B (32, 2), down A (2, 128) B (32, 2)
    assert sorted(weights) == sorted(
        f"blocks.0.{p}.lora_{ab}.{t}"
        for p, t in (("attn.qkv", "q"), ("attn.qkv", "v"), ("mlp.down", "down"))
        for ab in "AB"
    )
    assert weights["blocks.0.mlp.down.lora_B.down"].abs().sum() > 0  # trained
    mgr = CheckpointManager(CheckpointConfig.from_dir(directory=run_dir / "checkpoints"))
    ckpt = mgr.load_latest()
    assert ckpt is not None and ckpt.extra["lora"]["r"] == 2
    # AdamW keeps two moments for each of the 6 adapter tensors, nothing for the base.
    assert len(ckpt.optimizer_state["state"]) == 6
    adapter = run_dir / "artifacts" / "adapter"
    assert (adapter / "lora.json").is_file() and (adapter / "lora.safetensors").is_file()
    assert f"adapters (best): {adapter}" in out


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_lora_run_resumes_exactly(space: Path) -> None:
    # backward 9: the first micro-batch of step 5 (last checkpoint: step 4).
    killed = run_hyso(
        space, "tiny.yaml", "--runs-root", "killed", "--sample-tokens", "0", kill=("backward", 9)
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run_dir = only_run(space / "killed")
    resumed = run_hyso(space, "--resume", str(run_dir), "--sample-tokens", "0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_manifest(run_dir / "manifest.json").status == "finished"
    a, b = final_weights(only_run(space / "full")), final_weights(run_dir)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_rows(run_dir) == metric_rows(only_run(space / "full"))


def test_resuming_with_other_adapters_is_refused(space: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(only_run(space / "full"), run_dir)
    (run_dir / "manifest.json").write_text(
        (run_dir / "manifest.json").read_text().replace('"finished"', '"running"')
    )
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("r: 2", "r: 3"), encoding="utf-8")
    bad = run_hyso(space, "--resume", str(run_dir), "--sample-tokens", "0")
    assert bad.returncode != 0
    assert "holds LoRA adapters {'r': 2" in bad.stderr and "has LoRA adapters {'r': 3" in bad.stderr


def test_generate_with_adapter_matches_the_run(space: Path, tmp_path: Path, capsys) -> None:
    run_dir = only_run(space / "full")
    args = ["--prompt", "def ", "--max-new-tokens", "12", "--temperature", "0", "--seed", "0"]
    assert main(["generate", str(run_dir), *args]) == 0
    from_run = capsys.readouterr().out
    # The run's frozen base, saved as a model folder with the run's tokenizer.
    cfg = load_config(run_dir / "config.yaml").to_dict()
    set_global_seed(cfg["training"]["seed"])
    base = build_model(cfg["model"], 300)
    base.save_pretrained(tmp_path / "base")
    shutil.copy(run_dir / "artifacts" / "tokenizer.json", tmp_path / "base" / "tokenizer.json")
    adapter = run_dir / "artifacts" / "adapter"
    assert main(["generate", str(tmp_path / "base"), *args, "--adapter", str(adapter)]) == 0
    with_adapter = capsys.readouterr().out
    assert with_adapter == from_run and len(from_run) > len("def ")
    # The same model, logit for logit; the adapters change it.
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        run_logits = load_run(run_dir).model(ids)
        plain = load_model_folder(tmp_path / "base").model
        base_logits = plain(ids)
        adapted = add_adapter(plain, adapter)(ids)
    assert torch.equal(adapted, run_logits)
    assert (adapted - base_logits).abs().max() > 1e-4
    assert main(["generate", str(tmp_path / "base"), *args, "--adapter", str(tmp_path)]) == 2
    assert "neither lora.json" in capsys.readouterr().err


def test_a_lora_checkpoint_of_the_default_model_is_under_a_tenth(tmp_path: Path) -> None:
    """configs/lm.yaml's model with the default adapters (r 8 on q and v), after one step."""
    cfg = load_config(REPO / "configs" / "lm.yaml").to_dict()
    vocab = cfg["data"]["vocab_size"]
    sizes = {}
    for kind in ("full", "lora"):
        torch.manual_seed(0)
        model = build_model(cfg["model"], vocab)
        if kind == "lora":
            apply_lora(model, LoRASettings())
        opt = make_optimizer(model, resolve_settings({"training": cfg["training"]}))
        ids = torch.randint(0, vocab, (2, 16))
        model(ids).mean().backward()
        opt.step()
        mgr = CheckpointManager(CheckpointConfig.from_dir(directory=tmp_path / kind))
        path = mgr.save(0, checkpoint_module(model), opt, step=1)
        mgr.close()
        sizes[kind] = Path(path).stat().st_size
        held = mgr.load(path).model_state
        assert all(is_lora_key(k) for k in held) == (kind == "lora")
    assert sizes["lora"] < 0.1 * sizes["full"], sizes
