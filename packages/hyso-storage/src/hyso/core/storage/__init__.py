"""Experiment storage: run folders, logger, manifest, crash-safe checkpoints, seeding."""

from .checkpoint import Checkpoint, CheckpointConfig, CheckpointInfo, CheckpointManager
from .errors import CheckpointCorruptError, CheckpointError, UnsafeCheckpointError
from .lock import FolderLockedError
from .logging import get_logger
from .manifest import Manifest, load_manifest, save_manifest
from .paths import RunPathFactory, RunPaths
from .rng import capture_rng_state, restore_rng_state
from .seed import make_generator, seed_worker, set_global_seed

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointManager",
    "FolderLockedError",
    "Manifest",
    "RunPathFactory",
    "RunPaths",
    "UnsafeCheckpointError",
    "__version__",
    "capture_rng_state",
    "get_logger",
    "load_manifest",
    "make_generator",
    "restore_rng_state",
    "save_manifest",
    "seed_worker",
    "set_global_seed",
]
