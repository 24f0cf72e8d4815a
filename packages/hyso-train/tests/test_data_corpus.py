"""Corpora for ``hyso train``: the embedded standard-library corpus and user files."""

from __future__ import annotations

import hashlib
import json
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyso.core.train.data.corpus import (
    CorpusError,
    Document,
    load_corpus,
    split_by_bytes,
    stdlib_corpus,
    user_corpus,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_stdlib_corpus_is_deterministic_and_split_by_file() -> None:
    a = stdlib_corpus(max_bytes=300_000, val_fraction=0.2)
    b = stdlib_corpus(max_bytes=300_000, val_fraction=0.2)
    assert a.fingerprint() == b.fingerprint()
    train_names = {d.name for d in a.train}
    val_names = {d.name for d in a.val}
    assert train_names and val_names
    assert not train_names & val_names


def test_stdlib_corpus_documents_are_the_real_files_with_their_hashes() -> None:
    corpus = stdlib_corpus(max_bytes=100_000)
    for doc in corpus.train + corpus.val:
        data = (STDLIB / doc.name).read_bytes()
        assert doc.text == data.decode("utf-8")
        assert doc.sha256 == hashlib.sha256(data).hexdigest()
    record = corpus.fingerprint()
    assert [e["name"] for e in record["train"]] == [d.name for d in corpus.train]
    assert record["sha256"] == corpus.digest()
    assert record["source"]["kind"] == "python-stdlib"


def test_stdlib_corpus_respects_the_byte_budget() -> None:
    corpus = stdlib_corpus(max_bytes=200_000)
    docs = corpus.train + corpus.val
    total = sum(d.num_bytes for d in docs)
    assert total >= 200_000
    # the budget stops the selection at the first file that reaches it
    largest = max(d.num_bytes for d in docs)
    assert total - largest < 200_000
    bigger = stdlib_corpus(max_bytes=400_000)
    assert sum(d.num_bytes for d in bigger.train + bigger.val) > total


def test_val_share_tracks_val_fraction() -> None:
    corpus = stdlib_corpus(max_bytes=1_000_000, val_fraction=0.1)
    val = sum(d.num_bytes for d in corpus.val)
    total = val + sum(d.num_bytes for d in corpus.train)
    assert 0.05 < val / total < 0.2


def test_fingerprint_changes_with_the_split() -> None:
    a = stdlib_corpus(max_bytes=300_000, val_fraction=0.1)
    b = stdlib_corpus(max_bytes=300_000, val_fraction=0.3)
    assert a.digest() != b.digest()


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "0.1", True])
def test_bad_val_fraction_names_the_setting(value: object) -> None:
    with pytest.raises(CorpusError, match=r"data\.val_fraction"):
        load_corpus({"val_fraction": value})


@pytest.mark.parametrize("value", [0, -5, 1.5, "big"])
def test_bad_max_bytes_names_the_setting(value: object) -> None:
    with pytest.raises(CorpusError, match=r"data\.max_bytes"):
        load_corpus({"max_bytes": value})


def test_user_txt_files_split_by_file(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"document number {i}\n" * 50, encoding="utf-8")
    corpus = load_corpus({"paths": [str(tmp_path / "*.txt")], "val_fraction": 0.2})
    names = [d.name for d in corpus.train + corpus.val]
    assert sorted(names) == sorted(str(p) for p in tmp_path.glob("*.txt"))
    assert corpus.val and corpus.train
    assert corpus.fingerprint()["source"]["kind"] == "files"


def test_user_jsonl_reads_text_field_and_string_lines(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    lines = [json.dumps({"text": "alpha beta"}), "", json.dumps("gamma"), json.dumps({"text": "d"})]
    path.write_text("\n".join(lines), encoding="utf-8")
    corpus = user_corpus(str(path))
    texts = sorted(d.text for d in corpus.train + corpus.val)
    assert texts == ["alpha beta", "d", "gamma"]


def test_user_jsonl_custom_key_and_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"body": "x y"}\n{"body": "z"}\n', encoding="utf-8")
    corpus = user_corpus(str(path), text_key="body")
    assert sorted(d.text for d in corpus.train + corpus.val) == ["x y", "z"]
    with pytest.raises(CorpusError, match=r"data\.jsonl:1 .*'text'"):
        user_corpus(str(path))


def test_bad_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2"):
        user_corpus(str(path))


def test_empty_glob_names_the_pattern(tmp_path: Path) -> None:
    pattern = str(tmp_path / "nothing-*.txt")
    with pytest.raises(CorpusError, match=r"data\.paths.*nothing-\*\.txt.*matches no file"):
        load_corpus({"paths": pattern})


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine text\nmore\n", encoding="utf-8")
    bad = tmp_path / "latin.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin\.txt is not valid UTF-8"):
        load_corpus({"paths": [str(tmp_path / "*.txt")]})


def test_other_suffix_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# hi\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"notes\.md is not a \.txt or \.jsonl"):
        load_corpus({"paths": str(tmp_path / "*.md")})


def test_single_txt_file_splits_its_lines_without_overlap(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    lines = [f"line {i}\n" for i in range(100)]
    path.write_text("".join(lines), encoding="utf-8")
    corpus = user_corpus(str(path), val_fraction=0.2)
    joined = "".join(d.text for d in corpus.train + corpus.val)
    assert sorted(joined.splitlines()) == sorted(x.strip() for x in lines)
    assert corpus.val and corpus.train


def test_single_line_file_cannot_split(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text("only one line", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"one\.txt holds one line"):
        user_corpus(str(path))


def test_empty_files_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="hold no text"):
        user_corpus(str(tmp_path / "*.txt"))


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=2, max_size=60),
    fraction=st.floats(min_value=0.01, max_value=0.9),
)
def test_split_by_bytes_is_an_ordered_partition(sizes: list[int], fraction: float) -> None:
    docs = [Document(f"d{i}", "x" * n, str(i)) for i, n in enumerate(sizes)]
    train, val = split_by_bytes(docs, fraction)
    assert train and val
    assert sorted(d.name for d in train + val) == sorted(d.name for d in docs)
    order = {d.name: i for i, d in enumerate(docs)}
    assert [order[d.name] for d in train] == sorted(order[d.name] for d in train)
    assert [order[d.name] for d in val] == sorted(order[d.name] for d in val)
    # validation never exceeds its share by more than the largest single document
    val_bytes = sum(d.num_bytes for d in val)
    assert val_bytes <= fraction * sum(sizes) + max(sizes)
