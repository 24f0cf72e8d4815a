"""Hugging Face model folders in and out: :func:`load_hf` and :func:`to_hf`.

Supported classes are listed in :data:`ARCHITECTURES` (one mapping per class in
this folder). transformers itself is not needed: only its file layout is read
and written.
"""

from .base import HFArchitecture, Rule, Unsupported
from .convert import HFExportError, load_hf, to_hf
from .registry import ARCHITECTURES, architecture_for
from .weights import HFFormatError, WeightSource

__all__ = [
    "ARCHITECTURES",
    "HFArchitecture",
    "HFExportError",
    "HFFormatError",
    "Rule",
    "Unsupported",
    "WeightSource",
    "architecture_for",
    "load_hf",
    "to_hf",
]
