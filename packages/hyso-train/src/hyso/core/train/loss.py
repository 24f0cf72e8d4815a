"""The default loss: token-level cross-entropy for every batch layout the toolkit uses.

Layouts (targets are aligned with the logits position by position, already shifted):

- ``(inputs, targets)``: ``model(inputs)`` gives logits ``(..., V)``, targets ``(...)``.
- ``{"input_ids", "labels", "attention_mask"?}``: the same, with the mask passed on.
- encoder-decoder models (``model.is_encoder_decoder``) with ``(src, tgt)`` or
  ``{"src_ids", "tgt_ids", "src_mask"?}``: teacher forcing, the decoder reads
  ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``.

Positions whose target is ``-100`` are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "IGNORE_INDEX",
    "LossFn",
    "count_tokens",
    "default_loss",
    "default_loss_for",
    "extract_logits",
    "loss_sum_and_count",
    "move_to_device",
    "token_cross_entropy",
]

IGNORE_INDEX = -100
LossFn = Callable[[nn.Module, Any], Any]


def default_loss(model: nn.Module, batch: Any, *, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of ``model`` on ``batch`` (mean over counted tokens, or their sum).

    A model with ``accepts_targets`` (hyso's decoder-only model) computes the mean itself
    from ``model(input_ids, targets=...)``, without holding the whole logits.
    """
    if getattr(_unwrap(model), "accepts_targets", False):
        own = _own_loss(model, batch, reduction)
        if own is not None:
            return own[0]
    logits, targets = forward_for_loss(model, batch)
    return token_cross_entropy(logits, targets, reduction=reduction)


def default_loss_for(model: nn.Module) -> LossFn:
    """``default_loss`` specialised once for ``model``: a plain ``(inputs, targets)`` batch
    of a model that is not encoder-decoder skips the layout checks (the hot path)."""
    inner = _unwrap(model)
    if getattr(inner, "is_encoder_decoder", False):
        return default_loss
    tensor = torch.Tensor
    own = bool(getattr(inner, "accepts_targets", False))

    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        kind = type(batch)
        if (kind is tuple or kind is list) and len(batch) == 2:
            if own:
                return model(batch[0], targets=batch[1])
            out = model(batch[0])
            logits = out if type(out) is tensor else extract_logits(out)
            return token_cross_entropy(logits, batch[1])
        return default_loss(model, batch)

    return loss


def loss_sum_and_count(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed token cross-entropy of ``model`` on ``batch`` and the number of counted
    targets (float64, no device sync): what validation adds up."""
    if getattr(_unwrap(model), "accepts_targets", False):
        own = _own_loss(model, batch, "sum")
        if own is not None:
            loss, targets = own
            return loss, (targets != IGNORE_INDEX).sum().double()
    logits, targets = forward_for_loss(model, batch)
    loss = token_cross_entropy(logits, targets, reduction="sum")
    return loss, (targets != IGNORE_INDEX).sum().double()


def _own_loss(
    model: nn.Module, batch: Any, reduction: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(model(input_ids, targets=...), targets)`` for the batch layouts of a
    decoder-only model (``(inputs, targets)``, or a dict with ``input_ids`` and
    ``labels``); else ``None``."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return model(batch[0], targets=batch[1], reduction=reduction), batch[1]
    if isinstance(batch, Mapping) and "input_ids" in batch and "labels" in batch:
        if "src_ids" in batch:
            return None
        mask, labels = batch.get("attention_mask"), batch["labels"]
        loss = model(batch["input_ids"], attention_mask=mask, targets=labels, reduction=reduction)
        return loss, labels
    return None


def forward_for_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` on ``batch`` and return ``(logits, targets)`` aligned for the loss."""
    encdec = bool(getattr(_unwrap(model), "is_encoder_decoder", False))
    if isinstance(batch, Mapping):
        if encdec or "src_ids" in batch:
            return _encdec_from_dict(model, batch)
        if "input_ids" not in batch or "labels" not in batch:
            raise ValueError(
                f"a dict batch needs 'input_ids' and 'labels' (and optionally "
                f"'attention_mask'); got keys {sorted(batch)}"
            )
        mask = batch.get("attention_mask")
        ids = batch["input_ids"]
        out = model(ids) if mask is None else model(ids, attention_mask=mask)
        return extract_logits(out), batch["labels"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        inputs, targets = batch
        if encdec:
            src, tgt = inputs, targets
            return extract_logits(model(src, tgt[:, :-1])), tgt[:, 1:]
        return extract_logits(model(inputs)), targets
    raise ValueError(
        "the default loss takes batches (inputs, targets), (src, tgt) for encoder-decoder "
        "models, or dicts with input_ids/labels; got "
        f"{type(batch).__name__}{'' if not isinstance(batch, (tuple, list)) else len(batch)}; "
        "pass loss_fn=... for other layouts"
    )


def _encdec_from_dict(model: nn.Module, batch: Mapping[str, Any]) -> tuple[Any, Any]:
    if "src_ids" not in batch or "tgt_ids" not in batch:
        raise ValueError(
            f"an encoder-decoder dict batch needs 'src_ids' and 'tgt_ids'; got keys {sorted(batch)}"
        )
    tgt = batch["tgt_ids"]
    tgt_mask = batch.get("tgt_mask")
    out = model(
        batch["src_ids"],
        tgt[:, :-1],
        src_mask=batch.get("src_mask"),
        tgt_mask=None if tgt_mask is None else tgt_mask[:, :-1],
    )
    labels = batch.get("labels")
    return extract_logits(out), (tgt[:, 1:] if labels is None else labels)


def token_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of ``logits (..., V)`` against ``targets (...)``, ignoring ``-100``."""
    if logits.dim() == 2 and targets.dim() == 1:
        if logits.shape[0] != targets.shape[0]:
            _shape_error(logits, targets)
        return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction=reduction)
    if logits.shape[:-1] != targets.shape:
        _shape_error(logits, targets)
    v = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, v),  # (B*T, V)
        targets.reshape(-1),  # (B*T,)
        ignore_index=IGNORE_INDEX,
        reduction=reduction,
    )


def _shape_error(logits: torch.Tensor, targets: torch.Tensor) -> None:
    raise ValueError(
        f"logits of shape {tuple(logits.shape)} do not match targets of shape "
        f"{tuple(targets.shape)}: expected logits (..., vocab) over targets (...)"
    )


def extract_logits(out: Any) -> torch.Tensor:
    """The logits tensor of a model output: a tensor, ``.logits``, ``["logits"]`` or ``[0]``."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, Mapping) and "logits" in out:
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ValueError(f"cannot find logits in a model output of type {type(out).__name__}")


def count_tokens(batch: Any) -> int:
    """Tokens a batch feeds the model (elements of its input ids; no device sync)."""
    kind = type(batch)
    if (kind is tuple or kind is list) and batch and type(batch[0]) is torch.Tensor:
        return batch[0].numel()
    if isinstance(batch, torch.Tensor):
        return batch.numel()
    if isinstance(batch, Mapping):
        for key in ("input_ids", "src_ids"):
            if key in batch:
                n = batch[key].numel()
                return n + batch["tgt_ids"].numel() if key == "src_ids" else n
        return 0
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0].numel()
    return 0


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """``batch`` with every tensor (in tuples, lists, dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, tuple):
        return tuple(move_to_device(b, device, non_blocking) for b in batch)
    if isinstance(batch, list):
        return [move_to_device(b, device, non_blocking) for b in batch]
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    return batch


def _unwrap(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model
