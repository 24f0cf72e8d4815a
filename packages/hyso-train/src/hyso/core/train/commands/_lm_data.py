"""The data half of ``hyso train``: corpus, cached BPE tokenizer, cached token arrays; for
``data.format: chat``, conversations rendered by the chat template and tokenized with
their assistant masks (read and checked whole before training starts)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyso.core.train.commands._common import FULL_HINT, CliError, require_tokenizer
from hyso.core.train.data.corpus import (
    Corpus,
    CorpusError,
    Document,
    check_val_fraction,
    expand_globs,
    load_corpus,
    split_by_bytes,
)
from hyso.core.train.data.pipeline import (
    PreparedShards,
    StreamedCorpus,
    load_or_train_tokenizer,
    prepare_shards,
)
from hyso.core.train.data.token_cache import TokenCache, cache_key

__all__ = [
    "DEFAULT_VOCAB_SIZE",
    "ChatData",
    "PreparedData",
    "chat_datasets",
    "default_cache_dir",
    "prepare_data",
]

DEFAULT_VOCAB_SIZE = 2048


@dataclass
class ChatData:
    """Tokenized conversations: ``(ids, labels)`` per sample, labels -100 but on the
    assistant's tokens, and the template that rendered them."""

    train: list[tuple[list[int], list[int]]]
    val: list[tuple[list[int], list[int]]]
    template: Any

    def record(self) -> dict[str, Any]:
        """What the manifest keeps about the conversations."""
        return {
            "format": "chat",
            "chat_template": self.template.name,
            "train_conversations": len(self.train),
            "val_conversations": len(self.val),
            "train_assistant_tokens": sum(_assistant(lab) for _, lab in self.train),
            "val_assistant_tokens": sum(_assistant(lab) for _, lab in self.val),
        }


def _assistant(labels: list[int]) -> int:
    return sum(1 for t in labels if t != -100)


@dataclass
class PreparedData:
    """Everything the training half needs from the data half."""

    corpus: Corpus | StreamedCorpus
    tokenizer: Any
    tokenizer_path: Path
    tokenizer_sha256: str
    tokenizer_cached: bool
    train_tokens: Any  # 1-D array of token ids (numpy memmap)
    val_tokens: Any
    tokens_cached: bool
    cache_dir: Path
    tokenizer_origin: str | None = None
    """Where a tokenizer that was given (``model.init_from``) came from; None: trained."""
    chat: ChatData | None = None
    """The conversations of ``data.format: chat`` (None for text)."""
    shards: PreparedShards | None = None
    """The token shards of a streamed ``data.paths`` corpus (None: the embedded one)."""

    @property
    def val_bytes(self) -> int:
        """UTF-8 bytes of the validation text (documents joined by newlines)."""
        return self.corpus.val_bytes

    def manifest_record(self) -> dict[str, Any]:
        """What the manifest keeps: the corpus fingerprint and tokenizer identity."""
        return {
            "fingerprint": self.corpus.fingerprint(),
            "tokenizer": {
                "type": type(self.tokenizer).__name__,
                "vocab_size": self.tokenizer.vocab_size,
                "sha256": self.tokenizer_sha256,
                **(
                    {"trained_on": "train split"}
                    if self.tokenizer_origin is None
                    else {"from": self.tokenizer_origin}
                ),
            },
            "train_tokens": len(self.train_tokens),
            "val_tokens": len(self.val_tokens),
            "val_bytes": self.val_bytes,
            **(self.chat.record() if self.chat is not None else {}),
        }


