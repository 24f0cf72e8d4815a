"""``hyso prepare`` and ``hyso train`` on a user corpus: streamed into token shards with the
real tokenizer, read back memory-mapped, and trained on."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hyso.core.train.cli import main
from hyso.core.train.commands._lm_data import prepare_data
from hyso.core.train.data.shards import ShardedTokens
from hyso.core.train.data.stream import expand_sources, iter_split_documents

TINY = """
model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}
training:
  seed: 0
  device: cpu
  batch_size: 4
  max_steps: 3
  eval_every: 3
  progress_bar: false
  num_threads: 1
data:
  paths: PATHS
  val_fraction: 0.2
  vocab_size: 300
  cache_dir: CACHE
"""


def _corpus(root: Path) -> None:
    rng = random.Random(0)
    words = "the cat sat on a mat while dogs ran far away into fields of green".split()
    (root / "texts").mkdir()
    for k in range(2):
        paragraphs = [" ".join(rng.choices(words, k=40)) for _ in range(150)]
        (root / "texts" / f"part{k}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    rows = [json.dumps({"text": " ".join(rng.choices(words, k=30))}) for _ in range(200)]
    (root / "texts" / "rows.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hyso-prepare")
    _corpus(tmp)
    config = tmp / "tiny.yaml"
    text = TINY.replace("PATHS", str([str(tmp / "texts")])).replace("CACHE", str(tmp / "cache"))
    config.write_text(text, encoding="utf-8")
    return {"tmp": tmp, "config": config, "texts": tmp / "texts", "cache": tmp / "cache"}


def _data(ws: dict[str, Path]) -> dict[str, object]:
    return {
        "paths": [str(ws["texts"])],
        "val_fraction": 0.2,
        "vocab_size": 300,
        "cache_dir": str(ws["cache"]),
    }


def test_shards_hold_each_document_encoded_then_eos(workspace: dict[str, Path]) -> None:
    prepared = prepare_data(_data(workspace), log=lambda _: None, workers=2)
    assert isinstance(prepared.train_tokens, ShardedTokens)
    tok = prepared.tokenizer
    files = expand_sources([str(workspace["texts"])])
    expected: dict[str, list[int]] = {"train": [], "val": []}
    val_texts = []
    for split, doc, _ in iter_split_documents(files, "text", 0.2):
        expected[split].extend([*tok.encode(doc.text), tok.eos_token_id])
        if split == "val":
            val_texts.append(doc.text)
    assert prepared.train_tokens.to_numpy().tolist() == expected["train"]
    assert prepared.val_tokens.to_numpy().tolist() == expected["val"]
    assert prepared.corpus.val_text == "\n".join(val_texts)
    assert prepared.val_bytes == len("\n".join(val_texts).encode())
    record = prepared.manifest_record()
    assert len(record["fingerprint"]["files"]) == 3
    assert record["fingerprint"]["val_docs"] == len(val_texts)
    again = prepare_data(_data(workspace), log=lambda _: None, workers=1)
    assert again.tokens_cached and again.tokenizer_cached
    assert again.train_tokens.to_numpy().tolist() == expected["train"]


def test_prepare_command_reports_shards(
    workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prepare", str(workspace["config"]), "data.vocab_size=320"]) == 0
    out = capsys.readouterr().out
    assert "1 train + 1 val shards (2 written, 0 kept" in out
    assert "MB/s" in out
    assert main(["prepare", str(workspace["config"]), "data.vocab_size=320"]) == 0
    assert "all from cache" in capsys.readouterr().out


def test_bad_jsonl_line_stops_prepare_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": oops}\n', encoding="utf-8")
    config = tmp_path / "c.yaml"
    text = TINY.replace("PATHS", str([str(tmp_path / "*.jsonl")]))
    config.write_text(text.replace("CACHE", str(tmp_path / "cache")), encoding="utf-8")
    assert main(["prepare", str(config)]) == 2
    assert "bad.jsonl:2 is not JSON" in capsys.readouterr().err


def test_train_on_streamed_shards(workspace: dict[str, Path]) -> None:
    runs = workspace["tmp"] / "runs"
    argv = ["train", str(workspace["config"]), "--runs-root", str(runs), "--sample-tokens", "4"]
    assert main(argv) == 0
    (run_dir,) = runs.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["data"]["fingerprint"]["kind"] == "files"
    assert manifest["results"]["global_step"] == 3


def test_init_from_tokenizes_the_shards_with_the_sources_tokenizer(
    workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``hyso prepare`` and ``hyso train`` with ``model.init_from`` write shards with the
    source's tokenizer (no tokenizer is trained), and training starts from its weights."""
    runs = workspace["tmp"] / "base-runs"
    base = ["train", str(workspace["config"]), "data.vocab_size=340", "--runs-root", str(runs)]
    assert main([*base, "--sample-tokens", "0"]) == 0
    (source,) = runs.iterdir()
    source_tok = json.loads((source / "manifest.json").read_text())["data"]["tokenizer"]
    init = [f"model.init_from={source}", f"data.vocab_size={source_tok['vocab_size']}"]
    capsys.readouterr()
    assert main(["prepare", str(workspace["config"]), *init]) == 0
    out, err = capsys.readouterr()
    assert "training a byte-level BPE tokenizer" not in err
    assert "tokenizer " in out and "/given-" in out, out  # the source's, saved by its hash
    ft_runs = workspace["tmp"] / "ft-runs"
    argv = ["train", str(workspace["config"]), *init, "--runs-root", str(ft_runs)]
    assert main([*argv, "--sample-tokens", "0"]) == 0
    (run_dir,) = ft_runs.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data"]["tokenizer"]["sha256"] == source_tok["sha256"]
    assert manifest["data"]["tokenizer"]["from"] == str(source)
    assert manifest["data"]["fingerprint"]["kind"] == "files"
    assert manifest["results"]["init_val_loss"] > 0
