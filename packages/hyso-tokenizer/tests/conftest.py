"""Shared fixtures: small generated corpora (tests never read external files)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from hyso.core.tokenizer import HysoBPETokenizer

_WORDS = (
    "the of and to in is was for on that with as by at from his her it an be this which "
    "or are had were not but have one their all been has new when more after who other "
    "lower lowest newer newest wider widest river rivers station stations played playing "
    "çalışma İstanbul ılık naïve café Ürün straße 東京 大阪 😀 🚀 ☃ 1999 2024 3.14 42"
).split()
_PUNCT = [",", ".", "!", "?", ";", ":", "'s", "'re", " -", "(", ")", '"']


def make_corpus(n_lines: int, seed: int) -> list[str]:
    """Deterministic lines of pseudo-text with a Zipf-like word distribution."""
    rng = random.Random(seed)
    weights = [1.0 / (k + 1) for k in range(len(_WORDS))]
    lines = []
    for _ in range(n_lines):
        n = rng.randint(1, 14)
        words = rng.choices(_WORDS, weights, k=n)
        parts = []
        for w in words:
            parts.append(w)
            if rng.random() < 0.15:
                parts.append(rng.choice(_PUNCT))
        sep = rng.choice([" ", " ", " ", "  ", "\t"])
        lines.append(sep.join(parts) + rng.choice(["", " ", "  "]))
    return lines


@pytest.fixture(scope="session")
def corpus_factory() -> Callable[[int, int], list[str]]:
    return make_corpus


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return make_corpus(400, seed=7)


@pytest.fixture(scope="session")
def trained(corpus: list[str]) -> HysoBPETokenizer:
    tok = HysoBPETokenizer()
    tok.train(corpus, vocab_size=600)
    return tok


@pytest.fixture(scope="session", params=["python", "tiktoken"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each encoder: pure Python, and tiktoken (the ``[fast]`` extra; installed in CI)."""
    if request.param == "tiktoken":
        import tiktoken  # noqa: F401  (a test reference here: missing is a failure)
    return str(request.param)


def on_backend(tok: HysoBPETokenizer, backend: str) -> HysoBPETokenizer:
    """``tok``'s vocabulary and settings on the encoder ``backend`` (an error if it cannot)."""
    twin = HysoBPETokenizer(
        lowercase=tok.lowercase,
        normalize=tok.normalize,
        pattern=tok.pattern,
        model=tok.model,
        backend=backend,
    )
    assert twin.backend == backend
    return twin


@pytest.fixture(scope="session")
def trained_on(trained: HysoBPETokenizer, backend: str) -> HysoBPETokenizer:
    """The trained tokenizer on each encoder."""
    return on_backend(trained, backend)