def default_cache_dir() -> Path:
    """``$HYSO_CACHE_DIR``, else ``$XDG_CACHE_HOME/hyso``, else ``~/.cache/hyso``."""
    if os.environ.get("HYSO_CACHE_DIR"):
        return Path(os.environ["HYSO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hyso"


def prepare_data(
    data: dict[str, Any],
    log: Callable[[str], None] = print,
    *,
    tokenizer: Any = None,
    tokenizer_origin: str | None = None,
    workers: int | None = None,
) -> PreparedData:
    """Load the corpus of ``data``, then the tokenizer and token arrays (cached).

    A ``tokenizer`` given (from ``tokenizer_origin``) is used instead of training one;
    the token cache is keyed on its SHA-256 as saved, like a trained one. A user corpus
    (``data.paths``) is streamed into token shards by ``workers`` processes
    (:mod:`hyso.core.train.data.pipeline`); the embedded corpus is read whole.
    """
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise CliError(f"hyso train needs numpy for its token cache: {FULL_HINT}") from None
    tok_mod = require_tokenizer()
    if data.get("format", "text") == "chat":
        return _prepare_chat(tok_mod, data, log, tokenizer, tokenizer_origin)
    vocab_size = data.get("vocab_size", DEFAULT_VOCAB_SIZE)
    if tokenizer is not None:  # init_from checked data.vocab_size against it
        vocab_size = int(tokenizer.vocab_size)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 300:
        raise CliError(f"data.vocab_size must be an integer >= 300, got {vocab_size!r}")
    cache_dir = Path(os.path.expanduser(str(data.get("cache_dir") or default_cache_dir())))
    given = None
    if tokenizer is not None:
        given = (tokenizer, _save_given_tokenizer(tokenizer, cache_dir / "tokenizers"))
        _require_eos(tokenizer, tokenizer_origin or given[1])
    if data.get("paths"):
        shards = prepare_shards(
            data, cache_dir, tok_mod, vocab_size, workers=workers, log=log, given=given
        )
        fields = shards.prepared_fields()
        return PreparedData(
            cache_dir=cache_dir, tokenizer_origin=tokenizer_origin, shards=shards, **fields
        )
    corpus = load_corpus(data)
    fp = corpus.digest()
    if given is None:
        tok_path = cache_dir / "tokenizers" / f"bpe-{fp[:16]}-v{vocab_size}.json"
        tokenizer, tok_cached = _trained_tokenizer(tok_mod, corpus, vocab_size, tok_path, log)
        _require_eos(tokenizer, tok_path)
    else:
        tok_path, tok_cached = given[1], True
    tok_sha = hashlib.sha256(tok_path.read_bytes()).hexdigest()
    eos = tokenizer.eos_token_id

    def build() -> dict[str, list[int]]:
        log(f"tokenizing {len(corpus.train)} + {len(corpus.val)} documents")
        return {
            "train": _encode_docs(tokenizer, corpus.train, eos),
            "val": _encode_docs(tokenizer, corpus.val, eos),
        }

    cache = TokenCache(cache_dir / "tokens")
    splits, hit = cache.get_or_build(cache_key(fp, tok_sha), build, tokenizer.vocab_size)
    return PreparedData(
        corpus=corpus,
        tokenizer=tokenizer,
        tokenizer_path=tok_path,
        tokenizer_sha256=tok_sha,
        tokenizer_cached=tok_cached,
        train_tokens=splits["train"],
        val_tokens=splits["val"],
        tokens_cached=hit,
        cache_dir=cache_dir,
        tokenizer_origin=tokenizer_origin,
    )


def _require_eos(tokenizer: Any, origin: Any) -> None:
    if tokenizer.eos_token_id is None:
        raise CliError(
            f"the tokenizer of {origin} has no end-of-text token (eos): hyso train ends "
            "every document with it"
        )


def _trained_tokenizer(
    tok_mod: Any, corpus: Corpus, vocab_size: int, path: Path, log: Callable[[str], None]
) -> tuple[Any, bool]:
    """The tokenizer cached at ``path``, or one trained on ``corpus``'s training split."""
    what = f"{sum(d.num_bytes for d in corpus.train):,} bytes"
    texts = lambda: [d.text for d in corpus.train]  # noqa: E731
    return load_or_train_tokenizer(tok_mod, path, vocab_size, texts, what, log)


def _save_given_tokenizer(tokenizer: Any, folder: Path) -> Path:
    """Save ``tokenizer`` in hyso's format under a name made of its SHA-256 (what the
    run folder will hold, byte for byte); return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"given-{os.getpid()}.json"
    tokenizer.save(staging)  # versioned JSON, written atomically
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    path = folder / f"given-{digest[:16]}.json"
    os.replace(staging, path)
    return path


def _encode_docs(tokenizer: Any, docs: list[Document], eos: int) -> list[int]:
    """Each document's ids followed by ``eos`` (which stands for the joining newline)."""
    out: list[int] = []
    for ids in tokenizer.encode_batch([d.text for d in docs]):
        out.extend(ids)
        out.append(eos)
    return out


def _prepare_chat(
    tok_mod: Any,
    data: dict[str, Any],
    log: Callable[[str], None],
    tokenizer: Any = None,
    tokenizer_origin: str | None = None,
) -> PreparedData:
    """Conversations from ``data.paths`` (every file read and checked whole first) or the
    embedded instruction set, rendered by ``data.chat_template``, then tokenized with
    their assistant masks (not cached: conversations are few)."""
    import numpy as np

    try:
        template = tok_mod.load_chat_template(data.get("chat_template") or "chatml")
    except ValueError as exc:
        raise CliError(f"data.chat_template: {exc}") from None
    corpus, convs = _chat_corpus(tok_mod, data, template)
    cache_dir = Path(os.path.expanduser(str(data.get("cache_dir") or default_cache_dir())))
    vocab_size = int(data.get("vocab_size", DEFAULT_VOCAB_SIZE))
    if tokenizer is None:
        tok_path = cache_dir / "tokenizers" / f"bpe-{corpus.digest()[:16]}-v{vocab_size}.json"
        tokenizer, tok_cached = _trained_tokenizer(tok_mod, corpus, vocab_size, tok_path, log)
    else:
        tok_path, tok_cached = _save_given_tokenizer(tokenizer, cache_dir / "tokenizers"), True
    log(f"tokenizing {len(convs['train'])} + {len(convs['val'])} conversations")
    splits: dict[str, list[tuple[list[int], list[int]]]] = {}
    for split, messages in convs.items():
        encoded = []
        for name, msgs in messages:
            try:
                enc = tok_mod.encode_chat(tokenizer, template, msgs)
            except ValueError as exc:
                raise CliError(f"{name}: {exc}") from None
            encoded.append((enc.ids, enc.labels))
        splits[split] = encoded
    flat = {
        k: np.asarray([t for ids, _ in v for t in ids], dtype=np.int64) for k, v in splits.items()
    }
    return PreparedData(
        corpus=corpus,
        tokenizer=tokenizer,
        tokenizer_path=tok_path,
        tokenizer_sha256=hashlib.sha256(tok_path.read_bytes()).hexdigest(),
        tokenizer_cached=tok_cached,
        train_tokens=flat["train"],
        val_tokens=flat["val"],
        tokens_cached=False,
        cache_dir=cache_dir,
        tokenizer_origin=tokenizer_origin,
        chat=ChatData(splits["train"], splits["val"], template),
    )


Conversations = dict[str, list[tuple[str, list[dict[str, str]]]]]


def _chat_corpus(tok_mod: Any, data: dict[str, Any], template: Any) -> tuple[Corpus, Conversations]:
    """The conversations of each split (named by file and line, or module and function)
    and a corpus of their rendered text (what the tokenizer trains on, and the
    fingerprint)."""
    from hyso.core.train.data.stdlib_instructions import (
        INSTRUCTIONS_NAME,
        mine_stdlib_pairs,
        source_record,
        split_by_module,
    )

    val_fraction = check_val_fraction(data.get("val_fraction", 0.1))
    paths = data.get("paths")
    if paths:
        patterns = [paths] if isinstance(paths, str) else list(paths)
        records = []
        for path in expand_globs(patterns, suffixes=(".jsonl",)):
            try:
                records.extend(tok_mod.read_chat_file(path))
            except ValueError as exc:
                raise CorpusError(f"data.paths: {exc}") from None
        named = [(f"{r.source}:{r.line}", r.as_dicts()) for r in records]
        if len(named) < 2:
            raise CorpusError(f"data.paths: {patterns} hold {len(named)} conversation(s); a "
                              "train/validation split needs 2")  # fmt: skip
        docs = [_rendered(name, msgs, template) for name, msgs in named]
        train_docs, val_docs = split_by_bytes(docs, val_fraction)
        lookup = dict(named)
        convs = {
            "train": [(d.name, lookup[d.name]) for d in train_docs],
            "val": [(d.name, lookup[d.name]) for d in val_docs],
        }
        source = {"kind": "files", "paths": patterns, "val_fraction": val_fraction}
        return Corpus("files", train_docs, val_docs, source), convs
    train, val = split_by_module(mine_stdlib_pairs(), val_fraction)
    convs = {
        "train": [(f"{p.module}.{p.name}", p.messages()) for p in train],
        "val": [(f"{p.module}.{p.name}", p.messages()) for p in val],
    }
    corpus = Corpus(
        INSTRUCTIONS_NAME,
        [_rendered(n, m, template) for n, m in convs["train"]],
        [_rendered(n, m, template) for n, m in convs["val"]],
        source_record(None, val_fraction),
    )
    return corpus, convs


def _rendered(name: str, messages: list[dict[str, str]], template: Any) -> Document:
    try:
        text = template.render(messages)
    except ValueError as exc:
        raise CliError(f"{name}: {exc}") from None
    return Document(name, text, hashlib.sha256(text.encode("utf-8")).hexdigest())


def chat_datasets(prepared: PreparedData, family: str, seq_len: int) -> tuple[Any, Any]:
    """The train and validation :class:`ChatSamples` of ``prepared.chat``, padded with
    the tokenizer's pad id (else EOS); only decoder-only models learn to chat."""
    from hyso.core.train.data.chat_samples import ChatSamples

    if prepared.chat is None:
        raise ValueError("chat_datasets: the prepared data are not conversations")
    if family != "decoder_only":
        raise CliError(f"data.format: chat trains decoder_only models, not {family}")
    tok = prepared.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    out = []
    for split, samples in (("train", prepared.chat.train), ("val", prepared.chat.val)):
        ds = ChatSamples(samples, seq_len, pad if pad is not None else 0)
        if len(ds) == 0:
            raise CorpusError(
                f"data: none of the {len(samples)} {split} conversations fits in "
                f"{seq_len + 1} tokens (data.seq_len / model.max_seq_len) with an answer"
            )
        if ds.dropped:
            print(
                f"hyso train: {ds.dropped} of {len(samples)} {split} conversations left out: "
                f"longer than {seq_len + 1} tokens or no answer to predict",
                file=sys.stderr,
            )
        out.append(ds)
    return out[0], out[1]
