"""Turn config objects into plain JSON data (dicts, lists, str, numbers, bool, None)."""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(obj: Any, *, where: str = "value") -> Any:
    """Convert ``obj`` to plain JSON data, recursively.

    Accepts mappings, dataclasses, objects with ``to_dict()``, sequences, sets,
    paths, enums, scalars with ``.item()`` (NumPy, 0-d tensors), torch dtypes and
    devices. Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``.
    Anything else raises ``ValueError`` naming where in ``obj`` it sits.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, where=f"{where}.{k}") for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return to_jsonable(fields, where=where)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict(), where=where)
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        items = [to_jsonable(v, where=f"{where}[]") for v in obj]
        return sorted(items, key=repr)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value, where=where)
    if type(obj).__module__ == "torch" and type(obj).__name__ in ("dtype", "device"):
        return str(obj)
    if _is_scalar(obj):
        return to_jsonable(obj.item(), where=where)
    raise ValueError(
        f"{where}: cannot record an object of type {type(obj).__qualname__} as JSON; "
        "pass a mapping, dataclass, object with to_dict(), list or scalar"
    )


def _is_scalar(obj: Any) -> bool:
    """NumPy scalars and 0-d arrays/tensors: things with ``item()`` holding one number."""
    if not callable(getattr(obj, "item", None)):
        return False
    if isinstance(obj, numbers.Number) or type(obj).__name__ == "bool_":
        return True
    if getattr(obj, "ndim", None) == 0:
        return True
    dim = getattr(obj, "dim", None)
    return callable(dim) and dim() == 0
