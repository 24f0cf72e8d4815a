"""``hyso runs [ROOT]``: a table of the runs under ROOT, read from their manifests."""

from __future__ import annotations

import argparse
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hyso.core.storage import RunPaths
from hyso.core.storage.paths import MANIFEST_FILE
from hyso.core.train.commands._common import CliError, format_count, format_float
from hyso.core.train.metrics import read_metrics

__all__ = ["RunRow", "collect_runs", "format_table", "pid_alive", "register", "run", "run_status"]

HEADERS = ("id", "created", "model", "params", "steps", "best val loss", "status")


@dataclass
class RunRow:
    """One line of the table."""

    run_id: str
    created: str
    model: str
    params: str
    steps: str
    best_val_loss: str
    status: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.run_id,
            self.created,
            self.model,
            self.params,
            self.steps,
            self.best_val_loss,
            self.status,
        )


def register(sub: Any) -> None:
    p = sub.add_parser(
        "runs",
        help="list the runs under a folder",
        description="A table of runs: id, created, model, parameters, steps, best val loss, "
        "status (running / finished / failed / killed: a run whose manifest says running "
        "but whose process is gone on this host).",
    )
    p.add_argument("root", nargs="?", default="runs", help="folder of run folders (default: runs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        raise CliError(f"runs root {root} does not exist")
    rows = collect_runs(root)
    if not rows:
        print(f"no runs under {root}")
        return 0
    print(format_table(HEADERS, [r.cells() for r in rows]))
    return 0


def collect_runs(root: Path) -> list[RunRow]:
    """A row for each sub-folder of ``root`` holding a manifest.json, oldest first.

    A run whose files hold values no run writes (an infinite step, a pid out of range)
    is listed as ``unreadable``; it never hides the other runs.
    """
    found = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST_FILE}")):
        data = _read_manifest(manifest_path)
        try:
            row = _row(manifest_path.parent, data)
        except (ValueError, TypeError, OverflowError, OSError):
            row = _row(manifest_path.parent, {"status": "unreadable"})
        found.append((str(data.get("created_at") or ""), row))
    found.sort(key=lambda pair: (pair[0], pair[1].run_id))
    return [row for _, row in found]


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        from hyso.core.storage import load_manifest

        manifest = load_manifest(path)
        return manifest.to_dict() if hasattr(manifest, "to_dict") else dict(manifest)
    except ImportError:  # pragma: no cover - storage is a dependency of hyso-train
        pass
    except Exception:
        return {"status": "unreadable"}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "unreadable"}


def _row(run_dir: Path, m: dict[str, Any]) -> RunRow:
    results = m.get("results") or {}
    extra = m.get("extra") or {}
    model = m.get("model") or {}
    metrics = _metrics_summary(RunPaths.for_run_dir(run_dir).metrics_path)
    steps = _first(results, "global_step", "steps", "step")
    if steps is None:
        steps = metrics.get("step")
    best = _first(results, "best_val_loss", "val_loss")
    if best is None:
        best = metrics.get("best_val_loss")
    params = _first(extra, "num_parameters", "parameters")
    if params is None:
        params = _first(m, "num_parameters", "parameters")
    return RunRow(
        run_id=str(m.get("run_id") or run_dir.name),
        created=_format_created(m.get("created_at")),
        model=str(model.get("name", "-")) if isinstance(model, dict) else "-",
        params=format_count(params),
        steps=format_float(steps, 0),
        best_val_loss=format_float(best),
        status=run_status(m),
    )


def run_status(m: dict[str, Any]) -> str:
    """The manifest's status, with ``running`` turned into ``killed`` when the run's
    process is gone on this host."""
    status = str(m.get("status") or "unknown")
    if status != "running":
        return status
    pid = m.get("pid")
    if m.get("hostname") == socket.gethostname() and isinstance(pid, int):
        return "running" if pid_alive(pid) else "killed"
    return status


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _metrics_summary(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        rows = read_metrics(path)
    except (OSError, ValueError):
        return {}
    out: dict[str, float] = {}
    steps = [r["step"] for r in rows]
    if steps:
        out["step"] = max(steps)
    vals = [r["loss"] for r in rows if r["split"] == "val" and r["loss"] is not None]
    if vals:
        out["best_val_loss"] = min(vals)
    return out


def _first(d: Any, *keys: str) -> Any:
    if not isinstance(d, dict):
        return None
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def _format_created(value: Any) -> str:
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def format_table(headers: tuple[str, ...] | list[str], rows: list[tuple[str, ...]]) -> str:
    """Rows as a plain-text table with a header, columns padded to their widest cell."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
