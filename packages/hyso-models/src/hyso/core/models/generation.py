"""Generation shared by every family that generates: ``GenerationMixin.generate``,
token selection (banned ids, greedy, temperature, top-k, top-p) and the decoding loop
(EOS per row, each new token handed to an ``on_token`` callback as it is chosen).

The loop is family-agnostic: a model's ``_start_generation`` hands it the
output buffer, the logits of the first position to fill and a
``step(token) -> logits`` function that runs one token through the model's
``forward`` with its cache. Output tokens go into a preallocated ``(B, L)`` tensor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from .cache import Cache
from .layers import KVCache

__all__ = [
    "GenerationArgs",
    "GenerationMixin",
    "GenerationStart",
    "check_left_padded",
    "decode_loop",
    "matvec_layout",
    "select_next_token",
]

StepFn = Callable[[torch.Tensor], torch.Tensor]
# Receives the (B,) ids chosen at each step, as they are chosen.
TokenCallback = Callable[[torch.Tensor], None]
# (output buffer (B, L), index of the first slot to fill, its logits (B, V), step function)
GenerationStart = tuple[torch.Tensor, int, torch.Tensor, StepFn]
# Shorter generations keep the weights as they are: rearranging them costs about as
# much as the matrix products of a few tokens save.
MATVEC_LAYOUT_MIN_TOKENS = 16


class GenerationArgs:
    """Checked sampling settings; bad values raise ``ValueError`` naming the argument."""

    def __init__(
        self,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | Sequence[int] | None = None,
        do_sample: bool = False,
        generator: torch.Generator | None = None,
        pad_token_id: int | None = None,
        *,
        banned_ids: Sequence[int] | None = None,
    ) -> None:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise ValueError(f"max_new_tokens must be an integer, got {max_new_tokens!r}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
            raise ValueError(f"top_k must be an integer or None, got {top_k!r}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if eos_token_id is None:
            eos: list[int] = []
        elif isinstance(eos_token_id, int):
            eos = [eos_token_id]
        else:
            eos = [int(t) for t in eos_token_id]
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.top_k = top_k
        self.top_p = top_p
        self.eos = eos
        self.do_sample = bool(do_sample) and temperature > 0
        self.generator = generator
        self.pad_token_id = pad_token_id if pad_token_id is not None else (eos[0] if eos else 0)
        self.banned_ids = _check_banned(banned_ids)


def _check_banned(banned_ids: Sequence[int] | None) -> tuple[int, ...]:
    """``banned_ids`` as sorted unique ids; anything but non-negative integers is refused."""
    if banned_ids is None:
        return ()
    if isinstance(banned_ids, (str, bytes)) or not isinstance(banned_ids, Sequence):
        raise ValueError(f"banned_ids must be a sequence of token ids, got {banned_ids!r}")
    for i in banned_ids:
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise ValueError(f"banned_ids must hold token ids (integers >= 0), got {i!r}")
    return tuple(sorted(set(banned_ids)))


def _ban(logits: torch.Tensor, banned: tuple[int, ...]) -> torch.Tensor:
    """``logits (B, V)`` with the ``banned`` ids at -inf; every id banned is an error."""
    vocab = logits.shape[-1]
    if banned[-1] >= vocab:
        raise ValueError(f"banned_ids: id {banned[-1]} is outside the vocabulary of {vocab}")
    if len(banned) >= vocab:
        raise ValueError(f"banned_ids bans all {vocab} ids: nothing is left to choose")
    index = torch.tensor(banned, device=logits.device)
    return logits.index_fill(-1, index, float("-inf"))


def select_next_token(logits: torch.Tensor, args: GenerationArgs) -> torch.Tensor:
    """Next token ids ``(B,)`` from last-position ``logits (B, V)``: argmax or a sample,
    never one of ``args.banned_ids``."""
    if args.banned_ids:
        logits = _ban(logits, args.banned_ids)
    if not args.do_sample:
        return logits.argmax(dim=-1)
    logits = logits.float() / args.temperature
    if args.top_k is not None and args.top_k < logits.shape[-1]:
        kth = torch.topk(logits, args.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if args.top_p is not None and args.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already reach top_p (keeps the first).
        drop = (probs.cumsum(dim=-1) - probs) >= args.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=args.generator).squeeze(-1)


def decode_loop(
    step: StepFn,
    logits: torch.Tensor,
    out: torch.Tensor,
    start: int,
    args: GenerationArgs,
    return_logits: bool = False,
    on_token: TokenCallback | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fill ``out[:, start:]`` one token at a time; rows stop at EOS (then padded).

    Returns the used part of ``out`` and, if asked, the logits ``(B, N, V)`` each
    token was chosen from. The loop ends early once every row has hit EOS.
    ``on_token`` receives each step's ids ``(B,)`` (as written to ``out``) at once.
    """
    eos = torch.tensor(args.eos, device=out.device) if args.eos else None
    finished: torch.Tensor | None = None
    scores: list[torch.Tensor] = []
    end = start
    for i in range(args.max_new_tokens):
        if return_logits:
            scores.append(logits.float().clone())
        token = select_next_token(logits, args)  # (B,)
        pos = start + i
        feed = out[:, pos : pos + 1]  # (B, 1) view: what the next step reads
        if eos is not None:
            # Finished rows show pad_token_id but keep feeding a valid id to the model.
            feed = token[:, None]
            if finished is not None:
                token = token.masked_fill(finished, args.pad_token_id)
                finished = finished | torch.isin(token, eos)
            else:
                finished = torch.isin(token, eos)
        out[:, pos] = token
        end = pos + 1
        if on_token is not None:
            on_token(out[:, pos].clone())
        if finished is not None and bool(finished.all()):
            break
        if i + 1 < args.max_new_tokens:
            logits = step(feed)
    stacked = torch.stack(scores, dim=1) if return_logits else None
    return out[:, :end], stacked


