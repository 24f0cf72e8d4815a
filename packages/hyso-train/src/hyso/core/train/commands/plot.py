"""``hyso plot RUN_DIR``: a PNG of train/validation loss and learning rate over steps,
drawn from the run's metrics.csv."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from hyso.core.storage import RunPaths
from hyso.core.storage.atomic import atomic_write
from hyso.core.train.commands._common import CliError, require_matplotlib, require_run_dir
from hyso.core.train.metrics import read_metrics

__all__ = ["plot_metrics", "register", "run"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="save a PNG of loss and learning rate",
        description="Save a PNG of train/validation loss and learning rate from RUN_DIR's "
        'metrics.csv (needs matplotlib: pip install "hyso-train[full]").',
    )
    p.add_argument("run_dir", help="the run folder")
    p.add_argument("-o", "--output", help="PNG path (default: RUN_DIR/artifacts/loss.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = RunPaths.for_run_dir(require_run_dir(args.run_dir))
    output = Path(args.output) if args.output else paths.loss_plot_path
    if output.suffix.lower() != ".png":
        raise CliError(f"--output {output} must end in .png")
    path = plot_metrics(paths.metrics_path, output, title=paths.run_dir.name)
    print(f"saved {path}")
    return 0


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
    if not metrics_path.is_file():
        raise CliError(f"{metrics_path} does not exist: the run has logged no metrics yet")
    rows = read_metrics(metrics_path)
    train = _series(rows, "train", "loss")
    val = _series(rows, "val", "loss")
    lr = _series(rows, "train", "lr")
    if not train[0] and not val[0]:
        raise CliError(f"{metrics_path} has no finite train or validation loss values to plot")
    plt = require_matplotlib()
    fig, (ax_loss, ax_lr) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    try:
        if train[0]:
            ax_loss.plot(*train, label="train loss", linewidth=1.0, alpha=0.8)
        if val[0]:
            ax_loss.plot(*val, label="validation loss", marker="o", markersize=3)
        ax_loss.set_ylabel("loss (nats/token)")
        ax_loss.grid(True, alpha=0.3)
        ax_loss.legend()
        if title:
            ax_loss.set_title(title)
        if lr[0]:
            ax_lr.plot(*lr, color="tab:green", linewidth=1.0)
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_xlabel("step")
        ax_lr.grid(True, alpha=0.3)
        fig.tight_layout()
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, lambda fh: fig.savefig(fh, format="png", dpi=110))
    finally:
        plt.close(fig)
    return output
