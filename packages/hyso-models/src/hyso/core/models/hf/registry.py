"""transformers architectures by class name: one line per supported class."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import HFArchitecture
from .bert import BertArchitecture
from .gpt2 import GPT2Architecture
from .llama import LlamaArchitecture, MistralArchitecture, Qwen2Architecture
from .t5 import T5Architecture
from .weights import HFFormatError

__all__ = ["ARCHITECTURES", "architecture_for"]

ARCHITECTURES: dict[str, HFArchitecture] = {
    a.architecture: a
    for a in (
        LlamaArchitecture(),
        MistralArchitecture(),
        Qwen2Architecture(),
        GPT2Architecture(),
        BertArchitecture(),
        T5Architecture(),
    )
}


def architecture_for(hf: Mapping[str, Any], path: Path) -> HFArchitecture:
    """The mapping for a ``config.json``: by ``architectures[0]``, else by ``model_type``."""
    names = hf.get("architectures")
    if isinstance(names, list) and names:
        if len(names) != 1 or names[0] not in ARCHITECTURES:
            raise HFFormatError(
                f"{path}: architectures {names!r} is not supported; supported: "
                f"{', '.join(ARCHITECTURES)}"
            )
        return ARCHITECTURES[names[0]]
    by_type = {a.model_type: a for a in ARCHITECTURES.values()}
    model_type = hf.get("model_type")
    if model_type not in by_type:
        raise HFFormatError(
            f"{path}: model_type {model_type!r} is not supported; supported: {', '.join(by_type)}"
        )
    return by_type[model_type]
