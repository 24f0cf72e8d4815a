"""Token cross-entropy of a linear output head, without ever holding the whole logits.

``linear_cross_entropy(hidden, weight, targets)`` equals
``F.cross_entropy(hidden @ weight.T, targets, ignore_index=-100)``. The rows go through
the head in chunks: a chunk's logits become its loss and, when gradients are wanted,
at once the chunk's share of the gradients of ``hidden`` and ``weight``; then they are
dropped. Backward only scales those gradients by the incoming one. A training step
therefore holds one chunk of logits instead of three ``(N, V)`` tensors (the logits, the
softmax saved for backward and its gradient), with the matrix products of the plain
head. About ``V / C`` chunks, so that a chunk's logits are about the size of ``hidden``
and the weight is read that many times, but at least 4M logits a chunk: smaller ones
spend more on launching kernels than they save.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

__all__ = ["IGNORE_INDEX", "default_chunk_rows", "linear_cross_entropy"]

IGNORE_INDEX = -100


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    reduction: str = "mean",
    chunk_rows: int | None = None,
) -> torch.Tensor:
    """Cross-entropy of the logits ``hidden @ weight.T`` against ``targets``.

    ``hidden (..., C)``, ``weight (V, C)``, ``targets (...)`` of integer ids, ``-100``
    ignored. ``reduction``: ``"mean"`` over the counted targets (NaN when there are none,
    as in ``F.cross_entropy``) or ``"sum"``. Logits are computed in ``hidden``'s dtype (the
    autocast dtype under autocast) and reduced in float32 (float64 for float64 inputs).
    ``chunk_rows`` overrides the rows per chunk.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or chunk_rows < 1):
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not match hidden states of shape "
            f"{tuple(hidden.shape)}: expected targets (...) for hidden (..., dim)"
        )
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight of shape {tuple(weight.shape)} does not fit hidden states of width "
            f"{hidden.shape[-1]}: expected (vocab, {hidden.shape[-1]})"
        )
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must hold integer ids, got dtype {targets.dtype}")
    x = hidden.reshape(-1, hidden.shape[-1])  # (N, C)
    t = targets.reshape(-1).long()  # (N,)
    counted = t != IGNORE_INDEX  # (N,)
    _check_targets(t, counted, weight.shape[0])
    rows = chunk_rows or default_chunk_rows(x.shape[0], weight.shape)
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        # Reading plain CPU targets is free: skip the row masks when all of them count.
        masked = not _plain_cpu(t) or not bool(counted.all())
        total = _LinearCrossEntropy.apply(x, weight, t, counted, rows, dtype, masked)
    else:
        with torch.autocast(device, enabled=False):
            total = _chunked_loss(x.to(dtype), weight.to(dtype), t, counted, rows)
    if reduction == "sum":
        return total
    return total / counted.sum()


_MIN_CHUNK_LOGITS = 1 << 22  # below this many logits a chunk's kernels cost more than they do


def default_chunk_rows(n: int, weight_shape: tuple[int, int]) -> int:
    """Rows per chunk for ``n`` rows and a ``(V, C)`` weight: about ``V / C`` chunks
    (each chunk's logits near the size of the hidden states), but none under 4M logits."""
    vocab, dim = weight_shape
    chunks = max(1, math.ceil(vocab / dim))
    return max(math.ceil(n / chunks), math.ceil(_MIN_CHUNK_LOGITS / vocab), 1)


def _plain_cpu(t: torch.Tensor) -> bool:
    """Values that can be read without a device sync: not a fake (shape-only) tensor."""
    return type(t) is torch.Tensor and t.device.type == "cpu"


def _check_targets(t: torch.Tensor, counted: torch.Tensor, vocab: int) -> None:
    """Counted targets (``counted``: not ``-100``) outside ``[0, vocab)``: a
    ``ValueError`` with the id. Checked for plain CPU tensors only: elsewhere reading
    them would synchronise with the device, and a fake tensor (shapes only) has no
    values."""
    if not _plain_cpu(t):
        return
    ids = t[counted]
    if ids.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(ids))
    if low < 0 or high >= vocab:
        bad = low if low < 0 else high
        raise ValueError(f"targets: id {bad} is out of range [0, {vocab}) (and not -100)")