_LAYOUT_LOCK = threading.Lock()
# id(weight) -> number of generations running with that weight stored column-major.
_LAYOUT_USERS: dict[int, int] = {}


def _owns_its_storage(w: torch.Tensor) -> bool:
    """A plain 2-D float32 CPU weight that fills its own storage row by row (not a view
    into a larger buffer, as under FSDP, nor a subclass such as a DTensor). Only float32
    is rearranged: the other dtypes' CPU kernels were not measured."""
    return (
        type(w.data) is torch.Tensor
        and w.device.type == "cpu"
        and w.dtype == torch.float32
        and w.dim() == 2
        and w.is_contiguous()
        and w.storage_offset() == 0
        and w.untyped_storage().nbytes() == w.numel() * w.element_size()
    )


def _restride(w: torch.Tensor, column_major: bool) -> None:
    """Store the values of ``w (R, C)`` column by column (or back row by row) in its own
    storage; its shape, values and data pointer stay, only its strides change."""
    rows, cols = w.shape
    values = w.t().contiguous() if column_major else w.contiguous()  # a copy to write back
    storage = w.untyped_storage()
    w.set_(storage, 0, values.shape, values.stride())
    w.copy_(values)
    w.set_(storage, 0, (rows, cols), (1, rows) if column_major else (cols, 1))


@contextmanager
def matvec_layout(model: nn.Module) -> Iterator[None]:
    """While inside, the weights of the model's ``nn.Linear`` layers on the CPU are stored
    column by column, in place (values, shapes and data pointers unchanged).

    A decoding step multiplies each weight by a few vectors; with the weight stored as
    ``(in, out)`` rows the product streams through memory, which on the CPU is up to
    twice as fast as the dot products the usual ``(out, in)`` layout gives (see the
    models section of BENCHMARKS.md). Nested and concurrent uses share one rearrangement;
    the last one out restores the usual layout. Other code must not use the model from
    another thread meanwhile.
    """
    linears = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    weights = list({id(w): w for w in linears}.values())  # tied weights once
    mine: list[torch.Tensor] = []
    try:
        with torch.inference_mode(False), torch.no_grad(), _LAYOUT_LOCK:
            for w in weights:
                if id(w) in _LAYOUT_USERS or _owns_its_storage(w):
                    if id(w) not in _LAYOUT_USERS:
                        _restride(w, column_major=True)
                    _LAYOUT_USERS[id(w)] = _LAYOUT_USERS.get(id(w), 0) + 1
                    mine.append(w)
        yield
    finally:  # also after a failure half-way through the rearrangement
        with torch.inference_mode(False), torch.no_grad(), _LAYOUT_LOCK:
            for w in mine:
                _LAYOUT_USERS[id(w)] -= 1
                if not _LAYOUT_USERS[id(w)]:
                    del _LAYOUT_USERS[id(w)]
                    _restride(w, column_major=False)


