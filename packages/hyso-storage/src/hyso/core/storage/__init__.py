"""Experiment storage: run folders, logger, manifest, checkpoints, seeding."""

__version__ = "0.1.0"

__all__ = ["__version__"]
