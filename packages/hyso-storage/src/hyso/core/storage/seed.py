"""Seeding: one call to make Python, NumPy and torch reproducible."""

from __future__ import annotations

import importlib.util
import os
import random

import torch

__all__ = ["make_generator", "seed_worker", "set_global_seed"]

_MAX_SEED = 2**32 - 1  # NumPy's legacy seeding accepts 0..2**32-1


def set_global_seed(seed: int, deterministic: bool = False) -> int:
    """Seed Python ``random``, NumPy (when installed), torch CPU and CUDA.

    Also sets ``PYTHONHASHSEED`` (it affects child processes such as DataLoader
    workers started with spawn; the current process's hash seed is fixed at start).
    ``deterministic=True`` turns on ``torch.use_deterministic_algorithms``, cuDNN
    deterministic mode without benchmarking, and the cuBLAS workspace setting;
    ``False`` leaves those settings as they are. Returns ``seed``.
    """
    seed = _check_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    if importlib.util.find_spec("numpy") is not None:
        import numpy as np

        np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader: seed ``random``/NumPy from the worker's torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    if importlib.util.find_spec("numpy") is not None:
        import numpy as np

        np.random.seed(worker_seed)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (pass it to a DataLoader)."""
    generator = torch.Generator()
    generator.manual_seed(_check_seed(seed))
    return generator


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed {seed} is out of range 0..{_MAX_SEED}")
    return seed
