"""Per-step overhead of hyso's Trainer over a hand-written loop, beside PyTorch Lightning.

A 2-layer MLP, batch 32, a shuffled DataLoader, Adam; every variant runs the same
number of optimizer steps in this one process, interleaved round by round, and the
best round of each counts. Steady-state time per step is measured between a step
early in the run and the last step (setup such as Lightning's or our run folder is
excluded); whole-run time per step (setup included) is printed as well.

Variants:
  hand         for x, y in loader: zero_grad, forward, cross-entropy, backward, step
  hyso         Trainer defaults: progress bar on, metrics.csv on (run folder), log_every 10
  hyso-bare    Trainer without progress bar and without a run folder
  lightning    Lightning, no progress bar, no logger, no checkpointing
  lightning-csv Lightning with its CSVLogger (log_every_n_steps=10)

Usage: python benchmarks/bench_trainer.py [--steps 2000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CHUNK = 100  # steps per timed chunk; the first chunk (warm-up) is dropped
# CPU time of this thread (torch runs on one thread here): far less sensitive than wall
# time to other processes on a shared machine. --wall switches to wall-clock time.
clock = time.thread_time


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


def make_loader(steps: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * 32, 64, generator=g)
    y = torch.randint(0, 10, (steps * 32,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)


def run_hand(steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = make_loader(steps)
    marks: list[float] = []
    t0 = clock()
    model.train()
    for i, (x, y) in enumerate(loader):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if (i + 1) % CHUNK == 0:
            marks.append(clock())
    t1 = clock()
    return _chunks(marks), (t1 - t0) / steps


def run_hyso(steps: int, defaults: bool) -> tuple[float, float]:
    from hyso.core.storage import RunPaths
    from hyso.core.train import Callback, Trainer

    marks: list[float] = []

    class Clock(Callback):
        def on_step_end(self, trainer, metrics) -> None:
            if trainer.global_step % CHUNK == 0:
                marks.append(clock())

    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = make_loader(steps)
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {}
        if defaults:
            kwargs["run_paths"] = RunPaths.for_run_dir(Path(tmp) / "run").ensure_dirs()
            kwargs["logger"] = _quiet_logger()
        else:
            kwargs["progress_bar"] = False
        trainer = Trainer(model, opt, callbacks=[Clock()], **kwargs)
        t0 = clock()
        trainer.fit(loader, epochs=1)
        t1 = clock()
    return _chunks(marks), (t1 - t0) / steps


def run_lightning(steps: int, csv: bool) -> tuple[float, float]:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = make_model()

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            if csv:
                self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    marks: list[float] = []

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            if trainer.global_step % CHUNK == 0:
                marks.append(clock())

    torch.manual_seed(0)
    loader = make_loader(steps)
    with tempfile.TemporaryDirectory() as tmp:
        logger = L.pytorch.loggers.CSVLogger(tmp) if csv else False
        trainer = L.Trainer(
            max_steps=steps,
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=logger,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            log_every_n_steps=10,
            callbacks=[Clock()],
            default_root_dir=tmp,
        )
        t0 = clock()
        trainer.fit(Module(), loader)
        t1 = clock()
    return _chunks(marks), (t1 - t0) / steps


def _chunks(marks: list[float]) -> list[float]:
    """Seconds per step of each CHUNK-step window after the first."""
    return [(b - a) / CHUNK for a, b in itertools.pairwise(marks)]


def _quiet_logger() -> logging.Logger:
    log = logging.getLogger("bench.hyso")
    log.propagate = False
    log.addHandler(logging.NullHandler())
    return log


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="600 steps, 3 rounds")
    ap.add_argument("--no-lightning", action="store_true")
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of thread CPU time")
    args = ap.parse_args(argv)
    if args.wall:
        global clock
        clock = time.perf_counter
    if args.quick:
        args.steps, args.rounds = 600, 3
    torch.set_num_threads(1)
    has_lightning = not args.no_lightning and _has_lightning()
    variants = {
        "hand": lambda: run_hand(args.steps),
        "hyso": lambda: run_hyso(args.steps, defaults=True),
        "hyso-bare": lambda: run_hyso(args.steps, defaults=False),
    }
    if has_lightning:
        variants["lightning"] = lambda: run_lightning(args.steps, csv=False)
        variants["lightning-csv"] = lambda: run_lightning(args.steps, csv=True)
    steady: dict[str, list[float]] = {k: [] for k in variants}  # chunk times, all rounds
    whole: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name, fn in variants.items():
            with _silenced():
                s, w = fn()
            steady[name].extend(s)
            whole[name].append(w)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    base = _low(steady["hand"])
    base_whole = min(whole["hand"])
    print(
        f"\n{args.steps} steps, batch 32, 2-layer MLP (64-256-10), Adam, 1 thread, "
        f"best of {args.rounds} interleaved rounds; {'wall' if args.wall else 'thread CPU'} "
        f"time; torch {torch.__version__}"
    )
    med = statistics.median(steady["hand"])
    print(
        "| variant | us/step | overhead us | overhead % | median-chunk overhead % "
        "| us/step incl. setup (best run) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in variants:
        low = _low(steady[name])
        m = statistics.median(steady[name])
        print(
            f"| {name} | {low * 1e6:.1f} | {(low - base) * 1e6:+.1f} | "
            f"{(low / base - 1) * 100:+.1f} % | {(m / med - 1) * 100:+.1f} % | "
            f"{min(whole[name]) * 1e6:.1f} ({(min(whole[name]) / base_whole - 1) * 100:+.0f} %) |"
        )
    print(
        f"us/step: the 10th percentile over all {CHUNK}-step chunks of all rounds (the "
        "least disturbed by other processes); median-chunk: the same with medians"
    )
    if not has_lightning:
        print("(lightning not installed: its rows are missing)")
    return 0


@contextlib.contextmanager
def _silenced():
    err = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stderr(err):
        warnings.simplefilter("ignore")
        logging.getLogger("lightning").setLevel(logging.ERROR)
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        yield


def _low(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 10]


def _has_lightning() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main(sys.argv[1:]))
