"""Transformer models built from one set of reusable layers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
