"""``hyso sweep CONFIG [key=value ...]``: train each point of the config's ``sweep:``
section in turn (one run folder each) and end with their comparison: a table of the
hyperparameters that differ beside the final metrics, and one plot of every point's
curves (``hyso runs`` and ``hyso plot`` over the sweep's runs).

A point that fails (a model its settings cannot build, a loss that turns NaN) does not
stop the others: its row says why, and the exit status is 1 when any point failed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from hyso.core.train.commands._common import CliError, format_float
from hyso.core.train.commands.runs import differing_keys, format_hparam, format_table, read_run
from hyso.core.train.commands.train import TrainOutcome, load_cli_config, train_from_config
from hyso.core.train.errors import NonFiniteLossError
from hyso.core.train.run_config import load_run_config

__all__ = ["register", "run", "sweep_points"]

_RUN_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
HEADERS = ("point", "label", "best val loss", "val bpb", "steps", "time", "run folder", "status")
#: Final metrics the comparison adds after the differing hyperparameters.
_LOSS_HEADERS = ("train loss", "val loss")
#: File name of the comparison plot, in the first point's artifacts/ (or --plot).
PLOT_FILE = "sweep.png"
EXIT_SOME_FAILED = 1
# Errors that fail one point and leave the others to run (as the CLI reports them).
_POINT_ERRORS = (ValueError, OSError, NonFiniteLossError)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="train every point of a config's sweep and compare them",
        description="Expand CONFIG's sweep: section, train each point sequentially (each in "
        "its own run folder) and print a comparison table. Overrides apply to every point.",
        epilog="example: hyso sweep configs/lr_sweep.yaml training.max_steps=20",
    )
    p.add_argument("config", help="a config with a sweep: section")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every point")
    p.add_argument("--runs-root", default=None, help="folder for run folders (default: runs)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument(
        "--plot",
        metavar="PNG",
        default=None,
        help=f"where the comparison plot goes (default: {PLOT_FILE} in the first point's "
        "artifacts/ folder)",
    )
    p.set_defaults(func=run)


def sweep_points(cfg: Any) -> list[tuple[str, Any]]:
    """``(label, config)`` for each point of ``cfg``'s sweep, e.g. ``("lr=0.001", cfg)``."""
    from hyso.core.config import expand_sweep, sweep_label

    points = list(expand_sweep(cfg))
    if not points:
        raise CliError("the config's sweep: section expands to no point")
    return [(sweep_label(point) or f"point{i}", point) for i, point in enumerate(points, 1)]


def run(args: argparse.Namespace) -> int:
    if getattr(args, "plot", None) and not str(args.plot).lower().endswith(".png"):
        raise CliError(f"--plot {args.plot} must end in .png")
    cfg = load_cli_config(args.config, args.overrides)
    if "sweep" not in (cfg.to_dict() if hasattr(cfg, "to_dict") else cfg):
        raise CliError(f"{args.config} has no sweep: section (use hyso train for one run)")
    points = sweep_points(cfg)
    for _, point_cfg in points:  # every point checked before the first one trains
        load_run_config(point_cfg)
    rows = []
    failed = 0
    for i, (label, point_cfg) in enumerate(points, 1):
        print(f"[{i}/{len(points)}] {label}", file=sys.stderr, flush=True)
        if args.no_progress:
            from hyso.core.config import merge_config

            point_cfg = merge_config(point_cfg, {"training": {"progress_bar": False}})
        name = _RUN_NAME_UNSAFE.sub("-", label).strip("-._")[:64] or None
        try:
            outcome = train_from_config(
                point_cfg, runs_root=args.runs_root, name=name, sample_tokens=0
            )
        except _POINT_ERRORS as exc:
            failed += 1
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"hyso sweep: point {i} ({label}) failed: {message}", file=sys.stderr)
            rows.append((str(i), label, "-", "-", "-", "-", "-", f"failed: {message[:80]}"))
            continue
        rows.append(_row(i, label, outcome))
    print(_comparison(rows))
    _plot(rows, getattr(args, "plot", None))
    if failed:
        print(f"hyso sweep: {failed} of {len(points)} points failed", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


def _comparison(rows: list[tuple[str, ...]]) -> str:
    """The sweep's table with, after the label, the hyperparameters that differ between
    its runs and their last train and validation loss."""
    folders = [row[6] for row in rows]
    infos = {f: read_run(Path(f)) for f in folders if f != "-"}
    differing = differing_keys([info.hyperparameters for info in infos.values()])
    headers = [*HEADERS[:2], *differing, *_LOSS_HEADERS, *HEADERS[2:]]
    table = []
    for row in rows:
        info = infos.get(row[6])
        extra = ["-"] * (len(differing) + len(_LOSS_HEADERS))
        if info is not None:
            extra = [format_hparam(info.hyperparameters.get(k, "-")) for k in differing] + [
                format_float(info.metrics.get(k)) for k in ("train_loss", "val_loss")
            ]
        table.append((*row[:2], *extra, *row[2:]))
    return format_table(headers, table)


def _plot(rows: list[tuple[str, ...]], output: str | None) -> None:
    """Overlay the trained points' curves in one PNG; say where (or why not) on stderr."""
    from hyso.core.train.commands.plot import plot_comparison

    folders = [Path(row[6]) for row in rows if row[6] != "-"]
    if not folders:
        return
    path = Path(output) if output else folders[0] / "artifacts" / PLOT_FILE
    try:
        plot_comparison(folders, path, title=f"sweep of {len(folders)} points")
    except CliError as exc:  # no matplotlib, or no finite loss to draw
        print(f"hyso sweep: no comparison plot: {exc}", file=sys.stderr)
        return
    print(f"hyso sweep: comparison plot {path}", file=sys.stderr)


def _row(i: int, label: str, o: TrainOutcome) -> tuple[str, ...]:
    return (
        str(i),
        label,
        format_float(o.best_val_loss),
        format_float(o.val_bpb, 3),
        str(o.steps),
        f"{o.train_seconds:.1f}s",
        str(o.run_dir),
        "ok",
    )
