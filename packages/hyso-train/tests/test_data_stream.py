"""Streaming corpus readers: documents, errors naming file and line, the split."""

from __future__ import annotations

import json
import random
import sys
import tracemalloc
from pathlib import Path

import pytest

from hyso.core.train.data import stream
from hyso.core.train.data.corpus import CorpusError
from hyso.core.train.data.stream import (
    SplitDecider,
    corpus_fingerprint,
    expand_sources,
    iter_documents,
    iter_split_documents,
)


def _text(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "délta", "ε", "zeta", "eta\tx", "日本"]
    out = []
    for _ in range(paragraphs):
        lines = [" ".join(rng.choices(words, k=rng.randrange(1, 12))) for _ in range(3)]
        out.append("\n".join(lines) + "\n" * rng.choice([1, 2, 2, 3]))
    return "".join(out)


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_txt_documents_join_back_to_the_file_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    path = tmp_path / "a.txt"
    text = _text(0, 300)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(stream, "DOC_TARGET_BYTES", 200)
    monkeypatch.setattr(stream, "DOC_MAX_BYTES", 700)
    monkeypatch.setattr(stream, "_BLOCK", block)
    docs = list(iter_documents([path]))
    assert len(docs) > 10
    assert "\n".join(d.text for d in docs) == text  # each cut dropped one newline
    assert all(len(d.text.encode()) <= 700 for d in docs)
    # the names carry the byte offset where each document starts
    raw = text.encode()
    for d in docs:
        offset = int(d.name.rsplit("#", 1)[1])
        assert raw[offset : offset + len(d.text.encode())].decode() == d.text
    if block == 7:
        return
    monkeypatch.setattr(stream, "_BLOCK", 7)
    assert [d.text for d in iter_documents([path])] == [d.text for d in docs]


def test_txt_without_newlines_is_cut_at_character_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "one_line.txt"
    text = "日本語テキスト" * 200  # 3-byte characters, no newline at all
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(stream, "DOC_MAX_BYTES", 100)
    docs = [d.text for d in iter_documents([path])]
    assert "".join(docs) == text
    assert all(0 < len(d.encode()) <= 100 for d in docs)


def test_txt_reading_holds_one_document_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.txt"
    path.write_text(_text(1, 60_000), encoding="utf-8")  # about 6 MB
    assert path.stat().st_size > 5_000_000
    monkeypatch.setattr(stream, "_BLOCK", 1 << 16)
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_documents([path]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 100
    assert peak < 4 * stream.DOC_MAX_BYTES  # a bounded buffer, far below the file


def test_jsonl_reads_line_by_line_and_names_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [json.dumps({"text": "one"}), "", json.dumps("two"), json.dumps({"text": " "})]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    docs = list(iter_documents([path]))
    assert [(d.name, d.text) for d in docs] == [(f"{path}:1", "one"), (f"{path}:3", "two")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": "fine"}\n{broken\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:3 is not JSON"):
        list(iter_documents([bad]))
    nokey = tmp_path / "nokey.jsonl"
    nokey.write_text('{"text": "ok"}\n{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"nokey\.jsonl:2 has no string field 'text'"):
        list(iter_documents([nokey]))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"text": "ok"}\n"caf\xe9"\n')
    with pytest.raises(CorpusError, match=r"latin\.jsonl:2 is not valid UTF-8"):
        list(iter_documents([latin]))


def test_parquet_rows_are_documents(tmp_path: Path) -> None:
    import pyarrow as pa  # the parquet extra, installed where these tests run
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    texts = [f"row {i} text" for i in range(2500)] + [None, "  ", "last"]
    pq.write_table(pa.table({"text": texts, "n": list(range(len(texts)))}), path)
    docs = list(iter_documents([path]))
    assert [d.text for d in docs] == [t for t in texts if t and t.strip()]
    assert docs[-1].name == f"{path}#row{len(texts)}"
    with pytest.raises(CorpusError, match=r"d\.parquet has no column 'body'.*text, n"):
        list(iter_documents([path], text_key="body"))
    with pytest.raises(CorpusError, match=r"d\.parquet row 1: column 'n' holds int"):
        list(iter_documents([path], text_key="n"))


def test_parquet_without_pyarrow_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if absent
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(CorpusError, match=r"d\.parquet is a Parquet file.*hyso-train\[parquet\]"):
        list(iter_documents([path]))


def test_sources_expand_globs_and_folders(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    for name in ("a.txt", "sub/b.jsonl", "sub/deep/c.txt", "sub/notes.md"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    got = expand_sources([str(tmp_path / "sub"), str(tmp_path / "*.txt")])
    assert got == sorted(
        [tmp_path / "a.txt", tmp_path / "sub/b.jsonl", tmp_path / "sub/deep/c.txt"]
    )
    with pytest.raises(CorpusError, match=r"notes\.md is not a \.txt, \.jsonl or \.parquet"):
        expand_sources(str(tmp_path / "sub" / "*.md"))
    with pytest.raises(CorpusError, match=r"data\.paths: the glob .*none-\*.* matches no file"):
        expand_sources(str(tmp_path / "none-*.txt"))


def test_split_is_by_document_and_bytes() -> None:
    decider = SplitDecider(0.25)
    splits = [decider.decide(100) for _ in range(40)]
    assert splits[0] == "train" and splits[1] == "val"
    assert splits.count("val") == 10  # a quarter of the bytes
    assert SplitDecider(0.25).decide(5) == "train"  # the first document always trains


def test_fingerprint_follows_content_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(_text(2, 50), encoding="utf-8")
    first = corpus_fingerprint([path], "text", 0.1)
    assert first["files"][0]["bytes"] == path.stat().st_size
    assert corpus_fingerprint([path], "text", 0.1)["sha256"] == first["sha256"]
    assert corpus_fingerprint([path], "text", 0.2)["sha256"] != first["sha256"]
    path.write_text(_text(3, 50), encoding="utf-8")
    assert corpus_fingerprint([path], "text", 0.1)["sha256"] != first["sha256"]
    splits = [s for s, _, _ in iter_split_documents([path], "text", 0.5)]
    assert splits[0] == "train"
