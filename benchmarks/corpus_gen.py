"""A generated corpus of any size for the data benchmarks (bench_prepare,
bench_tokenizer_train): paragraphs of random lines of the shared corpora, one line in
20 carrying a made-up word drawn from a pool that grows with the square root of the
lines written, so the distinct words keep growing the way they do in real text
(Heaps' law), not in proportion to the size. Deterministic for a seed and size.

Usage (also imported): python benchmarks/corpus_gen.py OUT.txt|OUT.jsonl --mb 100
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPORA = REPO.parent / "shared" / "corpora"
SOURCES = ("train_mix.txt", "wt2_valid.txt", "wt2_test.txt")

__all__ = ["generate_corpus"]


def _lines(corpora: Path) -> list[str]:
    lines: list[str] = []
    for name in SOURCES:
        path = corpora / name
        if path.is_file():
            lines += [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    if not lines:
        raise SystemExit(f"no corpus text under {corpora}; pass --corpora DIR")
    return lines


def generate_corpus(out: Path, mb: float, corpora: Path = DEFAULT_CORPORA, seed: int = 0) -> int:
    """Write about ``mb`` MB to ``out`` (.txt: paragraphs split by blank lines; .jsonl:
    one paragraph per record); return the bytes written."""
    rng = random.Random(seed)
    lines = _lines(corpora)
    target = int(mb * 1e6)
    jsonl = out.suffix == ".jsonl"
    written = count = 0
    with out.open("w", encoding="utf-8") as fh:
        while written < target:
            para = []
            for _ in range(rng.randrange(3, 13)):
                line = rng.choice(lines)
                count += 1
                if rng.random() < 0.05:
                    k = rng.randrange(1000 + int(40 * count**0.5))
                    line += f" {'bcdfgklmnprst'[k % 13]}{k:x}"
                para.append(line)
            text = "\n".join(para)
            chunk = json.dumps({"text": text}) + "\n" if jsonl else text + "\n\n"
            fh.write(chunk)
            written += len(chunk.encode("utf-8"))
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = generate_corpus(args.out, args.mb, args.corpora, args.seed)
    print(f"wrote {n:,} bytes to {args.out}")


if __name__ == "__main__":
    main()
