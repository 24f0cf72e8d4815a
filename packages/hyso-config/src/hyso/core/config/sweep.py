"""Grid sweeps: a ``sweep:`` section maps dotted keys to lists of values.

``expand_sweep(cfg)`` returns one ``Config`` per point of the cartesian product,
each with the sweep applied as typed overrides, the ``sweep`` section removed,
and a short label (``lr=0.001,batch_size=32``) readable with ``sweep_label``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from .config import Config
from .errors import ConfigError
from .limits import MAX_SWEEP_POINTS
from .overrides import apply_overrides
from .values import format_override

__all__ = ["SWEEP_KEY", "expand_sweep", "sweep_label"]

SWEEP_KEY = "sweep"
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]+")


def expand_sweep(cfg: Mapping[str, Any]) -> list[Config]:
    """One ``Config`` per grid point of ``cfg["sweep"]`` (``[cfg]`` alone when there is none)."""
    base = cfg if isinstance(cfg, Config) else Config(cfg)
    spec = base.get(SWEEP_KEY)
    raw = base._meta.get("raw")
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != SWEEP_KEY}
    stripped = Config({k: v for k, v in base.items() if k != SWEEP_KEY})
    stripped._meta.update(base._meta)
    if raw is not None:
        stripped._meta["raw"] = raw
    if spec is None:
        stripped._meta["sweep_label"] = ""
        return [stripped]
    # Recorded so that load_config_with_overrides(source, overrides) rebuilds a point.
    stripped._meta["overrides"] = [*base._meta.get("overrides", []), f"~{SWEEP_KEY}"]
    keys, grids = _validate(spec)
    names = _short_names(keys)
    points: list[Config] = []
    seen: dict[str, int] = {}
    for values in itertools.product(*grids):
        texts = [format_override(k, v) for k, v in zip(keys, values)]
        point = apply_overrides(stripped, texts)
        label = ",".join(f"{n}={_label_value(v)}" for n, v in zip(names, values))
        label = _UNSAFE.sub("_", label)
        if label in seen:
            seen[label] += 1
            label = f"{label}-{seen[label]}"
        else:
            seen[label] = 0
        point._meta["sweep_label"] = label
        points.append(point)
    return points


def sweep_label(cfg: Mapping[str, Any]) -> str:
    """The label ``expand_sweep`` gave ``cfg`` ("" for a config that is no sweep point)."""
    meta = cfg._meta if isinstance(cfg, Config) else {}
    return str(meta.get("sweep_label", ""))


def _validate(spec: Any) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(
            f"'{SWEEP_KEY}' must map dotted keys to lists of values, e.g. "
            f"'{SWEEP_KEY}: {{training.lr: [0.001, 0.0003]}}', got {spec!r}"
        )
    keys: list[str] = []
    grids: list[list[Any]] = []
    for key, values in spec.items():
        if isinstance(values, Mapping):
            raise ConfigError(
                f"'{SWEEP_KEY}.{key}' is a section; write the swept key in full with dots, "
                f"e.g. '{SWEEP_KEY}: {{training.lr: [0.001, 0.0003]}}'"
            )
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"'{SWEEP_KEY}.{key}' must be a non-empty list of values, e.g. [0.001, 0.0003]; "
                f"got {values!r}"
            )
        keys.append(key)
        grids.append(list(values))
    total = 1
    for values in grids:  # the size of the grid, before anything is expanded
        total *= len(values)
        if total > MAX_SWEEP_POINTS:
            sizes = " x ".join(str(len(v)) for v in grids)
            raise ConfigError(
                f"'{SWEEP_KEY}' spans {sizes} points, more than the {MAX_SWEEP_POINTS:,} "
                "one sweep may expand to; split it into smaller sweeps"
            )
    return keys, grids


def _short_names(keys: list[str]) -> list[str]:
    lasts = [k.lstrip("+").rsplit(".", 1)[-1] for k in keys]
    return [last if lasts.count(last) == 1 else k.lstrip("+") for k, last in zip(keys, lasts)]


def _label_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    if isinstance(value, Config):
        return repr(value.to_dict())
    return str(value)
