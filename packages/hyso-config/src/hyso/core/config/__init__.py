"""Config files for training runs: YAML/JSON loading, safe overrides, merge, sweeps."""

__version__ = "0.1.0"

__all__ = ["__version__"]
