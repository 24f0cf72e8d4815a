"""Adversarial probes of hyso-tokenizer: long pieces, hostile and careless tokenizer files,
custom split patterns. Each runs in a capped child process (see ``harness``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .harness import run_probe

# A small trained tokenizer saved in the three JSON formats, and a writer for mutated copies.
PRELUDE = """
import json
from pathlib import Path
from hyso.core.tokenizer import HysoBPETokenizer
tok = HysoBPETokenizer(special_tokens={"eos": "<|endoftext|>"})
tok.train(["hello world, lower lowest newer newest"] * 5, vocab_size=300)
own = json.loads(tok.save(Path("own.json")).read_text(encoding="utf-8"))
hf = json.loads(tok.to_hf(Path("hf.json")).read_text(encoding="utf-8"))
gpt2 = dict(hf["model"]["vocab"])
merges = [" ".join(m) if isinstance(m, list) else m for m in hf["model"]["merges"]]
Path("merges.txt").write_text("#version: 0.2\\n" + "\\n".join(merges) + "\\n")

def write(name, doc):
    Path(name).write_text(json.dumps(doc), encoding="utf-8")
    return name
"""


def probe(code: str, cwd: Path, **kwargs: object):
    return run_probe(PRELUDE + textwrap.dedent(code), cwd=cwd, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- quadratic BPE


def test_encoding_a_long_run_of_one_letter_is_near_linear(probe_dir: Path) -> None:
    code = """
    from hyso.core.tokenizer import HysoBPETokenizer
    tok = HysoBPETokenizer().train(["a" * 40_000], vocab_size=1000)
    for n in (40_000, 160_000):
        text = "a" * n
        assert tok.decode(tok.encode(text)) == text
    print("done")
    """  # HEAD took 13 s and 181 s for the two encodes
    run_probe(code, cwd=probe_dir, seconds=30).expect_ok("done")


def test_training_on_a_2mb_one_character_file_is_near_linear(probe_dir: Path) -> None:
    code = """
    from pathlib import Path
    from hyso.core.tokenizer import HysoBPETokenizer
    path = Path("one.txt")
    path.write_text("a" * 2_000_000, encoding="utf-8")
    tok = HysoBPETokenizer().train(path, vocab_size=1000, num_workers=1)
    assert tok.decode(tok.encode("a" * 5000)) == "a" * 5000
    print("done")
    """  # HEAD took 159 s
    run_probe(code, cwd=probe_dir, seconds=40).expect_ok("done")


# ---------------------------------------------------------------- declared sizes


def test_the_unaltered_files_load(probe_dir: Path) -> None:
    code = """
    text = "hello lowest world"
    for other in (
        HysoBPETokenizer.load("own.json"),
        HysoBPETokenizer.from_hf("hf.json"),
        HysoBPETokenizer.from_gpt2(write("vocab.json", gpt2), "merges.txt"),
        HysoBPETokenizer.from_tiktoken(tok.to_tiktoken_ranks(), tok.special_token_ids),
    ):
        assert other.encode(text) == tok.encode(text)
    print("done")
    """
    probe(code, probe_dir).expect_ok("done")


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        (
            "own['special_tokens'][0]['id'] = 2 * 10**9\n"
            "HysoBPETokenizer.load(write('big.json', own))",
            ["ValueError: tokenizer file 'big.json'", "'special_tokens'[0]['id'] is id 2000000000"],
        ),
        (
            "hf['added_tokens'][0]['id'] = 2 * 10**9\n"
            "HysoBPETokenizer.from_hf(write('big.json', hf))",
            ["ValueError: HF tokenizer file 'big.json'", "'added_tokens'[0]['id']"],
        ),
        (
            "gpt2['<|endoftext|>'] = 2 * 10**9\n"
            "HysoBPETokenizer.from_gpt2(write('vocab.json', gpt2), 'merges.txt')",
            ["ValueError: GPT-2 vocab file 'vocab.json'", "'<|endoftext|>' is id 2000000000"],
        ),
        (
            "ranks = tok.to_tiktoken_ranks()\n"
            "HysoBPETokenizer.from_tiktoken(ranks, {'<|endoftext|>': 2 * 10**9})",
            ["ValueError: tiktoken special tokens", "'<|endoftext|>' is id 2000000000"],
        ),
    ],
    ids=["own", "hf", "gpt2", "tiktoken"],
)
def test_a_huge_declared_id_is_refused_before_allocating(
    probe_dir: Path, code: str, fragments: list[str]
) -> None:
    probe(code, probe_dir, mem_mb=768).expect_error(*fragments, traceback=True)


# ---------------------------------------------------------------- types and ranges


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        (
            "own['tokens'][-1][0] = -1\nHysoBPETokenizer.load(write('neg.json', own))",
            ["ValueError: tokenizer file 'neg.json'", "'tokens'[", "is id -1"],
        ),
        (
            "own['tokens'].append([len(own['tokens']) + 1, own['tokens'][-1][1]])\n"
            "HysoBPETokenizer.load(write('dup.json', own))",
            ["ValueError: tokenizer file 'dup.json'", "are both the token"],
        ),
        (
            "own['lowercase'] = 'no'\nHysoBPETokenizer.load(write('low.json', own))",
            ["ValueError: tokenizer file 'low.json'", "'lowercase' must be true or false"],
        ),
        (
            "from hyso.core.tokenizer import HysoSimpleTokenizer\n"
            "s = json.loads(HysoSimpleTokenizer().save(Path('s.json')).read_text())\n"
            "s['lowercase'] = 'no'\nHysoSimpleTokenizer.load(write('s.json', s))",
            ["ValueError: tokenizer file 's.json'", "'lowercase' must be true or false"],
        ),
    ],
    ids=["negative-id", "duplicate-bytes", "lowercase-no", "simple-lowercase-no"],
)
def test_wrong_types_and_ranges_are_refused(
    probe_dir: Path, code: str, fragments: list[str]
) -> None:
    probe(code, probe_dir).expect_error(*fragments, traceback=True)


def test_two_merges_of_one_pair_are_refused(probe_dir: Path) -> None:
    code = """
    from hyso.core.tokenizer import BPEModel
    m = tok.model
    a, b, new = m.merges[0]
    dup = (*m.merges, (a, b, m.vocab_size))
    BPEModel(m.byte_ids, dup, tuple(m.specials))
    """
    probe(code, probe_dir).expect_error(
        "ValueError: merges 0 and", "both merge the pair", traceback=True
    )


# ---------------------------------------------------------------- malformed HF and GPT-2 files


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        (
            "del hf['added_tokens'][0]['content']\nHysoBPETokenizer.from_hf(write('x.json', hf))",
            ["'added_tokens'[0]['content']"],
        ),
        (
            "hf['model']['merges'] = [5, 6]\nHysoBPETokenizer.from_hf(write('x.json', hf))",
            ["'model'['merges'][0] must be 'left right' or [left, right], got 5"],
        ),
        (
            "hf['model']['vocab'] = {k: str(v) for k, v in hf['model']['vocab'].items()}\n"
            "HysoBPETokenizer.from_hf(write('x.json', hf))",
            ["'model'['vocab']['<|endoftext|>'] must be an integer, got '0'"],
        ),
        (
            "hf['model']['vocab'] = list(hf['model']['vocab'])\n"
            "HysoBPETokenizer.from_hf(write('x.json', hf))",
            ["'model'['vocab'] must be an object"],
        ),
        (
            "hf['model'] = 7\nHysoBPETokenizer.from_hf(write('x.json', hf))",
            ["'model' must be an object"],
        ),
    ],
    ids=["missing-content", "integer-merges", "string-ids", "vocab-list", "model-int"],
)
def test_malformed_hf_files_name_the_file_and_key(
    probe_dir: Path, code: str, fragments: list[str]
) -> None:
    fragments = ["ValueError: HF tokenizer file 'x.json'", *fragments]
    probe(code, probe_dir).expect_error(*fragments, traceback=True)


def test_malformed_gpt2_vocab_names_the_file_and_key(probe_dir: Path) -> None:
    code = "gpt2['a'] = '65'\nHysoBPETokenizer.from_gpt2(write('vocab.json', gpt2), 'merges.txt')"
    probe(code, probe_dir).expect_error(
        "ValueError: GPT-2 vocab file 'vocab.json'", "'a' must be an integer", traceback=True
    )


# ---------------------------------------------------------------- custom patterns


def test_a_backtracking_pattern_in_a_file_is_a_clear_error(probe_dir: Path) -> None:
    code = """
    own['pattern'] = r"(a|aa)+$"
    loaded = HysoBPETokenizer.load(write('p.json', own))
    loaded.encode("a" * 40 + "b")
    """  # HEAD: minutes of backtracking
    probe(code, probe_dir, seconds=30).expect_error(
        "ValueError: pattern '(a|aa)+$' took over", "backtracking", traceback=True
    )


def test_a_custom_pattern_keeps_unmatched_text_and_gives_hf_ids(probe_dir: Path) -> None:
    code = r"""
    from tokenizers import Tokenizer
    texts = ["Hello, world!  It's 42.", "a,,b\t\tc ", "naïve — 東京 😀!!"]
    for pattern in (r"\w+", r"[a-z]+"):
        custom = HysoBPETokenizer(pattern=pattern).train(texts * 4, vocab_size=300)
        ref = Tokenizer.from_file(str(custom.to_hf(Path("split.json"))))
        for text in texts:
            ids = custom.encode(text)
            assert custom.decode(ids) == text, (pattern, text)
            assert ids == ref.encode(text, add_special_tokens=False).ids, (pattern, text)
    print("done")
    """
    import tokenizers  # noqa: F401  (the reference; missing is a failure)

    probe(code, probe_dir).expect_ok("done")
