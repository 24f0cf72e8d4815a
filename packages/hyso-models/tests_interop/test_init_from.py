"""``hyso train`` with ``model.init_from`` a transformers Llama folder (random weights,
a tokenizer.json written by tokenizers): training starts at the loss transformers
computes on the same windows, and the result exports back to transformers."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers

from hyso.core.tokenizer import HysoBPETokenizer
from hyso.core.train.cli import main
from hyso.core.train.commands._lm_data import prepare_data
from hyso.core.train.commands._model import load_run
from hyso.core.train.data.windows import NextTokenWindows

REPO = Path(__file__).resolve().parents[3]
SEQ_LEN = 64
CONFIG = """
model: {}
training:
  seed: 0
  device: cpu
  lr: 0.001
  batch_size: 4
  epochs: 1
  log_every: 1
  eval_every: 2
  max_steps: 2
  progress_bar: false
  num_threads: 1
data:
  max_bytes: 30000
  seq_len: SEQ_LEN
  cache_dir: CACHE
"""


def _hf_folder(tmp: Path) -> Path:
    """The folder examples/make_tiny_hf_model.py writes (a random Llama, vocabulary 400)."""
    script = runpy.run_path(str(REPO / "examples" / "make_tiny_hf_model.py"))
    tokenizer = script["make_tokenizer"](400)
    model = script["make_model"](len(tokenizer), tokenizer.eos_token_id, 0)
    folder = tmp / "tiny-llama"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _transformers_val_loss(folder: Path, cache: Path) -> float:
    """transformers' token-weighted loss over the validation windows hyso train builds."""
    data = {"max_bytes": 30000, "cache_dir": str(cache)}
    tokenizer = HysoBPETokenizer.from_hf(folder / "tokenizer.json")
    prepared = prepare_data(data, log=lambda _m: None, tokenizer=tokenizer)
    windows = NextTokenWindows(prepared.val_tokens, SEQ_LEN)
    model = transformers.LlamaForCausalLM.from_pretrained(folder).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), 4):
            batch = [windows[i] for i in range(start, min(start + 4, len(windows)))]
            inputs = torch.stack([b[0] for b in batch])  # (B, T)
            targets = torch.stack([b[1] for b in batch])  # (B, T)
            logits = model(inputs).logits  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
            total += float(loss)
            count += targets.numel()
    return total / count


def test_init_from_a_transformers_llama_folder(tmp_path: Path, capsys) -> None:
    folder = _hf_folder(tmp_path)
    cache = tmp_path / "cache"
    config = tmp_path / "finetune.yaml"
    text = CONFIG.replace("SEQ_LEN", str(SEQ_LEN)).replace("CACHE", str(cache))
    config.write_text(text, encoding="utf-8")
    argv = ["train", str(config), f"model.init_from={folder}", "--runs-root", str(tmp_path)]
    assert main([*argv, "--sample-tokens", "0", "--name", "ft"]) == 0, capsys.readouterr().err
    (run,) = tmp_path.glob("*-ft")
    manifest = json.loads((run / "manifest.json").read_text())
    before = manifest["results"]["init_val_loss"]
    assert abs(before - _transformers_val_loss(folder, cache)) < 1e-5
    assert manifest["model"]["init_from"]["kind"] == "hugging_face"
    assert set(manifest["model"]["init_from"]["weights"]) == {"model.safetensors"}
    assert manifest["data"]["tokenizer"]["vocab_size"] == 400
    # the trained run samples, and exports back to a folder transformers loads
    assert main(["generate", str(run), "--max-new-tokens", "4", "--seed", "0"]) == 0
    capsys.readouterr()
    assert main(["convert", str(run), str(tmp_path / "back")]) == 0
    assert "(run -> hf)" in capsys.readouterr().out
    loaded = load_run(run)
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "back").eval()
    ids = torch.tensor([loaded.tokenizer.encode("def main():\n    return 0")])
    with torch.no_grad():
        assert (back(ids).logits - loaded.model(ids)).abs().max() < 1e-4
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "back")
    assert hf_tok("def main():")["input_ids"] == loaded.tokenizer.encode("def main():")


def test_a_contradicting_key_names_the_hf_folders_value(tmp_path: Path, capsys) -> None:
    folder = _hf_folder(tmp_path)
    capsys.readouterr()  # transformers' own progress output
    config = tmp_path / "finetune.yaml"
    config.write_text(CONFIG.replace("SEQ_LEN", "32").replace("CACHE", str(tmp_path / "c")))
    assert main(["train", str(config), f"model.init_from={folder}", "+model.dim=32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "model.dim is 32" in err and "but 64 in model.init_from" in err and str(folder) in err