def _reduced(dtype: torch.dtype) -> torch.dtype:
    """Losses and summed gradients: float32, or float64 for float64 inputs."""
    return torch.promote_types(dtype, torch.float32)


def _chunk_log_probs(
    x: torch.Tensor, weight: torch.Tensor, t: torch.Tensor, counted: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk's log-probabilities ``(n, V)`` (at least float32) and its per-row loss
    ``(n,)`` (zero where the target is not ``counted``)."""
    logits = x @ weight.T  # (n, V)
    log_probs = torch.log_softmax(logits.to(_reduced(logits.dtype)), dim=-1)
    picked = log_probs.gather(1, t.clamp(min=0).unsqueeze(1)).squeeze(1)  # (n,)
    return log_probs, torch.where(counted, -picked, 0.0)


def _chunked_loss(
    x: torch.Tensor, weight: torch.Tensor, t: torch.Tensor, counted: torch.Tensor, rows: int
) -> torch.Tensor:
    total = torch.zeros((), dtype=_reduced(x.dtype), device=x.device)
    for s in range(0, x.shape[0], rows):
        part = slice(s, s + rows)
        total += _chunk_log_probs(x[part], weight, t[part], counted[part])[1].sum()
    return total


class _LinearCrossEntropy(torch.autograd.Function):
    """Summed loss; the gradients are computed chunk by chunk in forward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        t: torch.Tensor,
        counted: torch.Tensor,
        rows: int,
        dtype: torch.dtype,
        masked: bool,
    ) -> torch.Tensor:
        want_x, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]  # type: ignore[attr-defined]
        with torch.autocast(x.device.type, enabled=False):
            xs, w = x.to(dtype), weight.to(dtype)
            grad_x = torch.empty_like(xs) if want_x else None
            acc = _reduced(dtype)
            grad_w = torch.zeros(w.shape, dtype=acc, device=w.device) if want_w else None
            total = torch.zeros((), dtype=acc, device=x.device)
            for s in range(0, xs.shape[0], rows):
                xc, tc, valid = xs[s : s + rows], t[s : s + rows], counted[s : s + rows]
                log_probs, loss = _chunk_log_probs(xc, w, tc, valid)
                total += loss.sum()
                # d(loss)/d(logits) = softmax - one_hot(target) on counted rows. Ignored
                # rows are zeroed on the narrow side: in x's gradient and in the x that
                # meets the weight's gradient.
                grad = log_probs.exp_()  # (n, V), the softmax, in place
                grad.scatter_add_(1, tc.clamp(min=0).unsqueeze(1), grad.new_full((len(tc), 1), -1))
                grad = grad.to(dtype)
                keep = valid.unsqueeze(1).to(dtype) if masked else None  # (n, 1)
                if grad_x is not None:
                    out = grad_x[s : s + rows]
                    torch.matmul(grad, w, out=out)
                    if keep is not None:
                        out.mul_(keep)
                if grad_w is None:
                    continue
                if keep is not None:
                    xc = xc * keep
                if dtype == acc:
                    grad_w.addmm_(grad.T, xc)  # (V, C)
                else:  # summed in float32 across chunks
                    grad_w += (grad.T @ xc).to(acc)
        ctx.save_for_backward(
            grad_x if grad_x is None else grad_x.to(x.dtype),
            grad_w if grad_w is None else grad_w.to(weight.dtype),
        )
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        grad_x, grad_w = ctx.saved_tensors  # type: ignore[attr-defined]
        return (
            None if grad_x is None else grad_x * grad_out.to(grad_x.dtype),
            None if grad_w is None else grad_w * grad_out.to(grad_w.dtype),
            None,
            None,
            None,
            None,
            None,
        )
