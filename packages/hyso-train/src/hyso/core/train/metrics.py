"""``metrics.csv``: one row per logged step and per validation, crash-safe appends.

The file starts with a version comment and a header, written once. Every row is one
complete line written with a single ``os.write`` on an ``O_APPEND`` descriptor, so a
killed run never leaves half a row; a partial last line left by an older writer is
cut off when the file is opened again. A resumed run first cuts the file back to the
rows its checkpoint had seen (those later steps are trained again), then appends.

Other loggers (TensorBoard, MLflow, W&B: :mod:`hyso.core.train.loggers`) mirror the
file: each row written is handed, as the same dict, to the listeners added with
:meth:`CSVMetricsLogger.add_listener`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyso.core.storage.atomic import atomic_write_bytes
from hyso.core.train.callbacks import Callback

if TYPE_CHECKING:
    from hyso.core.train.trainer import Trainer

__all__ = ["COLUMNS", "FORMAT_VERSION", "CSVMetricsLogger", "MetricsFileError", "read_metrics"]

FORMAT_VERSION = 1
COLUMNS = ("step", "epoch", "split", "loss", "ppl", "lr", "tokens_per_s", "grad_norm", "elapsed_s")
_VERSION_LINE = f"# hyso-metrics format_version={FORMAT_VERSION}\n".encode()
_HEADER_LINE = (",".join(COLUMNS) + "\n").encode()


class MetricsFileError(ValueError):
    """A metrics file that cannot be appended to or read (wrong version or header)."""


class CSVMetricsLogger(Callback):
    """Write train rows on logging steps and a val row after each validation."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows = 0
        #: Last step of each split ("train", "val") the file held when it was opened,
        #: before a resume cut it back: what a killed run had already logged.
        self.logged_steps: dict[str, int] = {}
        self._keep_rows: int | None = None
        self._fd: int | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    # -- callback hooks -------------------------------------------------------------
    def on_train_start(self, trainer: Trainer) -> None:
        self.open()

    def on_step_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        if "loss" in metrics:
            loss = metrics["loss"]
            self._append(
                (
                    trainer.global_step,
                    trainer.epoch,
                    "train",
                    loss,
                    _ppl(loss),
                    metrics.get("lr"),
                    metrics.get("tokens_per_s"),
                    metrics.get("grad_norm"),
                    metrics.get("elapsed_s"),
                )
            )

    def on_validation_end(self, trainer: Trainer, metrics: Mapping[str, Any]) -> None:
        self.write_row(
            step=trainer.global_step,
            epoch=trainer.epoch,
            split="val",
            loss=metrics.get("val_loss"),
            ppl=metrics.get("val_ppl"),
            lr=trainer.current_lr(),
            tokens_per_s=metrics.get("val_tokens_per_s"),
            elapsed_s=trainer.elapsed_s(),
        )

    def on_train_end(self, trainer: Trainer) -> None:
        self.close()

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._keep_rows = int(state.get("rows", 0))

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(row)`` after each row is written; ``row`` maps every column to
        its value (None where empty). Adding the same listener again changes nothing."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    # -- file handling --------------------------------------------------------------
    def open(self) -> None:
        """Open for appending: check or write the header, repair the tail, cut to resume."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = self._repair(self._keep_rows)
        self._keep_rows = None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def close(self) -> None:
        """Close the file (rows are already on disk: each write is unbuffered)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def write_row(self, **values: Any) -> None:
        """Append one row; unknown columns are an error, missing ones are left empty."""
        extra = set(values) - set(COLUMNS)
        if extra:
            raise ValueError(f"unknown metrics column(s) {sorted(extra)}; columns: {COLUMNS}")
        self._append(tuple(values.get(c) for c in COLUMNS))

    def _append(self, cells: tuple[Any, ...]) -> None:
        """Write one row of ``cells`` (in ``COLUMNS`` order) with a single ``os.write``."""
        if self._fd is None:
            self.open()
        # None is an empty cell; str of a float is its shortest round-trip repr
        line = ",".join(["" if v is None else str(v) for v in cells]) + "\n"
        os.write(self._fd, line.encode())  # type: ignore[arg-type]
        self.rows += 1
        if self._listeners:
            row = dict(zip(COLUMNS, cells, strict=True))
            for listener in self._listeners:
                listener(row)

    def _repair(self, keep_rows: int | None) -> int:
        """Make the file end after a complete row; return its number of data rows."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            atomic_write_bytes(self.path, _VERSION_LINE + _HEADER_LINE)
            return 0
        data = self.path.read_bytes()
        prefix = _VERSION_LINE + _HEADER_LINE
        if not data.startswith(prefix):
            first = data.split(b"\n", 2)[:2]
            raise MetricsFileError(
                f"{self.path}: not a hyso metrics file of format_version {FORMAT_VERSION} "
                f"with columns {','.join(COLUMNS)} (starts with {first!r}); "
                "move it away or choose another run folder"
            )
        end = data.rfind(b"\n") + 1  # drop a partial last line
        body = data[len(prefix) : end]
        lines = body.count(b"\n")
        self.logged_steps = _last_steps(body)
        if keep_rows is not None and keep_rows < lines:
            cut = len(prefix)
            for _ in range(keep_rows):
                cut = data.index(b"\n", cut) + 1
            end, lines = cut, keep_rows
        if end != len(data):
            with open(self.path, "rb+") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        return lines


def _last_steps(body: bytes) -> dict[str, int]:
    """The largest step of each split among complete rows (step first, split third)."""
    last: dict[str, int] = {}
    for line in body.split(b"\n"):
        cells = line.split(b",")
        if len(cells) == len(COLUMNS) and cells[0].isdigit():
            split = cells[2].decode("utf-8", "replace")
            last[split] = max(last.get(split, 0), int(cells[0]))
    return last


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a metrics file as dicts: ints for step/epoch, floats or None elsewhere."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    lines = text.split("\n")
    if len(lines) < 2 or lines[0].encode() + b"\n" != _VERSION_LINE:
        raise MetricsFileError(f"{p}: not a hyso metrics file of format_version {FORMAT_VERSION}")
    if lines[1] != ",".join(COLUMNS):
        raise MetricsFileError(f"{p}: header {lines[1]!r} differs from {','.join(COLUMNS)!r}")
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        if not line:
            continue
        cells = line.split(",")
        if len(cells) != len(COLUMNS):
            continue  # an incomplete last line of a run being written
        rows.append({col: _cell(p, number, col, cell) for col, cell in zip(COLUMNS, cells)})
    return rows


_MAX_CELL = 64  # longer than any number or split name the logger writes


def _cell(path: Path, line: int, col: str, cell: str) -> Any:
    """One cell: the split name, a non-negative int (step, epoch) or a float / None."""
    if len(cell) > _MAX_CELL:
        raise MetricsFileError(
            f"{path}: line {line}: column {col!r} holds {len(cell)} characters, "
            f"more than any value hyso writes ({_MAX_CELL})"
        )
    if col == "split":
        return cell
    if col in ("step", "epoch"):
        if not cell.isdigit() or not cell.isascii():
            raise MetricsFileError(
                f"{path}: line {line}: {col} {cell!r} is not a non-negative integer"
            )
        return int(cell)
    if not cell:
        return None
    try:
        return float(cell)
    except ValueError:
        raise MetricsFileError(f"{path}: line {line}: {col} {cell!r} is not a number") from None


def _ppl(loss: float | None) -> float | None:
    if loss is None:
        return None
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf
