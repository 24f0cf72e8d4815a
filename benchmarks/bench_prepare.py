"""Data larger than memory: ``hyso prepare`` and a 2-step ``hyso train`` on a generated
corpus, throughput in MB/s and peak memory over the process's baseline.

Each measurement runs in a fresh child process. Its baseline is its resident memory
after the imports (torch, numpy, the tokenizer), before any data is read; its peak is
``ru_maxrss``. The encoding workers are separate processes: the largest one's peak is
reported beside the parent's. The goal (issue "data larger than memory"): the peak
stays within 300 MB over the baseline whatever the corpus size, for prepare and for
training. Several sizes in one run show whether memory stays flat.

Usage: python benchmarks/bench_prepare.py [--mb 100[,1000]] [--workers 2] [--quick]
       [--val-fraction 0.1] [--corpora DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus_gen import DEFAULT_CORPORA, generate_corpus  # noqa: E402

GOAL_MB = 300
TINY = """
model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 64, dropout: 0.0}
training: {seed: 0, device: cpu, batch_size: 16, max_steps: 2, progress_bar: false,
           num_threads: 1, eval_every: null, log_every: 1}
data: {vocab_size: 2048, val_fraction: VAL, paths: null, cache_dir: null}
"""


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peaks() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def child_prepare(path: str, cache: str, workers: int, val: float) -> dict[str, Any]:
    import hyso.core.tokenizer as tok_mod
    from hyso.core.train.data.pipeline import prepare_shards

    base = _rss_mib()
    t0 = time.perf_counter()
    data = {"paths": [path], "val_fraction": val}
    shards = prepare_shards(data, Path(cache), tok_mod, 2048, workers=workers, log=lambda _: None)
    seconds = time.perf_counter() - t0
    own, kids = _peaks()
    report = shards.report
    return {
        "seconds": seconds,
        "encode_seconds": report.seconds if report else 0.0,
        "text_bytes": report.text_bytes if report else 0,
        "tokens": len(shards.train_tokens) + len(shards.val_tokens),
        "base_mib": base,
        "peak_mib": own,
        "worker_peak_mib": kids,
    }


def child_train(path: str, cache: str, runs: str, val: str) -> dict[str, Any]:
    from hyso.core.train.cli import main

    config = Path(runs) / "tiny.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(TINY.replace("VAL", val), encoding="utf-8")
    base = _rss_mib()
    t0 = time.perf_counter()
    argv = ["train", str(config), f"data.paths=['{path}']", f"data.cache_dir={cache}"]
    rc = main([*argv, "--runs-root", runs, "--sample-tokens", "0", "--no-progress"])
    seconds = time.perf_counter() - t0
    own, kids = _peaks()
    return {"rc": rc, "seconds": seconds, "base_mib": base, "peak_mib": own,
            "worker_peak_mib": kids}  # fmt: skip


def _run_child(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(mb: float, workers: int, val: float, corpora: Path, tmp: Path) -> dict[str, Any]:
    corpus = tmp / f"corpus-{mb:g}mb.txt"
    size = generate_corpus(corpus, mb, corpora)
    cache = tmp / f"cache-{mb:g}"
    prep = _run_child("prepare", str(corpus), str(cache), str(workers), str(val))
    train = _run_child("train", str(corpus), str(cache), str(tmp / f"runs-{mb:g}"), str(val))
    corpus.unlink()
    return {"mb": size / 1e6, "prepare": prep, "train": train}


def _rows(results: list[dict[str, Any]], workers: int) -> list[str]:
    out = [
        f"| corpus | prepare ({workers} workers) | encode MB/s | prepare MB/s overall "
        "| prepare peak over baseline (parent / largest worker) | 2-step train peak over "
        "baseline | goal <= 300 MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p, t = r["prepare"], r["train"]
        grow_p = p["peak_mib"] - p["base_mib"]
        grow_t = t["peak_mib"] - t["base_mib"]
        ok = "met" if max(grow_p, p["worker_peak_mib"], grow_t) <= GOAL_MB else "not met"
        out.append(
            f"| {r['mb']:.0f} MB | {p['seconds']:.0f} s ({p['encode_seconds']:.0f} s encoding) "
            f"| {p['text_bytes'] / 1e6 / max(p['encode_seconds'], 1e-9):.2f} "
            f"| {r['mb'] / p['seconds']:.2f} "
            f"| {grow_p:.0f} MiB / {p['worker_peak_mib']:.0f} MiB (baseline {p['base_mib']:.0f}) "
            f"| {grow_t:.0f} MiB (baseline {t['base_mib']:.0f}; {t['seconds']:.0f} s) | {ok} |"
        )
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        kind, *rest = argv[1:]
        if kind == "prepare":
            result = child_prepare(rest[0], rest[1], int(rest[2]), float(rest[3]))
        else:
            result = child_train(*rest)
        print(json.dumps(result))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", default="100", help="corpus sizes in MB, comma-separated")
    ap.add_argument("--workers", type=int, default=2, help="encoding/counting processes")
    ap.add_argument("--threads", type=int, default=None, help="same as --workers (run_all)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="data.val_fraction")
    ap.add_argument("--quick", action="store_true", help="one 10 MB corpus")
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    args = ap.parse_args(argv)
    workers = args.threads or args.workers
    sizes = [10.0] if args.quick else [float(s) for s in args.mb.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="hyso-bench-prepare-") as tmp:
        for mb in sizes:
            results.append(measure(mb, workers, args.val_fraction, args.corpora, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(f"data.val_fraction {args.val_fraction}")
    print("\n".join(_rows(results, workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
