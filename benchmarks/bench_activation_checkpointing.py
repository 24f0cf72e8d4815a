"""Activation checkpointing: peak memory and time of a training step, with and without.

The shape of the issue: a decoder-only model of dim 256, 8 layers, 4 heads, vocab
8192, trained on batch 8 of sequence 512 (float32, AdamW, random weights and ids).

Memory: each variant runs in its own worker process. The worker builds the model and
its optimizer, takes one warm-up step (the optimizer allocates its state there),
then resets the process's peak RSS (``/proc/self/clear_refs``) and takes the measured
step: its peak is ``VmHWM`` minus the RSS just before it. The workers run with a
fixed glibc mmap threshold, so every freed activation goes back to the system at once
and RSS follows what the step holds. Time: median step time over ``--steps`` steps
in the same worker, after the measured step.

Usage: python benchmarks/bench_activation_checkpointing.py [--threads N] [--steps N]
       [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DIM, LAYERS, HEADS, VOCAB = 256, 8, 4, 8192
SEQ, BATCH = 512, 8


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def worker(checkpointing: bool, threads: int, steps: int, seq: int, batch: int) -> dict:
    """One variant in this process: peak MiB of one step over its start, step times."""
    import torch

    from hyso.core.models import HysoDecoderOnly

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = HysoDecoderOnly(
        dim=DIM,
        num_layers=LAYERS,
        num_heads=HEADS,
        vocab_size=VOCAB,
        max_seq_len=seq,
        activation_checkpointing=checkpointing,
    ).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, VOCAB, (batch, seq + 1))

    def step() -> float:
        t0 = time.perf_counter()
        logits = model(ids[:, :-1])  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    step()  # warm-up: the optimizer state is allocated here
    del_refs = "/proc/self/clear_refs"
    with open(del_refs, "w") as handle:
        handle.write("5")  # resets VmHWM to the current RSS
    before = _status_mb("VmRSS")
    first = step()
    peak = _status_mb("VmHWM") - before
    times = [first] + [step() for _ in range(steps - 1)]
    return {"peak_mib": peak, "step_s": statistics.median(times), "times": times}


def _run_worker(checkpointing: bool, args: argparse.Namespace) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MALLOC_MMAP_THRESHOLD_": "131072",  # fixed: freed large blocks leave RSS at once
    }
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "ckpt" if checkpointing else "plain",
        "--threads",
        str(args.threads),
        "--steps",
        str(args.steps),
        "--seq",
        str(args.seq),
        "--batch",
        str(args.batch),
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per worker")
    parser.add_argument("--runs", type=int, default=1, help="worker pairs (alternating)")
    parser.add_argument("--seq", type=int, default=SEQ)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--quick", action="store_true", help="sequence 128, batch 2, 2 steps")
    parser.add_argument("--worker", choices=("plain", "ckpt"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.seq, args.batch, args.steps = 128, 2, 2
    if args.worker:
        result = worker(args.worker == "ckpt", args.threads, args.steps, args.seq, args.batch)
        print(json.dumps(result))
        return
    print(
        f"decoder-only dim {DIM}, {LAYERS} layers, {HEADS} heads, vocab {VOCAB}; "
        f"batch {args.batch} x sequence {args.seq}, float32, AdamW; "
        f"{args.threads} thread(s), {args.runs} run(s); load {os.getloadavg()[0]:.1f}"
    )
    rows: dict[str, list[dict]] = {"plain": [], "ckpt": []}
    for _ in range(args.runs):
        for name in rows:
            rows[name].append(_run_worker(name == "ckpt", args))
    peak = {k: statistics.median(r["peak_mib"] for r in v) for k, v in rows.items()}
    step = {k: statistics.median(r["step_s"] for r in v) for k, v in rows.items()}
    print(f"{'variant':<26}{'step peak MiB':>15}{'step s (median)':>18}")
    for name, label in (("plain", "plain"), ("ckpt", "activation checkpointing")):
        print(f"{label:<26}{peak[name]:>15.1f}{step[name]:>18.3f}")
    print(
        f"checkpointing / plain: peak {peak['ckpt'] / peak['plain']:.2f}x, "
        f"step time {step['ckpt'] / step['plain']:.2f}x"
    )


if __name__ == "__main__":
    main()
