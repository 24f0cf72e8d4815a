"""Peak memory while loading a Hugging Face folder with ``load_hf``, against the weights' size.

Goal (issue 14): the process's peak resident memory grows by at most 1.3x the
weights' size while loading. A Llama-shaped folder is written by ``to_hf`` (no
transformers needed), then each load runs in a fresh process that reports its
resident set before the call and its peak after (``VmHWM``; Linux only).

Usage: python benchmarks/bench_load.py [--dim 1024] [--layers 12] [--vocab 32000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import json, sys, torch
from hyso.core.models import load_hf
def status_kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
before = status_kb("VmRSS")
model = load_hf(sys.argv[1])
peak = status_kb("VmHWM")  # this process's own peak (ru_maxrss would include the parent's)
after = status_kb("VmRSS")
print(json.dumps({"before_kb": before, "peak_kb": peak, "after_kb": after}))
"""


def write_folder(folder: Path, dim: int, layers: int, vocab: int, dtype: str) -> int:
    """A Llama-shaped folder of random weights; returns the weights' size in bytes."""
    import torch

    from hyso.core.models import HysoDecoderOnly

    torch.manual_seed(0)
    model = HysoDecoderOnly(
        dim=dim, num_layers=layers, vocab_size=vocab, num_heads=dim // 64,
        tie_embeddings=False,
    ).to(getattr(torch, dtype))  # fmt: skip
    model.to_hf(folder)
    return (folder / "model.safetensors").stat().st_size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=32000)
    args = parser.parse_args(argv)
    print("| dtype | weights MiB | RSS before MiB | peak MiB | peak growth / weights |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for dtype in ("float32", "bfloat16"):
        with tempfile.TemporaryDirectory() as tmp:
            size = write_folder(Path(tmp), args.dim, args.layers, args.vocab, dtype)
            done = subprocess.run(
                [sys.executable, "-c", PROBE, tmp], capture_output=True, text=True, check=True
            )
        out = json.loads(done.stdout.strip().splitlines()[-1])
        growth = (out["peak_kb"] - out["before_kb"]) * 1024 / size
        worst = max(worst, growth)
        print(
            f"| {dtype} | {size / 2**20:.0f} | {out['before_kb'] / 1024:.0f} | "
            f"{out['peak_kb'] / 1024:.0f} | {growth:.2f}x |"
        )
    print(f"goal: peak growth <= 1.3x the weights: {'met' if worst <= 1.3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
