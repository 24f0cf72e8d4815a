"""``hyso runs [ROOT]``: the runs under ROOT side by side, read from their manifests and
metrics.csv: the hyperparameters that differ between them beside their final metrics,
sorted (``--sort``), filtered (``--where``, ``--status``) or as JSON (``--json``)."""

from __future__ import annotations

import argparse
import json
import math
import operator
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hyso.core.storage import RunPaths
from hyso.core.storage.paths import MANIFEST_FILE
from hyso.core.train.commands._common import CliError, format_count, format_float
from hyso.core.train.loggers.base import flatten_config
from hyso.core.train.metrics import read_metrics
from hyso.core.train.settings import closest_key

__all__ = [
    "RunInfo",
    "RunRow",
    "collect_run_infos",
    "collect_runs",
    "differing_keys",
    "filter_runs",
    "format_hparam",
    "format_table",
    "pid_alive",
    "read_run",
    "register",
    "run",
    "run_label",
    "run_status",
    "sort_runs",
]

HEADERS = ("id", "created", "model", "params", "steps", "best val loss", "status")
#: Final metrics shown beside the hyperparameters (and usable by --sort / --where).
METRICS = ("train_loss", "val_loss", "best_val_loss", "val_bpb", "steps")
#: Settings that change how a run is watched, not what it learns, and what ``hyso
#: train`` records about its data (file hashes, token counts): never compared.
NOT_HYPERPARAMETERS = frozenset(
    {
        "training.progress_bar",
        "training.loggers",
        "training.dist_timeout_s",
        "data.train_tokens",
        "data.val_tokens",
        "data.val_bytes",
    }
)
_NOT_HYPERPARAMETER_PREFIXES = ("data.fingerprint.", "data.tokenizer.")


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


@dataclass
class RunInfo:
    """One run as ``hyso runs`` compares it."""

    run_dir: Path
    row: RunRow
    created_at: str
    status: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """A final metric, a hyperparameter (dotted key), or ``id`` / ``status`` / ``model``."""
        if key in self.metrics:
            return self.metrics[key]
        if key in self.hyperparameters:
            return self.hyperparameters[key]
        return {"id": self.row.run_id, "status": self.status, "model": self.row.model}.get(key)

    def to_dict(self, differing: Sequence[str] = ()) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "id": self.row.run_id,
            "run_dir": str(self.run_dir),
            "created_at": self.created_at or None,
            "status": self.status,
            "model": self.row.model,
            "metrics": dict(self.metrics),
            "differing": {k: self.hyperparameters.get(k) for k in differing},
            "hyperparameters": dict(self.hyperparameters),
        }