class GenerationMixin:
    """``generate`` for a model whose ``_start_generation`` prepares the first step."""

    training: bool
    config: Any
    tok_emb: nn.Embedding

    def _cached_blocks(self) -> nn.ModuleList:
        """The blocks that keep keys and values while generating."""
        raise NotImplementedError

    def _start_generation(
        self, input_ids: torch.Tensor, max_new_tokens: int, **inputs: Any
    ) -> GenerationStart:
        """Check the inputs, run the prompt, and return where the loop starts."""
        raise NotImplementedError

    def new_cache(self, batch_size: int, max_len: int) -> Cache:
        """An empty cache for ``batch_size`` rows of up to ``max_len`` positions, to pass
        to ``forward(..., cache=)`` (decoder-only) or ``decode(..., cache=)``."""
        c, weight = self.config, self.tok_emb.weight
        return Cache(
            [
                KVCache(
                    batch_size,
                    c.num_kv_heads,
                    max_len,
                    c.head_dim,
                    dtype=weight.dtype,
                    device=weight.device,
                )
                for _ in self._cached_blocks()
            ]
        )

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | Sequence[int] | None = None,
        do_sample: bool = False,
        generator: torch.Generator | None = None,
        pad_token_id: int | None = None,
        return_logits: bool = False,
        banned_ids: Sequence[int] | None = None,
        on_token: TokenCallback | None = None,
        **inputs: Any,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Generate up to ``max_new_tokens`` tokens after ``input_ids (B, T)`` with a cache.

        Greedy unless ``do_sample`` (then ``temperature``, ``top_k``, ``top_p`` apply).
        ``banned_ids`` are never chosen (greedy or sampled; e.g. special tokens).
        ``on_token`` is called with each step's ids ``(B,)`` as they are chosen, so
        text can be shown while it is generated. A row that emits ``eos_token_id``
        stops; its later slots hold ``pad_token_id`` (default: the EOS id). ``inputs``
        are the family's own: ``attention_mask`` (decoder-only: left-padded prompts,
        0 on the padding), or ``src_mask`` and ``decoder_start_token_id``
        (encoder-decoder: ``input_ids`` is the source).
        Returns the ids (decoder-only: the prompt and the new tokens; encoder-decoder:
        the start token and the new tokens) and, with ``return_logits``, the logits
        ``(B, n, V)`` each new token was chosen from.
        """
        args = GenerationArgs(
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            eos_token_id,
            do_sample,
            generator,
            pad_token_id,
            banned_ids=banned_ids,
        )
        was_training = self.training
        self.eval()  # type: ignore[attr-defined]
        layout = (
            matvec_layout(self) if max_new_tokens >= MATVEC_LAYOUT_MIN_TOKENS else nullcontext()
        )
        try:
            with layout:
                out, start, logits, step = self._start_generation(
                    input_ids, max_new_tokens, **inputs
                )
                tokens, scores = decode_loop(
                    step, logits, out, start, args, return_logits, on_token
                )
        finally:
            self.train(was_training)  # type: ignore[attr-defined]
        return (tokens, scores) if return_logits else tokens  # type: ignore[return-value]


def check_left_padded(mask: torch.Tensor, name: str) -> None:
    """Batched prompts must be left-padded (zeros first) with at least one real token per row."""
    if mask.shape[1] > 1 and bool((mask[:, 1:] < mask[:, :-1]).any()):
        raise ValueError(f"{name}: prompts must be left-padded (padding before the tokens)")
    if not bool(mask[:, -1].all()):
        raise ValueError(f"{name}: every prompt needs at least one real token")
