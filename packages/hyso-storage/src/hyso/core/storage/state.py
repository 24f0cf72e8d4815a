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


def snapshot_to_cpu(obj: Any) -> Any:
    """A deep copy with every tensor copied to CPU memory (detached)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):  # dict or OrderedDict, kept as such
        return type(obj)((k, snapshot_to_cpu(v)) for k, v in obj.items())
    if isinstance(obj, Mapping):
        return {k: snapshot_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [snapshot_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(snapshot_to_cpu(v) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(snapshot_to_cpu(v) for v in obj)
    return obj


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
    model: torch.nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    *,
    strict: bool = True,
    where: str = "checkpoint",
) -> None:
    """Load model, optimizer and scheduler states; errors name ``where``."""
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
