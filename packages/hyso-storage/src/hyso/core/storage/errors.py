"""Errors raised when checkpoints cannot be written or trusted."""

from __future__ import annotations

__all__ = ["CheckpointCorruptError", "CheckpointError", "UnsafeCheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint cannot be saved, loaded or applied; the message names the file."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint file is truncated, altered or missing its record (hash mismatch)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds objects that loading would have to execute code for."""
