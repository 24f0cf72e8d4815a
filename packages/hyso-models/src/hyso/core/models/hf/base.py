"""What every Hugging Face architecture mapping provides, and the helpers they share.

An :class:`HFArchitecture` turns a transformers ``config.json`` into a hyso
config (refusing any field that would change the math and that hyso does not
implement), turns a hyso config back into a ``config.json`` (refusing, with the
feature named, a model no transformers class expresses exactly), and lists the
:class:`Rule` of every hyso tensor: which transformers tensors it is made of.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .weights import HFFormatError

if TYPE_CHECKING:
    from hyso.core.models.base import HysoModel
    from hyso.core.models.config import TransformerConfig

__all__ = ["HFArchitecture", "Rule", "Unsupported", "hf_bool", "hf_float", "hf_int", "require"]


class Unsupported(Exception):
    """A hyso model feature that a transformers class does not express (``to_hf``)."""


def require(wanted: Mapping[str, tuple[Any, Any]]) -> None:
    """``wanted`` maps a feature to ``(what the model has, what the class needs)``;
    :class:`Unsupported` names the first that differs."""
    for key, (have, need) in wanted.items():
        if have != need:
            raise Unsupported(f"{key} {have!r} (needs {need!r})")


@dataclass(frozen=True)
class Rule:
    """One hyso tensor made of the transformers tensors ``hf``: concatenated along the
    first dim (their first-dim sizes are ``sizes``), or, with ``transpose``, the one
    tensor transposed (GPT-2's ``Conv1D`` stores ``(in, out)``)."""

    hf: tuple[str, ...]
    sizes: tuple[int, ...] | None = None
    transpose: bool = False

    def hf_shapes(self, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The transformers shapes that make a hyso tensor of ``shape``."""
        if self.transpose:
            return [tuple(reversed(shape))]
        if self.sizes is None:
            return [shape]
        return [(size, *shape[1:]) for size in self.sizes]


class HFArchitecture:
    """Base of the mappings; one instance per transformers class name."""

    architecture: ClassVar[str] = ""
    model_type: ClassVar[str] = ""
    # Tensors a checkpoint may hold that carry no weights (rotary tables, causal masks).
    ignored: ClassVar[tuple[str, ...]] = ()
    # Where the layer index sits in tensor names, and the token embedding's name.
    layer_pattern: ClassVar[str] = r"layers\.(\d+)\."
    embedding: ClassVar[str] = ""
    # A prefix the hub's older checkpoints leave off their names ("" when none).
    bare_prefix: ClassVar[str] = ""
    # The output head's name, which a checkpoint with tied embeddings may store anyway.
    tied_head: ClassVar[str] = ""

    @property
    def family(self) -> str:
        """The hyso family this architecture loads as."""
        return "decoder_only"

    def hyso_config(self, hf: Mapping[str, Any], path: Path) -> dict[str, Any]:
        """hyso config values for the transformers config ``hf`` read from ``path``."""
        raise NotImplementedError

    def hf_config(self, config: TransformerConfig, family: str) -> dict[str, Any]:
        """The transformers config of a hyso model, or :class:`Unsupported` naming why not."""
        raise NotImplementedError

    def rules(self, config: TransformerConfig) -> dict[str, Rule]:
        """Every hyso tensor name (tied weights left out) and what it is made of."""
        raise NotImplementedError

    def is_ignored(self, name: str, config: TransformerConfig) -> bool:
        """Whether a tensor of the checkpoint carries nothing hyso needs: a buffer
        matching ``ignored``, or a tied checkpoint's stored copy of the output head."""
        if self.tied_head and name == self.tied_head and config.tie_embeddings:
            return True
        return any(re.search(pattern, name) for pattern in self.ignored)

    def count_layers(self, names: list[str], *, decoder: bool = False) -> int:
        """Number of distinct layer indices among tensor ``names`` (of the decoder stack
        when ``decoder``, for encoder-decoder architectures)."""
        found = {int(m.group(1)) for n in names if (m := re.search(self.layer_pattern, n))}
        return len(found)

    def finish(self, model: HysoModel) -> None:
        """Adjust a freshly loaded model (nothing by default)."""


def hf_int(hf: Mapping[str, Any], key: str, path: Path, default: Any = None) -> int:
    """``hf[key]`` as a positive integer; anything else names ``path`` and ``key``."""
    value = hf.get(key, default)
    if value is None and default is None and key not in hf:
        raise HFFormatError(f"{path}: missing key {key!r}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HFFormatError(f"{path}: {key} must be a positive integer, got {value!r}")
    return value


def hf_float(hf: Mapping[str, Any], key: str, path: Path, default: float | None = None) -> float:
    """``hf[key]`` as a positive finite number."""
    value = hf.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HFFormatError(f"{path}: {key} must be a number, got {value!r}")
    if not 0 < value < math.inf:
        raise HFFormatError(f"{path}: {key} must be positive and finite, got {value!r}")
    return float(value)


def hf_bool(hf: Mapping[str, Any], key: str, path: Path, default: bool) -> bool:
    """``hf[key]`` as true or false."""
    value = hf.get(key, default)
    if not isinstance(value, bool):
        raise HFFormatError(f"{path}: {key} must be true or false, got {value!r}")
    return value
