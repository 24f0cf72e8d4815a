"""``training.compile``: the training step and generation, eager against compiled.

The model of ``bench_models.py`` (decoder-only, dim 256, 4 layers, 4 heads, vocab 8192,
float32, random weights): a training step (AdamW) on batch 8 of sequence 256, and
greedy generation of 128 tokens after a 16-token prompt (batch 1). The compiled model
is built the way ``training.compile: true`` builds it (``model.compile()``, inductor).
The first compiled call is timed apart as the compile time; the steps after it are
compared, eager and compiled alternating so both see the same load.

Usage: python benchmarks/bench_compile.py [--threads N] [--steps N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from hyso.core.models import HysoDecoderOnly

DIM, LAYERS, HEADS, VOCAB = 256, 4, 4, 8192
SEQ, BATCH, PROMPT, NEW_TOKENS = 256, 8, 16, 128


def _model(seq: int) -> HysoDecoderOnly:
    torch.manual_seed(0)
    return HysoDecoderOnly(
        dim=DIM, num_layers=LAYERS, num_heads=HEADS, vocab_size=VOCAB, max_seq_len=seq
    )


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps/generations each")
    parser.add_argument("--quick", action="store_true", help="sequence 64, 32 new tokens")
    args = parser.parse_args()
    seq, new = (64, 32) if args.quick else (SEQ, NEW_TOKENS)
    torch.set_num_threads(args.threads)
    eager, compiled = _model(2 * seq), _model(2 * seq)
    compiled.compile()
    ids = torch.randint(0, VOCAB, (BATCH, seq + 1))
    prompt = ids[:1, :PROMPT]
    opts = {m: torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (eager, compiled)}

    def step(model: HysoDecoderOnly) -> None:
        logits = model(ids[:, :-1])  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opts[model].step()
        opts[model].zero_grad(set_to_none=True)

    def generate(model: HysoDecoderOnly) -> None:
        with torch.no_grad():
            model.eval().generate(prompt, max_new_tokens=new, do_sample=False)
        model.train()

    print(
        f"decoder-only dim {DIM}, {LAYERS} layers, vocab {VOCAB}; train batch {BATCH} x {seq}; "
        f"generate {new} tokens after {PROMPT} (batch 1, greedy); {args.threads} thread(s); "
        f"load {os.getloadavg()[0]:.1f}; torch {torch.__version__}"
    )
    rows = []
    for name, fn in (("train step", step), ("generation", generate)):
        _timed(lambda fn=fn: fn(eager))  # warm-up
        first = _timed(lambda fn=fn: fn(compiled))  # includes compiling
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(args.steps):
            times["eager"].append(_timed(lambda fn=fn: fn(eager)))
            times["compiled"].append(_timed(lambda fn=fn: fn(compiled)))
        e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
        rows.append((name, e, c, first - c))
    print(f"{'':<12}{'eager s':>10}{'compiled s':>12}{'speed-up':>10}{'compile s':>11}")
    for name, e, c, compile_s in rows:
        print(f"{name:<12}{e:>10.3f}{c:>12.3f}{e / c:>9.2f}x{compile_s:>11.1f}")


if __name__ == "__main__":
    main()
