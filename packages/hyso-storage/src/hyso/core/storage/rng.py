"""Capture and restore the random number generator states of a process.

The captured state holds only ints, floats, strings, lists and tensors, so it is
loadable with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import importlib.util
import logging
import random
from typing import Any

import torch

__all__ = ["capture_rng_state", "restore_rng_state"]

_log = logging.getLogger(__name__)


def capture_rng_state() -> dict[str, Any]:
    """States of Python ``random``, NumPy (when installed), torch CPU and CUDA.

    CUDA states are captured once this process has initialized CUDA (before that
    the devices' generators are untouched, and in a forked child CUDA is unusable).
    """
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    numpy_state = _capture_numpy()
    if numpy_state is not None:
        state["numpy"] = numpy_state
    if torch.cuda.is_initialized():  # False in a forked child, where CUDA cannot be used
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`capture_rng_state`; absent parts are left alone."""
    if not isinstance(state, dict):
        raise ValueError(f"rng state must be a dict, got {type(state).__name__}")
    if "python" in state:
        py = state["python"]
        random.setstate((int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"].to(device="cpu", dtype=torch.uint8))
    if "numpy" in state:
        _restore_numpy(state["numpy"])
    if "cuda" in state:
        _restore_cuda(list(state["cuda"]))


def _capture_numpy() -> dict[str, Any] | None:
    if importlib.util.find_spec("numpy") is None:
        return None
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "kind": str(kind),
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _restore_numpy(state: dict[str, Any]) -> None:
    if importlib.util.find_spec("numpy") is None:
        _log.warning("checkpoint holds a NumPy RNG state but NumPy is not installed; skipped")
        return
    import numpy as np

    keys = np.asarray(state["keys"].cpu().numpy(), dtype=np.uint32)
    np.random.set_state(
        (
            state["kind"],
            keys,
            int(state["pos"]),
            int(state["has_gauss"]),
            float(state["cached_gaussian"]),
        )
    )


def _restore_cuda(states: list[torch.Tensor]) -> None:
    if not torch.cuda.is_available():
        _log.warning("checkpoint holds CUDA RNG states but CUDA is not available; skipped")
        return
    count = torch.cuda.device_count()
    if len(states) != count:
        _log.warning(
            "checkpoint holds %d CUDA RNG states but %d devices are visible; restoring %d",
            len(states),
            count,
            min(len(states), count),
        )
    try:
        for index, device_state in enumerate(states[:count]):
            torch.cuda.set_rng_state(device_state.cpu(), device=index)
    except RuntimeError as exc:  # e.g. a forked child of a process that used CUDA
        _log.warning("CUDA RNG states not restored: %s", exc)
