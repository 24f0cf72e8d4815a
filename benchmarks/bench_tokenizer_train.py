"""BPE training on a large generated corpus: hyso against HF ``tokenizers`` at equal
threads, time and peak memory.

The corpus (``corpus_gen.py``, default 100 MB) is read two ways: ``file`` (both train
from the file path: HF's ``train``, hyso's ``train(path)``, each reading it in chunks)
and ``iterator`` (both take the same generator of paragraphs read from the file:
HF's ``train_from_iterator``, hyso's ``train(iterable)``, what ``hyso prepare`` does).
HF runs with ``RAYON_NUM_THREADS=N``, hyso with ``num_workers=N`` counting processes.
Each run is a fresh child process; memory is its peak RSS (``ru_maxrss``) over its
resident size after the imports, and for hyso the largest worker's peak beside it
(workers are forked, so their figure includes the pages shared with the parent).
Goal: hyso's time <= 1.5x HF's at equal threads; memory bounded by the distinct words.

Usage: python benchmarks/bench_tokenizer_train.py [--mb 100] [--threads 1,2]
       [--modes file,iterator] [--vocab-size 8192] [--quick] [--corpora DIR]
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus_gen import DEFAULT_CORPORA, generate_corpus  # noqa: E402

GOAL = 1.5


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _paragraphs(path: str) -> Iterator[str]:
    """The file's paragraphs (blank-line separated), read line by line."""
    lines: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                lines.append(line)
            elif lines:
                yield "".join(lines)
                lines = []
    if lines:
        yield "".join(lines)


def child(lib: str, path: str, mode: str, threads: int, vocab: int) -> dict[str, Any]:
    if lib == "hf":
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        base = _rss_mib()
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        t0 = time.perf_counter()
        if mode == "file":
            tok.train([path], trainer)
        else:
            tok.train_from_iterator(_paragraphs(path), trainer)
        merges = len(json.loads(tok.to_str())["model"]["merges"])
    else:
        from hyso.core.tokenizer import HysoBPETokenizer

        base = _rss_mib()
        tok = HysoBPETokenizer(special_tokens={})
        t0 = time.perf_counter()
        source: Any = Path(path) if mode == "file" else _paragraphs(path)
        tok.train(source, vocab_size=vocab, num_workers=threads)
        merges = len(tok.merges)
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "base_mib": base, "peak_mib": own, "worker_peak_mib": kids,
            "merges": merges}  # fmt: skip


def _run(lib: str, path: Path, mode: str, threads: int, vocab: int) -> dict[str, Any]:
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child", lib, str(path), mode, str(threads), str(vocab)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{lib} {mode} x{threads} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker_note(ours: dict[str, Any], n: int) -> str:
    return f" (largest worker {ours['worker_peak_mib']:.0f} MiB)" if n > 1 else ""


def _row(mode: str, n: int, hf: dict[str, Any], ours: dict[str, Any]) -> str:
    ratio = ours["seconds"] / hf["seconds"]
    verdict = "met" if ratio <= GOAL else "not met"
    return (
        f"| {mode} | {n} | {hf['seconds']:.1f} s | {ours['seconds']:.1f} s | {ratio:.2f}x "
        f"({verdict}) | {hf['peak_mib'] - hf['base_mib']:.0f} MiB "
        f"| {ours['peak_mib'] - ours['base_mib']:.0f} MiB"
        f"{_worker_note(ours, n)} |"
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        lib, path, mode, threads, vocab = argv[1:]
        print(json.dumps(child(lib, path, mode, int(threads), int(vocab))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--threads", default="1,2", help="thread counts (HF) = processes (hyso)")
    ap.add_argument("--modes", default="file,iterator")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--quick", action="store_true", help="a 10 MB corpus")
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    args = ap.parse_args(argv)
    mb = 10.0 if args.quick else args.mb
    threads = [int(t) for t in str(args.threads).split(",")]
    rows = [
        f"| input | threads | HF tokenizers | hyso | hyso / HF (goal <= {GOAL}x) "
        "| HF peak over baseline | hyso peak over baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="hyso-bench-bpe-") as tmp:
        corpus = Path(tmp) / "corpus.txt"
        size = generate_corpus(corpus, mb, args.corpora)
        for mode in args.modes.split(","):
            for n in threads:
                hf = _run("hf", corpus, mode, n, args.vocab_size)
                ours = _run("hyso", corpus, mode, n, args.vocab_size)
                print(json.dumps({"mode": mode, "threads": n, "hf": hf, "hyso": ours}),
                      file=sys.stderr, flush=True)  # fmt: skip
                rows.append(_row(mode, n, hf, ours))
    print(f"corpus: {size / 1e6:.0f} MB generated, vocab {args.vocab_size}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
