"""``hyso plot RUN [RUN ...]``: a PNG of train/validation loss and learning rate over
steps, drawn from each run's metrics.csv; several runs are overlaid, each named in the
legend by the hyperparameters that set it apart."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyso.core.storage import RunPaths
from hyso.core.storage.atomic import atomic_write
from hyso.core.train.commands._common import CliError, require_matplotlib, require_run_dir
from hyso.core.train.commands.runs import differing_keys, read_run, run_label
from hyso.core.train.metrics import read_metrics

__all__ = ["COMPARE_FILE", "plot_comparison", "plot_metrics", "plot_runs", "register", "run"]

#: Default file name of a several-run plot, written beside the run folders.
COMPARE_FILE = "compare.png"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="save a PNG of loss and learning rate of one run or several",
        description="Save a PNG of train/validation loss and learning rate from the "
        "metrics.csv of each RUN_DIR; several runs are overlaid in one figure whose legend "
        "names the hyperparameters that differ between them (needs matplotlib: pip "
        'install "hyso-train[full]").',
        epilog="example: hyso plot runs/RUN_A runs/RUN_B -o compare.png",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s)")
    p.add_argument(
        "-o",
        "--output",
        help="PNG path (default: RUN_DIR/artifacts/loss.png for one run; "
        f"{COMPARE_FILE} beside the first run folder for several)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dirs = [require_run_dir(d) for d in args.run_dirs]
    if len(run_dirs) == 1:
        paths = RunPaths.for_run_dir(run_dirs[0])
        output = Path(args.output) if args.output else paths.loss_plot_path
        _check_png(output)
        path = plot_metrics(paths.metrics_path, output, title=paths.run_dir.name)
    else:
        output = Path(args.output) if args.output else run_dirs[0].parent / COMPARE_FILE
        _check_png(output)
        path = plot_comparison(run_dirs, output)
    print(f"saved {path}")
    return 0


def _check_png(output: Path) -> None:
    if output.suffix.lower() != ".png":
        raise CliError(f"--output {output} must end in .png")


def _series(rows: list[dict[str, Any]], split: str, key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of column ``key`` over the rows of ``split`` that have a finite
    value (a NaN or infinite loss cannot be drawn)."""
    pairs = [
        (float(r["step"]), r[key])
        for r in rows
        if r["split"] == split and r[key] is not None and math.isfinite(r[key])
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_metrics(metrics_path: Path, output: Path, title: str = "") -> Path:
    """Draw loss (train, validation) and learning rate against step; write ``output``."""
    return plot_runs([(None, metrics_path)], output, title=title)


def plot_comparison(run_dirs: Sequence[Path], output: Path, title: str = "") -> Path:
    """Overlay the runs in ``run_dirs``, each labelled by what differs between them."""
    infos = [read_run(Path(d)) for d in run_dirs]
    differing = differing_keys([i.hyperparameters for i in infos])
    curves = [
        (run_label(i, differing), RunPaths.for_run_dir(i.run_dir).metrics_path) for i in infos
    ]
    if len({label for label, _ in curves}) < len(curves):  # the same settings: say which run
        curves = [(f"{i.row.run_id}: {label}", p) for i, (label, p) in zip(infos, curves)]
    if not title:
        title = f"{len(infos)} runs" + ("" if differing else " (same hyperparameters)")
    return plot_runs(curves, output, title=title)


def plot_runs(curves: Sequence[tuple[str | None, Path]], output: Path, title: str = "") -> Path:
    """Draw each ``(label, metrics.csv)``: loss above (train solid, validation dashed,
    one colour a run), learning rate below; write ``output``. A single unlabelled
    run gets its own legend (train loss, validation loss)."""
    loaded = []
    for label, metrics_path in curves:
        if not metrics_path.is_file():
            raise CliError(f"{metrics_path} does not exist: the run has logged no metrics yet")
        rows = read_metrics(metrics_path)
        train, val = _series(rows, "train", "loss"), _series(rows, "val", "loss")
        if not train[0] and not val[0]:
            raise CliError(f"{metrics_path} has no finite train or validation loss values to plot")
        loaded.append((label, train, val, _series(rows, "train", "lr")))
    plt = require_matplotlib()
    fig, (ax_loss, ax_lr) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    try:
        for i, (label, train, val, lr) in enumerate(loaded):
            color = f"C{i % 10}" if label is not None else None
            train_label = "train loss" if label is None else label
            # a run's name goes on its first line: validation only when it has no train rows
            val_label = "validation loss" if label is None else (None if train[0] else label)
            if train[0]:
                ax_loss.plot(*train, label=train_label, color=color, linewidth=1.0, alpha=0.8)
            if val[0]:
                ax_loss.plot(
                    *val, label=val_label, color=color, linestyle="--", marker="o", markersize=3
                )
            if lr[0]:
                ax_lr.plot(*lr, color=color or "tab:green", linewidth=1.0)
        ax_loss.set_ylabel("loss (nats/token)")
        ax_loss.grid(True, alpha=0.3)
        ax_loss.legend(title=None if len(loaded) == 1 else "solid: train, dashed: validation")
        if title:
            ax_loss.set_title(title)
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_xlabel("step")
        ax_lr.grid(True, alpha=0.3)
        fig.tight_layout()
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, lambda fh: fig.savefig(fh, format="png", dpi=110))
    finally:
        plt.close(fig)
    return output
