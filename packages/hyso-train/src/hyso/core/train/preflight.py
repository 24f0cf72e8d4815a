"""Checks ``hyso train`` makes before it creates anything: text that can be written,
a device that exists, and a model that fits in memory.

Each failure is a :class:`TrainingConfigError` naming the key at fault, raised
before the run folder exists, so a bad config never leaves a half-made run behind.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from typing import Any

from hyso.core.train.errors import TrainingConfigError

__all__ = [
    "check_device",
    "check_model_size",
    "check_writable_text",
    "estimate_parameters",
    "memory_budget",
]

# fp32 weights, gradients and AdamW's two moments
TRAINING_BYTES_PER_PARAMETER = 16


def check_writable_text(tree: Any, path: str = "") -> None:
    """Every key and string of ``tree`` encodes as UTF-8 (a lone surrogate does not)."""
    if isinstance(tree, str):
        _encodable(tree, path or "config")
    elif isinstance(tree, Mapping):
        for key, value in tree.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                _encodable(key, f"the key {name!r}")
            check_writable_text(value, name)
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            check_writable_text(value, f"{path}[{i}]")


def _encodable(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TrainingConfigError(
            f"{where} holds {text[exc.start : exc.end]!r} at position {exc.start}, which is "
            "not valid Unicode text (a lone surrogate) and cannot be written to config.yaml"
        ) from None


def check_device(device: str | None) -> None:
    """``training.device`` names a device this machine has."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise TrainingConfigError(
            f"training.device {device!r} is not a device: use 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise TrainingConfigError(
                f"training.device is {device!r}, but this machine has no CUDA device "
                "(or torch was built without CUDA): use training.device=cpu"
            )
        if parsed.index is not None and parsed.index >= count:
            raise TrainingConfigError(
                f"training.device is {device!r}, but this machine has {count} CUDA device(s)"
            )
    elif parsed.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise TrainingConfigError(f"training.device is {device!r}, but MPS is not available")


def _int(model: Mapping[str, Any], *names: str, default: int | None = None) -> int | None:
    for name in names:
        value = model.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def estimate_parameters(model: Mapping[str, Any], vocab_size: int) -> int | None:
    """An upper estimate of a transformer's parameter count from its config section
    (embeddings and an untied output layer, attention and MLP per layer); ``None``
    when ``dim`` or the number of layers is not a positive integer."""
    dim = _int(model, "dim")
    layers = _int(model, "num_layers", "layers")
    if dim is None or layers is None:
        return None
    hidden = _int(model, "hidden_dim", default=4 * dim)
    layers += _int(model, "num_decoder_layers", default=0) or 0
    seq = _int(model, "max_seq_len", default=1024)
    per_layer = 4 * dim * dim + 3 * dim * hidden + 4 * dim
    return 2 * vocab_size * dim + seq * dim + layers * per_layer


def memory_budget(device: str | None) -> int | None:
    """Bytes this process may allocate on ``device``: free CUDA memory, else the
    smallest of physical memory and the process's address-space/data limits."""
    if device is not None and device.startswith("cuda"):
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(torch.device(device))
        except (RuntimeError, AssertionError, ValueError):
            return None
        return int(free)
    limits: list[int] = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        limit = getattr(resource, name, None)
        if limit is not None:
            soft = resource.getrlimit(limit)[0]
            if soft != resource.RLIM_INFINITY and soft > 0:
                limits.append(soft)
    return min(limits) if limits else None


def check_model_size(model: Mapping[str, Any], vocab_size: int, device: str | None) -> None:
    """Refuse a model whose weights, gradients and optimizer state cannot fit in memory,
    before anything is allocated."""
    params = estimate_parameters(model, vocab_size)
    budget = memory_budget(device)
    if params is None or budget is None:
        return
    needed = params * TRAINING_BYTES_PER_PARAMETER
    if needed > budget:
        shape = ", ".join(
            f"model.{k}={model[k]}"
            for k in ("dim", "num_layers", "layers", "hidden_dim", "max_seq_len")
            if k in model
        )
        raise TrainingConfigError(
            f"the model ({shape}, vocabulary {vocab_size}) has about {params:.3g} parameters; "
            f"training them needs about {needed / 2**30:.3g} GiB, but only "
            f"{budget / 2**30:.3g} GiB is available on {device or 'cpu'}: lower model.dim "
            "or the number of layers"
        )
