"""What every ``hyso`` sub-command shares: the one-line error type, optional imports
with install hints, run-folder checks and number formatting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hyso.core.storage import RunPaths

__all__ = [
    "FULL_HINT",
    "CliError",
    "format_count",
    "format_float",
    "require_matplotlib",
    "require_run_dir",
    "require_tokenizer",
]

FULL_HINT = 'pip install "hyso-train[full]"'


class CliError(ValueError):
    """A user-facing error: printed as one line, exit status 2."""


def require_tokenizer() -> Any:
    """The tokenizer module, or a one-line error saying how to install it."""
    try:
        import hyso.core.tokenizer as tokenizer
    except ImportError:
        raise CliError(f"this command needs hyso-tokenizer: {FULL_HINT}") from None
    return tokenizer


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or a one-line error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError(f'hyso plot needs matplotlib: {FULL_HINT} (or "hyso-train[plot]")') from None
    return plt


def require_run_dir(path: str | Path) -> Path:
    """``path`` as a run folder (holding manifest.json or metrics.csv), or a CliError."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise CliError(f"run folder {run_dir} does not exist")
    paths = RunPaths.for_run_dir(run_dir)
    if not paths.manifest_path.is_file() and not paths.metrics_path.is_file():
        raise CliError(
            f"{run_dir} is not a run folder "
            f"(no {paths.manifest_path.name} or {paths.metrics_path.name})"
        )
    return run_dir


def format_float(value: Any, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, or ``-`` when it is missing or not finite."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "-"


def format_count(value: Any) -> str:
    """A parameter count as ``812`` / ``1.2K`` / ``3.45M``, or ``-``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}K"
    return str(int(value))
