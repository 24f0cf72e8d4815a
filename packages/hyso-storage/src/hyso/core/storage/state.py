"""Moving model, optimizer and scheduler states in and out of checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch

from .errors import CheckpointError

__all__ = ["apply_state", "match_state_keys", "snapshot_to_cpu", "unwrap_model"]

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class _HasStates(Protocol):
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def snapshot_to_cpu(obj: Any, reuse: Any = None) -> Any:
    """A deep copy with every tensor copied to CPU memory (detached).

    ``reuse`` is an earlier snapshot of the same structure: its tensors are
    overwritten in place where shape and dtype still match, which avoids fresh
    allocations (and their page faults). Copies from CUDA go to pinned memory
    asynchronously and are waited for before returning.
    """
    state: dict[str, Any] = {"cuda": False, "memo": {}, "reused": set()}
    result = _snapshot(obj, reuse, state)
    if state["cuda"]:
        torch.cuda.synchronize()
    return result


def _snapshot(obj: Any, old: Any, state: dict[str, Any]) -> Any:
    if isinstance(obj, torch.Tensor):
        memo = state["memo"]
        if id(obj) in memo:  # the same tensor twice (tied weights) stays one tensor
            return memo[id(obj)]
        copy = _copy_tensor(obj.detach(), old, state)
        memo[id(obj)] = copy
        return copy
    if isinstance(obj, dict):  # dict or OrderedDict, kept as such
        old_d = old if isinstance(old, dict) else {}
        return type(obj)((k, _snapshot(v, old_d.get(k), state)) for k, v in obj.items())
    if isinstance(obj, Mapping):
        old_d = old if isinstance(old, Mapping) else {}
        return {k: _snapshot(v, old_d.get(k), state) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        old_s = (
            old if isinstance(old, (list, tuple)) and len(old) == len(obj) else [None] * len(obj)
        )
        items = [_snapshot(v, o, state) for v, o in zip(obj, old_s)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(_snapshot(v, None, state) for v in obj)
    return obj


def _copy_tensor(src: torch.Tensor, old: Any, state: dict[str, Any]) -> torch.Tensor:
    from_cuda = src.is_cuda
    state["cuda"] |= from_cuda
    if (
        isinstance(old, torch.Tensor)
        and old.device.type == "cpu"
        and old.shape == src.shape
        and old.dtype == src.dtype
        and old.is_contiguous()
        and id(old) not in state["reused"]
    ):
        state["reused"].add(id(old))
        return old.copy_(src, non_blocking=from_cuda and old.is_pinned())
    if from_cuda:
        buffer = torch.empty(src.shape, dtype=src.dtype, pin_memory=True)
        return buffer.copy_(src, non_blocking=True)
    return src.to("cpu", copy=True)


def match_state_keys(state: Mapping[str, Any], expected: set[str]) -> dict[str, Any]:
    """Rename ``state``'s keys by adding or removing a wrapper prefix to fit ``expected``."""
    keys = list(state)
    if set(keys) == expected or not keys:
        return dict(state)
    candidates: list[dict[str, Any]] = [dict(state)]
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in keys):
            candidates.append({k[len(prefix) :]: v for k, v in state.items()})
        candidates.append({prefix + k: v for k, v in state.items()})
    return max(candidates, key=lambda c: len(expected.intersection(c)))


def apply_state(
    checkpoint: _HasStates,
    model: torch.nn.Module | None,
    optimizer: Any = None,
    scheduler: Any = None,
    *,
    strict: bool = True,
    where: str = "checkpoint",
) -> None:
    """Load model (unless ``None``), optimizer and scheduler states; errors name ``where``."""
    if model is not None:
        target = unwrap_model(model)
        state = match_state_keys(checkpoint.model_state, set(target.state_dict()))
        try:
            target.load_state_dict(state, strict=strict)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{where}: model state does not fit the model: {exc}") from exc
    for name, obj, saved in (
        ("optimizer", optimizer, checkpoint.optimizer_state),
        ("scheduler", scheduler, checkpoint.scheduler_state),
    ):
        if obj is None:
            continue
        if saved is None:
            raise CheckpointError(f"{where} holds no {name} state, but a {name} was given")
        try:
            obj.load_state_dict(saved)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{where}: {name} state does not fit: {exc}") from exc
