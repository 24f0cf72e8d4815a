"""LoRA against full fine-tuning of the same model: peak memory and training-step time.

One decoder (dim 384, 4 layers, 6 heads, vocab 8192, SwiGLU, RoPE, float32, random
weights, sequences of 128, batch 2), trained with AdamW three ways: every weight
(full), LoRA r=8 on q and v (the default targets), and LoRA r=8 on every projection
(q, k, v, out, gate, up, down). Each variant runs in its own subprocess (RSS never
shrinks) that imports the same libraries before building its model, and reports its
peak RSS (``VmHWM``), the growth of RSS over its steps, and its fastest step after one
warm-up step; the variants alternate over ``--rounds`` rounds and each figure is the
best round. Every worker uses ``--threads`` torch threads.

Usage: python benchmarks/bench_lora.py [--threads N] [--steps N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from bench_models import current_rss_mb, peak_rss_mb

DIM, LAYERS, HEADS, VOCAB = 384, 4, 6, 8192
SEQ, BATCH = 128, 2
VARIANTS = {
    "full": None,
    "lora q,v": ("q", "v"),
    "lora all": ("q", "k", "v", "out", "gate", "up", "down"),
}


def worker(variant: str, steps: int, threads: int) -> dict[str, float]:
    """Train ``variant`` for ``steps`` steps in this process; its figures as a dict."""
    torch.set_num_threads(threads)
    from hyso.core.models import HysoDecoderOnly
    from hyso.core.models.lora import LoRASettings, apply_lora, trainable_share

    imports_mb = current_rss_mb()
    torch.manual_seed(0)
    model = HysoDecoderOnly(
        dim=DIM, num_layers=LAYERS, num_heads=HEADS, vocab_size=VOCAB, max_seq_len=SEQ
    )
    targets = VARIANTS[variant]
    if targets is not None:
        apply_lora(model, LoRASettings(r=8, alpha=16, targets=targets))
    trainable, total = trainable_share(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=torch.Generator().manual_seed(1))

    def step() -> None:
        logits = model(ids[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    before = current_rss_mb()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "imports_rss_mb": imports_mb,
        "peak_rss_mb": peak_rss_mb(),
        "growth_mb": peak_rss_mb() - before,
        "step_s": min(times[1:]),
        "trainable": trainable,
        "total": total,
    }


def run_worker(variant: str, steps: int, threads: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", variant, "--steps", str(steps)]
    cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per worker")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all variants")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.steps, args.threads)))
        return 0
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            got = run_worker(variant, args.steps, args.threads)
            old = best.get(variant)
            if old is None:
                best[variant] = got
            else:
                for key in ("peak_rss_mb", "growth_mb", "step_s"):
                    old[key] = min(old[key], got[key])
    print(
        f"torch {torch.__version__}; decoder dim {DIM}, {LAYERS} layers, vocab {VOCAB}; "
        f"batch {BATCH} x {SEQ}; {args.threads} threads; best of {args.rounds} rounds"
    )
    full = best["full"]
    header = ("variant", "trainable", "peak RSS MB", "RSS growth MB", "step s", "vs full")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for variant, r in best.items():
        share = f"{r['trainable']:,} ({100 * r['trainable'] / r['total']:.2f} %)"
        ratio = (
            f"peak {r['peak_rss_mb'] / full['peak_rss_mb']:.2f}x, "
            f"step {r['step_s'] / full['step_s']:.2f}x"
        )
        cells = (
            variant,
            share,
            f"{r['peak_rss_mb']:.0f}",
            f"{r['growth_mb']:.0f}",
            f"{r['step_s']:.3f}",
            ratio,
        )
        print("| " + " | ".join(cells) + " |")
    print(f"RSS after imports: {full['imports_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
