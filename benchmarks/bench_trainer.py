"""Per-step overhead of hyso's Trainer over a hand-written loop, beside PyTorch Lightning.

A 2-layer MLP, batch 32, a shuffled DataLoader, Adam; every variant runs the same
number of optimizer steps in this one process, interleaved round by round, and the
best round of each counts. Steady-state time per step is measured between a step
early in the run and the last step (setup such as Lightning's or our run folder is
excluded); whole-run time per step (setup included) is printed as well. The whole
run is timed in wall-clock time always: thread CPU time would leave out the fsync
waits, the git launches of the run manifest and the checkpoint folder's background
clean-up, all of which a user waits for. For hyso it starts before the run folder
and the Trainer are made (for the hand-written loop, before model.train()).

Variants:
  hand         for x, y in loader: zero_grad, forward, cross-entropy, backward, step
  hyso         Trainer defaults: progress bar on, metrics.csv on (run folder), log_every 10
  hyso-bare    Trainer without progress bar and without a run folder
  lightning    Lightning, no progress bar, no logger, no checkpointing
  lightning-csv Lightning with its CSVLogger (log_every_n_steps=10)

The same is then repeated with a near-free model (Linear 4->2, batch 4), where a step
is mostly framework and data-loading work, so the trainer's own cost in microseconds
stands out of the noise of a shared machine.

Usage: python benchmarks/bench_trainer.py [--steps 2000] [--rounds 5] [--quick] [--wall]
       [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

CHUNK = 100  # steps per timed chunk; the first chunk (warm-up) is dropped
# CPU time of this thread (torch runs on one thread here): far less sensitive than wall
# time to other processes on a shared machine. --wall switches to wall-clock time.
clock = time.thread_time


# "mlp": the benchmark's model. "tiny": a near-free model (Linear 4->2, batch 4), so a
# step is mostly framework and data-loading overhead and differences stand out of noise.
SHAPES = {"mlp": (64, 256, 10, 32), "tiny": (4, 0, 2, 4)}
shape = "mlp"


def make_model() -> nn.Module:
    d_in, hidden, d_out, _ = SHAPES[shape]
    if not hidden:
        return nn.Linear(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def make_loader(steps: int, marks: list[float] | None = None) -> DataLoader:
    """Shuffled batches; with ``marks``, the clock is noted there every CHUNK batches."""
    d_in, _, d_out, batch = SHAPES[shape]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * batch, d_in, generator=g)
    y = torch.randint(0, d_out, (steps * batch,), generator=g)
    data = TensorDataset(x, y)
    if marks is None:
        return DataLoader(data, batch_size=batch, shuffle=True)
    batches = BatchSampler(RandomSampler(data), batch, drop_last=False)
    return DataLoader(data, batch_sampler=MarkedBatches(batches, marks))


class MarkedBatches:
    """A batch sampler noting the clock after every CHUNK batches (when the loader asks
    for the next one, so once that batch's step is done). Every separately timed
    variant is timed through it, the same code on each path, and no framework runs a
    timing callback that a hand-written loop would not."""

    def __init__(self, inner: BatchSampler, marks: list[float]) -> None:
        self.inner = inner
        self.marks = marks
        self.sampler = inner.sampler  # a framework may seed its shuffle per epoch

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self):  # type: ignore[no-untyped-def]
        marks, n = self.marks, 0
        for indices in self.inner:
            yield indices
            n += 1
            if n % CHUNK == 0:
                marks.append(clock())


def run_hand(steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    marks: list[float] = []
    loader = make_loader(steps, marks)
    t0 = time.perf_counter()
    model.train()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    t1 = time.perf_counter()
    return _chunks(marks), (t1 - t0) / steps


def run_hyso(steps: int, defaults: bool) -> tuple[float, float]:
    from hyso.core.storage import RunPaths
    from hyso.core.train import Trainer

    marks: list[float] = []
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = make_loader(steps, marks)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()  # the run folder and the Trainer are part of the setup
        kwargs = {}
        if defaults:
            kwargs["run_paths"] = RunPaths.for_run_dir(Path(tmp) / "run").ensure_dirs()
            kwargs["logger"] = _quiet_logger()
        else:
            kwargs["progress_bar"] = False
        trainer = Trainer(model, opt, **kwargs)
        trainer.fit(loader, epochs=1)
        t1 = time.perf_counter()
    return _chunks(marks), (t1 - t0) / steps


def run_lightning(steps: int, csv: bool) -> tuple[float, float]:
    import lightning as L

    marks: list[float] = []

    class Clock(L.Callback):  # Lightning may rebuild the loader: timed by a callback
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            if trainer.global_step % CHUNK == 0:
                marks.append(clock())

    torch.manual_seed(0)
    module = _lightning_module(csv)  # its model, as the others' models, is made untimed
    loader = make_loader(steps)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()  # its Trainer is part of the setup, as hyso's is
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
        trainer.fit(module, loader)
        t1 = time.perf_counter()
    return _chunks(marks), (t1 - t0) / steps


def _measure(args: argparse.Namespace, has_lightning: bool) -> None:
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
        print(f"{shape}: round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    base = _low(steady["hand"])
    base_whole = min(whole["hand"])
    print(
        f"\n{shape}: {_describe()}, {args.steps} steps, Adam, {args.threads} thread(s), "
        f"best of {args.rounds} interleaved rounds; {'wall' if args.wall else 'thread CPU'} "
        f"time (whole run: wall time); torch {torch.__version__}"
    )
    med = statistics.median(steady["hand"])
    print(
        "| variant | us/step | overhead us | overhead % | median-chunk overhead % "
        "| us/step incl. setup (best run) | whole run, per-round median % |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in variants:
        low = _low(steady[name])
        m = statistics.median(steady[name])
        paired = statistics.median(w / h for w, h in zip(whole[name], whole["hand"], strict=True))
        print(
            f"| {name} | {low * 1e6:.1f} | {(low - base) * 1e6:+.1f} | "
            f"{(low / base - 1) * 100:+.1f} % | {(m / med - 1) * 100:+.1f} % | "
            f"{min(whole[name]) * 1e6:.1f} ({(min(whole[name]) / base_whole - 1) * 100:+.1f} %) "
            f"| {(paired - 1) * 100:+.1f} % |"
        )
    print(
        f"us/step: the 10th percentile over all {CHUNK}-step chunks of all rounds (the "
        "least disturbed by other processes); median-chunk: the same with medians; "
        "per-round median: each round's whole run over the hand-written loop's run of "
        "the same round (neighbours in time share the load), median over rounds"
    )


def _use_shape(name: str) -> None:
    global shape
    if name not in SHAPES:
        raise SystemExit(f"--shapes: unknown model {name!r}; choose from {sorted(SHAPES)}")
    shape = name


def _describe() -> str:
    d_in, hidden, d_out, batch = SHAPES[shape]
    if not hidden:
        return f"Linear {d_in}->{d_out} (near-free model), batch {batch}"
    return f"2-layer MLP ({d_in}-{hidden}-{d_out}), batch {batch}"


class Lockstep:
    """An iterable of batches for a framework; before each batch it hands out, it runs
    one step of a hand-written twin loop. Framework and hand steps thus alternate one by
    one, sharing every moment of machine load, and each is timed: the hand step inside
    ``__next__``, the framework step from one ``__next__`` to the next."""

    def __init__(self, steps: int) -> None:
        self.loader = make_loader(steps)
        self.hand_loader = make_loader(steps)
        torch.manual_seed(1)
        self.model = make_model()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.hand: list[float] = []
        self.framework: list[float] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):  # type: ignore[no-untyped-def]
        model, opt, now = self.model, self.opt, time.perf_counter
        hand_it, it = iter(self.hand_loader), iter(self.loader)
        t_b = None
        for _ in range(len(self.loader)):
            t_a = now()
            if t_b is not None:
                self.framework.append(t_a - t_b)
            x, y = next(hand_it)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            t_b = now()
            self.hand.append(t_b - t_a)
            yield next(it)

    def overhead(self) -> tuple[float, float, float]:
        """(hand us/step, framework us/step, median of per-pair ratios - 1), warm-up cut."""
        n = min(len(self.hand), len(self.framework))
        hand, fw = self.hand[CHUNK:n], self.framework[CHUNK:n]
        ratios = sorted(f / h for f, h in zip(fw, hand, strict=True))
        return (
            sum(hand) / len(hand) * 1e6,
            sum(fw) / len(fw) * 1e6,
            ratios[len(ratios) // 2] - 1,
        )


def run_lockstep(name: str, steps: int) -> tuple[float, float, float]:
    """Run framework ``name`` on a Lockstep loader; returns Lockstep.overhead()."""
    from hyso.core.storage import RunPaths
    from hyso.core.train import Trainer

    data = Lockstep(steps)
    torch.manual_seed(0)
    if name.startswith("hyso"):
        model = make_model()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        with tempfile.TemporaryDirectory() as tmp:
            kwargs: dict = {"progress_bar": False}
            if name == "hyso":
                kwargs = {
                    "run_paths": RunPaths.for_run_dir(Path(tmp) / "r").ensure_dirs(),
                    "logger": _quiet_logger(),
                }
            Trainer(model, opt, **kwargs).fit(data, epochs=1)
    else:
        import lightning as L

        csv = name == "lightning-csv"
        module = _lightning_module(csv)
        with tempfile.TemporaryDirectory() as tmp:
            L.Trainer(
                max_steps=steps,
                max_epochs=1,
                accelerator="cpu",
                devices=1,
                logger=L.pytorch.loggers.CSVLogger(tmp) if csv else False,
                enable_progress_bar=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                log_every_n_steps=10,
                default_root_dir=tmp,
            ).fit(module, data)
    return data.overhead()


def _lightning_module(csv: bool):  # type: ignore[no-untyped-def]
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

    return Module()


def _measure_lockstep(args: argparse.Namespace, has_lightning: bool) -> None:
    names = ["hyso", "hyso-bare"] + (["lightning", "lightning-csv"] if has_lightning else [])
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names:
            with _silenced():
                results[name].append(run_lockstep(name, args.steps))
        print(f"{shape} lockstep: round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(
        f"\n{shape} (lockstep pairs): {_describe()}, {args.steps} steps, Adam, "
        f"{args.threads} thread(s), "
        f"{args.rounds} rounds; wall time; torch {torch.__version__}"
    )
    print(
        "| framework | hand us/step | framework us/step | overhead us | overhead % "
        "| per-pair median overhead % |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        hand, fw, med = (statistics.median(v) for v in zip(*results[name], strict=True))
        print(
            f"| {name} | {hand:.1f} | {fw:.1f} | {fw - hand:+.1f} | "
            f"{(fw / hand - 1) * 100:+.1f} % | {med * 100:+.1f} % |"
        )
    print(
        "each framework step runs right after a hand-written step on a twin model; "
        "medians over rounds"
    )


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
    ap.add_argument("--lockstep-only", action="store_true", help="skip the separate runs")
    ap.add_argument("--shapes", default="mlp,tiny", help="models to run: mlp, tiny (comma list)")
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of thread CPU time")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    if args.threads > 1 and not args.wall:
        print(f"--threads {args.threads}: timing wall-clock (thread CPU time sees one thread)")
        args.wall = True
    if args.wall:
        global clock
        clock = time.perf_counter
    if args.quick:
        args.steps, args.rounds = 600, 3
    torch.set_num_threads(args.threads)
    has_lightning = not args.no_lightning and _has_lightning()
    for name in args.shapes.split(","):
        _use_shape(name)
        _measure_lockstep(args, has_lightning)
        if not args.lockstep_only:
            _measure(args, has_lightning)
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
    sys.exit(main(sys.argv[1:]))
