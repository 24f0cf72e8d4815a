"""Hugging Face model folders in and out: :func:`load_hf` and :func:`to_hf`.

Supported classes are listed in :data:`ARCHITECTURES` (one mapping per class in
this folder). transformers itself is not needed: only its file layout is read
and written. LoRA adapters go in and out in PEFT's layout (:mod:`.adapters`).
"""

from .adapters import load_peft_adapter, save_peft_adapter
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
    "load_peft_adapter",
    "save_peft_adapter",
    "to_hf",
]
