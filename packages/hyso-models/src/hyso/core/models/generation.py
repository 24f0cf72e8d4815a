"""Token selection and the shared decoding loop (greedy, temperature, top-k, top-p, EOS).

The loop is family-agnostic: a model hands it the logits of the prompt's last
position and a ``step(token, position) -> logits`` function that runs one token
through its KV cache. Output tokens go into a preallocated ``(B, L)`` tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["GenerationArgs", "check_left_padded", "decode_loop", "select_next_token"]

StepFn = Callable[[torch.Tensor, int], torch.Tensor]


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


def select_next_token(logits: torch.Tensor, args: GenerationArgs) -> torch.Tensor:
    """Next token ids ``(B,)`` from last-position ``logits (B, V)``: argmax or a sample."""
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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fill ``out[:, start:]`` one token at a time; rows stop at EOS (then padded).

    Returns the used part of ``out`` and, if asked, the logits ``(B, N, V)`` each
    token was chosen from. The loop ends early once every row has hit EOS.
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
        if finished is not None and bool(finished.all()):
            break
        if i + 1 < args.max_new_tokens:
            logits = step(feed, pos)
    stacked = torch.stack(scores, dim=1) if return_logits else None
    return out[:, :end], stacked


def check_left_padded(mask: torch.Tensor, name: str) -> None:
    """Batched prompts must be left-padded (zeros first) with at least one real token per row."""
    if mask.shape[1] > 1 and bool((mask[:, 1:] < mask[:, :-1]).any()):
        raise ValueError(f"{name}: prompts must be left-padded (padding before the tokens)")
    if not bool(mask[:, -1].all()):
        raise ValueError(f"{name}: every prompt needs at least one real token")
