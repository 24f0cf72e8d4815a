"""Checkpoint save/load cost: hyso CheckpointManager vs bare torch.save (and Lightning Fabric).

A stack of fp32 Linear layers (~100 MB) plus its AdamW state (after one step, so
the moments exist: ~300 MB in all) is saved to the same folder by each method in
turn, interleaved and repeated; the best time of each is reported.

- ``torch.save``: the bare reference, no fsync (its durability is the page cache's).
- ``torch.save + fsync``: the same made durable, for context.
- ``hyso save``: atomic temp + fsync + rename + folder fsync, SHA-256 record, RNG
  states; until save() returns (the checkpoint is durable). ``+ wait()`` adds the
  index update and removal of the checkpoint beyond max_to_keep, done after.
- ``hyso save(blocking=False)``: how long the training loop waits (CPU snapshot),
  and the total until the background write is done.
- ``Fabric.save``: Lightning's checkpoint save, when lightning is installed.

Usage: python benchmarks/bench_storage.py [--quick] [--size-mb 100] [--repeats 5] [--dir DIR]
       [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from hyso.core.storage import CheckpointConfig, CheckpointManager


def build(size_mb: float, device: str = "cpu") -> tuple[nn.Module, torch.optim.Optimizer]:
    width = 1024
    layer_mb = (width * width + width) * 4 / 2**20
    layers = max(1, round(size_mb / layer_mb))
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, width, device=device)).sum().backward()
    optimizer.step()  # creates exp_avg / exp_avg_sq
    return model, optimizer


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 MB model, 2 repeats")
    parser.add_argument("--size-mb", type=float, default=100.0, help="model size in MB (fp32)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="folder to write into")
    parser.add_argument("--device", default="cpu", help="where the model lives (cpu, cuda)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own choice)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.quick:
        args.size_mb, args.repeats = min(args.size_mb, 20.0), min(args.repeats, 2)

    model, optimizer = build(args.size_mb, args.device)
    params_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    work = Path(tempfile.mkdtemp(prefix="hyso-bench-storage-", dir=args.dir))
    bare_path = work / "bare.pt"
    synced_path = work / "bare_fsync.pt"
    manager = CheckpointManager(CheckpointConfig(work / "hyso", max_to_keep=1))
    async_manager = CheckpointManager(CheckpointConfig(work / "hyso_async", max_to_keep=1))

    def objects() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    def bare() -> None:
        torch.save(objects(), bare_path)

    def bare_fsync() -> None:
        torch.save(objects(), synced_path)
        fsync_file(synced_path)

    returns: list[float] = []

    def ours() -> None:
        returns.append(timed(lambda: manager.save(0, model, optimizer, step=0)))
        manager.wait()  # removal of the previous checkpoint, which runs after save() returns

    waits: list[float] = []

    def ours_async() -> None:
        waits.append(timed(lambda: async_manager.save(0, model, optimizer, blocking=False)))
        async_manager.wait()

    methods: dict[str, Callable[[], None]] = {
        "torch.save": bare,
        "torch.save + fsync": bare_fsync,
        "hyso save + wait() (incl. removing the old file)": ours,
        "hyso save(blocking=False), total": ours_async,
    }
    try:
        from lightning.fabric import Fabric

        fabric = Fabric(accelerator="cpu", devices=1)
        fabric_path = work / "fabric.ckpt"
        methods["Lightning Fabric.save"] = lambda: fabric.save(
            fabric_path, {"model": model, "optimizer": optimizer}
        )
    except ImportError:
        pass

    times: dict[str, list[float]] = {name: [] for name in methods}
    try:
        for fn in methods.values():  # warm-up: first writes allocate the files
            fn()
        waits.clear()
        returns.clear()
        for _ in range(args.repeats):
            for name, fn in methods.items():
                times[name].append(timed(fn))
        load_bare = min(
            timed(lambda: torch.load(bare_path, weights_only=True)) for _ in range(args.repeats)
        )
        load_ours = min(timed(manager.load_latest) for _ in range(args.repeats))
        file_mb = bare_path.stat().st_size / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = {name: min(values) for name, values in times.items()}
    base = best["torch.save"]
    best["hyso save(blocking=False), caller waits"] = min(waits)
    best["hyso save"] = min(returns)
    print(
        f"model {params_mb:.0f} MB fp32 + AdamW state; file {file_mb:.0f} MB; "
        f"best of {args.repeats}; torch {torch.__version__}; {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads; load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print()
    print("| method | best time (s) | vs torch.save |")
    print("|---|---:|---:|")
    order = [
        "torch.save",
        "torch.save + fsync",
        "hyso save",
        "hyso save + wait() (incl. removing the old file)",
        "hyso save(blocking=False), caller waits",
        "hyso save(blocking=False), total",
        "Lightning Fabric.save",
    ]
    for name in order:
        if name in best:
            print(f"| {name} | {best[name]:.3f} | {best[name] / base:.2f}x |")
    print(f"| torch.load(weights_only=True) | {load_bare:.3f} | |")
    print(
        f"| hyso load_latest (SHA-256 verify + weights-only load) | {load_ours:.3f} | "
        f"{load_ours / load_bare:.2f}x vs torch.load |"
    )
    print()
    ratio = best["hyso save"] / base
    synced = best["hyso save"] / best["torch.save + fsync"]
    share = best["hyso save(blocking=False), caller waits"] / best["hyso save"]
    print(
        f"goal: hyso save <= 1.25x torch.save: {'met' if ratio <= 1.25 else 'NOT met'} "
        f"({ratio:.2f}x; {synced:.2f}x a torch.save + fsync)"
    )
    print(
        f"blocking=False: the caller waits {share:.0%} as long as for a blocking hyso save "
        f"({1 - share:.0%} of the save moved off the training loop)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
