"""Training: Trainer, callbacks, metrics and the ``hyso`` command line."""

__version__ = "0.1.0"

__all__ = ["__version__"]
