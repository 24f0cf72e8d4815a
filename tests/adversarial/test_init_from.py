"""Adversarial probes of ``model.init_from``: sources whose files lie (a config declaring
a huge model, replaced weights, a swapped or foreign tokenizer, NaN weights) end in a
one-line error naming ``model.init_from`` and the folder, within the probe's memory
and time limits, and before a run folder exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .harness import hyso, run_probe

SECONDS = 120.0  # each probe trains or loads a tiny model; generous for a busy machine

SOURCE = """
model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}
training:
  seed: 0
  device: cpu
  batch_size: 4
  epochs: 1
  eval_every: 2
  max_steps: 2
  progress_bar: false
  num_threads: 1
data:
  max_bytes: 20000
  vocab_size: 300
  cache_dir: CACHE
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``source.yaml``, ``finetune.yaml`` (no model keys), a trained run under
    ``runs/`` and its model as a ``save_pretrained`` folder ``pretrained/``."""
    root = tmp_path_factory.mktemp("adv-init-from")
    source = SOURCE.replace("CACHE", str(root / "cache"))
    (root / "source.yaml").write_text(source, encoding="utf-8")
    finetune = source.replace("model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, "
                              "max_seq_len: 32, dropout: 0.0}", "model: {}")  # fmt: skip
    (root / "finetune.yaml").write_text(finetune.replace("  vocab_size: 300\n", ""))
    argv = ["train", "source.yaml", "--runs-root", "runs", "--sample-tokens", "0"]
    hyso(*argv, cwd=root, seconds=SECONDS).expect_ok("run folder:")
    (run,) = (root / "runs").iterdir()
    run_probe(
        f"""
        from pathlib import Path
        from hyso.core.train.commands._model import load_run
        loaded = load_run(Path({str(run)!r}))
        loaded.model.save_pretrained({str(root / "pretrained")!r})
        loaded.tokenizer.save({str(root / "pretrained" / "tokenizer.json")!r})
        """,
        cwd=root,
        seconds=SECONDS,
    ).expect_ok()
    return root


def _run(space: Path) -> Path:
    (run,) = (space / "runs").iterdir()
    return run


def _copy(space: Path, name: str, tmp: Path) -> Path:
    target = tmp / name
    shutil.copytree(space / name if name != "run" else _run(space), target)
    return target


def _train_from(space: Path, folder: Path, work: Path):
    return hyso(
        "train",
        str(space / "finetune.yaml"),
        f"model.init_from={folder}",
        "--runs-root",
        str(work / "runs"),
        cwd=work,
        seconds=SECONDS,
    )


def _expect_refused(space: Path, folder: Path, work: Path, *fragments: str) -> None:
    _train_from(space, folder, work).expect_error("model.init_from", str(folder), *fragments)
    assert not (work / "runs").exists()


def test_a_config_declaring_a_huge_model_fails_before_allocating(
    space: Path, tmp_path: Path, probe_dir: Path
) -> None:
    folder = _copy(space, "pretrained", tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"].update(dim=1 << 20, num_layers=10_000, hidden_dim=1 << 22)
    meta.pop("weights_sha256")
    (folder / "config.json").write_text(json.dumps(meta))
    _expect_refused(space, folder, probe_dir, "tok_emb.weight")


def test_replaced_weights_are_refused_by_their_hash(
    space: Path, tmp_path: Path, probe_dir: Path
) -> None:
    folder = _copy(space, "pretrained", tmp_path)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4:] = b"\x7f\x7f\x7f\x7f"  # the last float of the last tensor
    weights.write_bytes(bytes(data))
    _expect_refused(space, folder, probe_dir, "weights_sha256")


def test_a_tokenizer_larger_than_the_model_is_not_its_tokenizer(
    space: Path, tmp_path: Path, probe_dir: Path
) -> None:
    folder = _copy(space, "pretrained", tmp_path)
    run_probe(
        f"""
        from hyso.core.tokenizer import HysoBPETokenizer
        tok = HysoBPETokenizer()
        tok.train([" ".join("w" + str(i) + "x" + str(i * 7) for i in range(3000))], vocab_size=400)
        assert tok.vocab_size == 400, tok.vocab_size
        tok.save({str(folder / "tokenizer.json")!r})
        """,
        seconds=SECONDS,
    ).expect_ok()
    _expect_refused(space, folder, probe_dir, "not the model's tokenizer")


def test_a_swapped_run_tokenizer_is_refused(space: Path, tmp_path: Path, probe_dir: Path) -> None:
    run = _copy(space, "run", tmp_path)
    path = run / "artifacts" / "tokenizer.json"  # still valid JSON, another SHA-256
    path.write_text(path.read_text().replace('"format_version"', ' "format_version"', 1))
    _expect_refused(space, run, probe_dir, "not the tokenizer this run was trained with")


def test_nan_weights_are_refused(space: Path, tmp_path: Path, probe_dir: Path) -> None:
    folder = tmp_path / "nan"
    run_probe(
        f"""
        import torch
        from hyso.core.models import HysoDecoderOnly
        src = HysoDecoderOnly.from_pretrained({str(space / "pretrained")!r})
        with torch.no_grad():
            next(src.parameters())[0, 0] = float("nan")
        src.save_pretrained({str(folder)!r})
        """,
        seconds=SECONDS,
    ).expect_ok()
    shutil.copy(space / "pretrained" / "tokenizer.json", folder / "tokenizer.json")
    _expect_refused(space, folder, probe_dir, "non-finite")


def test_a_hugging_face_config_with_a_huge_vocabulary_fails_in_bounds(
    space: Path, tmp_path: Path, probe_dir: Path
) -> None:
    folder = tmp_path / "hf"
    folder.mkdir()
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 1 << 31,
        "hidden_size": 1 << 16,
        "intermediate_size": 1 << 18,
        "num_hidden_layers": 1,
        "num_attention_heads": 64,
        "max_position_embeddings": 128,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(
        (space / "pretrained" / "model.safetensors").read_bytes()
    )
    shutil.copy(space / "pretrained" / "tokenizer.json", folder / "tokenizer.json")
    _expect_refused(space, folder, probe_dir)
