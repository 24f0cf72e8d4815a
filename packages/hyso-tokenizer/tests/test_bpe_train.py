"""BPE training: HF's merge rule (ties to the lowest ids), stopping rules, streaming."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hyso.core.tokenizer import HysoBPETokenizer, bpe_train
from hyso.core.tokenizer.bytes_map import HF_BYTE_ORDER, bytes_to_token


def merged_bytes(tok: HysoBPETokenizer) -> list[tuple[bytes, bytes]]:
    return [(tok.id_to_token(a), tok.id_to_token(b)) for a, b, _ in tok.merges]


def test_untrained_vocab_is_bytes_plus_specials() -> None:
    tok = HysoBPETokenizer(lowercase=True, normalize="NFKC", cache_size=5000)
    assert tok.vocab_size == 256 + 5
    ids = {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id}
    assert ids | {tok.mask_token_id} == {0, 1, 2, 3, 4}
    # Bytes follow the specials in HF's alphabet order (sorted mapped code points).
    assert [tok.id_to_token(5 + k) for k in range(256)] == [bytes([b]) for b in HF_BYTE_ORDER]
    assert tok.encode("Hi") == [tok.token_to_id(b"h"), tok.token_to_id(b"i")]


def test_most_frequent_pair_merges_first_with_min_frequency() -> None:
    # Each text is one word: counts roses 1, are 2, red 1, is 2, ... (HF's own example).
    words = "roses are are red voilets blue BERT is is big and so GPT-2".split()
    tok = HysoBPETokenizer(special_tokens={})
    tok.train(words, vocab_size=1000, min_frequency=2)
    assert merged_bytes(tok) == [(b"r", b"e"), (b"a", b"re"), (b"i", b"s")]


def test_ties_go_to_the_pair_with_the_lowest_ids() -> None:
    # "ab" and "cd" both occur 3 times; in HF's alphabet order a < c, so (a, b) wins.
    tok = HysoBPETokenizer(special_tokens={})
    tok.train(["cd", "ab"] * 3, vocab_size=258)
    assert merged_bytes(tok) == [(b"a", b"b"), (b"c", b"d")]
    # Between "\n" (mapped to U+010A) and "a": ids order by the mapped code point.
    tok.train(["\n\n", "zz"] * 2, vocab_size=257)
    assert merged_bytes(tok) == [(b"z", b"z")]


def test_training_is_deterministic_and_stops_at_vocab_size(corpus: list[str]) -> None:
    a = HysoBPETokenizer().train(corpus, vocab_size=500)
    b = HysoBPETokenizer().train(list(reversed(corpus)), vocab_size=500)
    assert a.vocab_size == 500
    assert a.merges == b.merges
    for _, _, new in a.merges:
        assert new < 500


def test_vocab_size_below_the_alphabet_is_rejected() -> None:
    with pytest.raises(ValueError, match="vocab_size must be an int >= 261"):
        HysoBPETokenizer().train(["abc"], vocab_size=100)


def test_file_training_reads_line_by_line(tmp_path: Path, corpus: list[str]) -> None:
    # A file is split per line, each keeping its newline: the same as passing the lines.
    text = "\n\n".join(corpus) + "\n  \n"
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines(keepends=True)
    from_file = HysoBPETokenizer().train(path, vocab_size=450, num_workers=1)
    from_lines = HysoBPETokenizer().train(lines, vocab_size=450)
    assert from_file.merges == from_lines.merges


def test_file_chunks_and_workers_do_not_change_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus_factory: Callable[..., list[str]]
) -> None:
    text = "\n".join(corpus_factory(300, seed=3)) + "\n"
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines(keepends=True)
    expected = bpe_train.count_words(lines, HysoBPETokenizer().pattern, None)
    monkeypatch.setattr(bpe_train, "CHUNK_BYTES", 97)
    assert bpe_train.count_words([path], HysoBPETokenizer().pattern, None) == expected
    two = bpe_train.count_words([path], HysoBPETokenizer().pattern, None, num_workers=2)
    assert two == expected


def test_streamed_texts_counted_in_workers_equal_serial_counts(
    monkeypatch: pytest.MonkeyPatch, corpus_factory: Callable[..., list[str]]
) -> None:
    # A generator of texts is consumed as it comes; past one chunk the chunks go to
    # worker processes. Counts and merges are those of counting in this process.
    texts = corpus_factory(300, seed=5)
    expected = bpe_train.count_words(texts, HysoBPETokenizer().pattern, None)
    monkeypatch.setattr(bpe_train, "CHUNK_BYTES", 211)
    consumed = []

    def stream() -> Iterator[str]:
        for t in texts:
            consumed.append(t)
            yield t

    two = bpe_train.count_words(stream(), HysoBPETokenizer().pattern, None, num_workers=2)
    assert two == expected
    assert consumed == texts
    serial = HysoBPETokenizer().train(iter(texts), vocab_size=420, num_workers=1)
    parallel = HysoBPETokenizer().train(iter(texts), vocab_size=420, num_workers=2)
    assert parallel.merges == serial.merges
    assert len(serial.merges) > 50


def test_bad_training_input_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff\xfe bytes\n")
    with pytest.raises(ValueError, match=r"bad.txt.*not valid UTF-8 at byte 17"):
        HysoBPETokenizer().train(bad, vocab_size=300)
    with pytest.raises(ValueError, match="does not exist"):
        HysoBPETokenizer().train(tmp_path / "missing.txt", vocab_size=300)
    with pytest.raises(TypeError, match="got an item of type int"):
        HysoBPETokenizer().train([3], vocab_size=300)  # type: ignore[list-item]


def test_normalisation_applies_before_counting() -> None:
    tok = HysoBPETokenizer(lowercase=True, normalize="NFKC", special_tokens={})
    tok.train(["ＡＢ", "ab", "AB"], vocab_size=257)  # fullwidth -> ASCII, then lowercased
    assert merged_bytes(tok) == [(b"a", b"b")]


def test_merges_match_hf_tokenizers(
    tmp_path: Path, corpus_factory: Callable[..., list[str]]
) -> None:
    import tokenizers  # the reference, installed where this runs: absent is an error
    from tokenizers import decoders, models, pre_tokenizers, trainers

    lines = corpus_factory(600, seed=11)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    specials = ["<pad>", "<bos>", "<eos>", "<unk>", "<mask>"]
    for source, vocab, min_freq in ((path, 700, 0), (lines, 520, 3)):
        hf = tokenizers.Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            min_frequency=min_freq,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        if isinstance(source, Path):
            hf.train([str(source)], trainer)
        else:
            hf.train_from_iterator(source, trainer)
        ours = HysoBPETokenizer().train(source, vocab_size=vocab, min_frequency=min_freq)
        import json

        model = json.loads(hf.to_str())["model"]
        hf_merges = [
            tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]
        ]
        our_merges = [(bytes_to_token(a), bytes_to_token(b)) for a, b in merged_bytes(ours)]
        assert our_merges == hf_merges
        assert hf.get_vocab_size() == ours.vocab_size
        text = "\n".join(corpus_factory(50, seed=12))
        assert ours.encode(text) == hf.encode(text).ids


def test_show_progress_reports_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    tok = HysoBPETokenizer().train(["hello world"] * 5, vocab_size=270, show_progress=True)
    out = capsys.readouterr().out
    assert f"{len(tok.merges)} merges" in out and f"vocabulary {tok.vocab_size}" in out
    assert HysoBPETokenizer().train(["hello"], vocab_size=270) is not None
    assert capsys.readouterr().out == ""