def register(sub: Any) -> None:
    p = sub.add_parser(
        "runs",
        help="list and compare the runs under a folder",
        description="A table of runs: id, created, model, parameters, the hyperparameters "
        "that differ between the runs listed, final train and validation loss, steps, best "
        "val loss, status (running / finished / failed / killed: a run whose manifest says "
        "running but whose process is gone on this host).",
        epilog="example: hyso runs runs --where 'training.lr<0.01' --status finished "
        "--sort val_loss",
    )
    p.add_argument("root", nargs="?", default="runs", help="folder of run folders (default: runs)")
    p.add_argument(
        "--sort",
        metavar="KEY",
        help=f"order by a final metric ({', '.join(METRICS)}) or a hyperparameter "
        "(training.lr ...); runs without it come last",
    )
    p.add_argument("--desc", action="store_true", help="sort from largest to smallest")
    p.add_argument(
        "--where",
        metavar="EXPR",
        action="append",
        default=[],
        help="keep runs where KEY OP VALUE holds (OP: < <= > >= = == !=), e.g. "
        "'training.lr<0.01' or 'model.name=decoder_only'; repeat to combine",
    )
    p.add_argument(
        "--status", action="append", default=[], help="keep runs with this status (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        raise CliError(f"runs root {root} does not exist")
    infos = collect_run_infos(root)
    infos = filter_runs(infos, getattr(args, "where", []), getattr(args, "status", []))
    if getattr(args, "sort", None):
        infos = sort_runs(infos, args.sort, descending=args.desc)
    differing = differing_keys([i.hyperparameters for i in infos])
    if getattr(args, "json", False):
        print(json.dumps([i.to_dict(differing) for i in infos], indent=2, default=str))
        return 0
    if not infos:
        filtered = args.where or args.status
        print(f"no runs under {root}" + (" match --where / --status" if filtered else ""))
        return 0
    print(comparison_table(infos, differing))
    return 0


def comparison_table(infos: Sequence[RunInfo], differing: Sequence[str]) -> str:
    """The runs with the hyperparameters in ``differing`` and the final losses."""
    headers = [*HEADERS[:4], *differing, "train loss", "val loss", *HEADERS[4:]]
    rows = []
    for info in infos:
        cells = info.row.cells()
        hparams = [format_hparam(info.hyperparameters.get(k, "-")) for k in differing]
        losses = [format_float(info.metrics.get(k)) for k in ("train_loss", "val_loss")]
        rows.append((*cells[:4], *hparams, *losses, *cells[4:]))
    return format_table(headers, rows)


def collect_runs(root: Path) -> list[RunRow]:
    """A row for each sub-folder of ``root`` holding a manifest.json, oldest first."""
    return [info.row for info in collect_run_infos(root)]


def collect_run_infos(root: Path) -> list[RunInfo]:
    """Each sub-folder of ``root`` holding a manifest.json, oldest first.

    A run whose files hold values no run writes (an infinite step, a pid out of range)
    is listed as ``unreadable``; it never hides the other runs.
    """
    infos = [read_run(path.parent) for path in sorted(root.glob(f"*/{MANIFEST_FILE}"))]
    infos.sort(key=lambda info: (info.created_at, info.row.run_id))
    return infos


def read_run(run_dir: Path) -> RunInfo:
    """The manifest, hyperparameters and final metrics of the run in ``run_dir``."""
    data = _read_manifest(run_dir / MANIFEST_FILE)
    try:
        metrics = _final_metrics(data, RunPaths.for_run_dir(run_dir).metrics_path)
        row = _row(run_dir, data, metrics)
        hparams = run_hyperparameters(data)
    except (ValueError, TypeError, OverflowError, OSError):
        data, metrics, hparams = {"status": "unreadable"}, {}, {}
        row = _row(run_dir, data, metrics)
    return RunInfo(
        run_dir=run_dir,
        row=row,
        created_at=str(data.get("created_at") or ""),
        status=row.status,
        hyperparameters=hparams,
        metrics=metrics,
    )


def run_hyperparameters(manifest: dict[str, Any]) -> dict[str, Any]:
    """Dotted hyperparameters of a run: its model, data and training sections, the
    training settings completed by their defaults."""
    tree: dict[str, Any] = {}
    for section in ("model", "data", "training"):
        value = manifest.get(section)
        if isinstance(value, dict):
            tree[section] = dict(value)
    trainer = (manifest.get("extra") or {}).get("trainer")
    settings = trainer.get("settings") if isinstance(trainer, dict) else None
    if isinstance(settings, dict):
        tree["training"] = {**settings, **tree.get("training", {})}
    flat = flatten_config(tree)
    return {
        k: v
        for k, v in flat.items()
        if k not in NOT_HYPERPARAMETERS and not k.startswith(_NOT_HYPERPARAMETER_PREFIXES)
    }


_MISSING = object()


def differing_keys(hyperparameters: Sequence[dict[str, Any]]) -> list[str]:
    """Keys whose value is not the same in every run (absent counts as a value)."""
    if len(hyperparameters) < 2:
        return []
    keys = sorted({k for hp in hyperparameters for k in hp})
    return [
        k
        for k in keys
        if len({json.dumps(hp.get(k, _MISSING), default=repr) for hp in hyperparameters}) > 1
    ]


def run_label(info: RunInfo, differing: Sequence[str]) -> str:
    """``training.lr=0.01, model.dim=64`` (what sets the run apart), else its id."""
    parts = [f"{k}={format_hparam(info.hyperparameters.get(k, '-'))}" for k in differing]
    return ", ".join(parts) if parts else info.row.run_id


_WHERE = re.compile(r"^\s*([^<>=!\s]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}


def filter_runs(
    infos: Sequence[RunInfo], where: Sequence[str] = (), status: Sequence[str] = ()
) -> list[RunInfo]:
    """The runs whose status is one of ``status`` (any when empty) and for which every
    ``KEY OP VALUE`` of ``where`` holds; a run without KEY is left out."""
    kept = [i for i in infos if not status or i.status in status]
    for expr in where:
        match = _WHERE.match(expr)
        if match is None or not match.group(3):
            raise CliError(
                f"--where {expr!r}: expected KEY OP VALUE with OP one of < <= > >= = == != "
                "(e.g. training.lr<0.01)"
            )
        key, op, text = match.groups()
        _check_key(infos, key, "--where")
        kept = [i for i in kept if _holds(i.value(key), _OPS[op], op, _parse(text))]
    return kept


def sort_runs(infos: Sequence[RunInfo], key: str, *, descending: bool = False) -> list[RunInfo]:
    """``infos`` ordered by ``key``; runs without a value for it come last."""
    _check_key(infos, key, "--sort")
    present = [i for i in infos if _sortable(i.value(key))]
    absent = [i for i in infos if not _sortable(i.value(key))]
    numeric = all(_is_number(i.value(key)) for i in present)
    present.sort(
        key=lambda i: float(i.value(key)) if numeric else str(i.value(key)), reverse=descending
    )
    return present + absent


def _check_key(infos: Sequence[RunInfo], key: str, option: str) -> None:
    known = {*METRICS, "id", "status", "model"} | {k for i in infos for k in i.hyperparameters}
    if infos and key not in known:
        raise CliError(
            f"{option} {key}: no run has {key!r}{closest_key(key, known)}; final metrics: "
            f"{', '.join(METRICS)}; hyperparameters are dotted keys such as training.lr"
        )


def _holds(value: Any, op: Callable[[Any, Any], bool], symbol: str, wanted: Any) -> bool:
    if value is None:
        return False
    if _is_number(value) and _is_number(wanted):
        return bool(op(float(value), float(wanted)))
    if symbol in ("=", "==", "!="):
        return bool(op(format_hparam(value), str(wanted)))
    return False  # an order between a number and a text


def _parse(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text.strip("'\"")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sortable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def format_hparam(value: Any) -> str:
    """A hyperparameter as a short table cell: ``0.003``, ``true``, ``[0.9, 0.95]``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


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


def _row(run_dir: Path, m: dict[str, Any], metrics: dict[str, float | None]) -> RunRow:
    extra = m.get("extra") or {}
    model = m.get("model") or {}
    best = _first(m.get("results") or {}, "best_val_loss", "val_loss")
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
        steps=format_float(metrics.get("steps"), 0),
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


def _final_metrics(m: dict[str, Any], path: Path) -> dict[str, float | None]:
    """Last train and validation loss, best validation loss, bits per byte and steps:
    from the manifest's results, else from metrics.csv."""
    results = m.get("results") or {}
    out: dict[str, float | None] = dict.fromkeys(METRICS)
    rows: list[dict[str, Any]] = []
    if path.is_file():
        try:
            rows = read_metrics(path)
        except (OSError, ValueError):
            rows = []
    for split, key in (("train", "train_loss"), ("val", "val_loss")):
        losses = [r["loss"] for r in rows if r["split"] == split and r["loss"] is not None]
        out[key] = losses[-1] if losses else None
    vals = [r["loss"] for r in rows if r["split"] == "val" and r["loss"] is not None]
    finite = [v for v in vals if math.isfinite(v)]
    best = _first(results, "best_val_loss")
    out["best_val_loss"] = best if best is not None else (min(finite) if finite else None)
    out["val_bpb"] = _first(results, "val_bpb")
    steps = _first(results, "global_step", "steps", "step")
    if steps is None and rows:
        steps = max(r["step"] for r in rows)
    out["steps"] = steps
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
