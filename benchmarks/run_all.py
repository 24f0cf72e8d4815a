"""Run every ``benchmarks/bench_*.py`` in turn; each prints its own table.

Usage: python benchmarks/run_all.py [--threads N] [--quick] [NAME ...]   (e.g. tokenizer models)

``--threads N`` is passed on to every benchmark that takes it (all but config, which
runs no threads of its own); ``--quick`` to every benchmark.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NO_THREADS = {"config"}  # benchmarks without a --threads flag


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    ap.add_argument("--threads", type=int, default=None, help="passed on as --threads N")
    ap.add_argument("--quick", action="store_true", help="passed on as --quick")
    args = ap.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        known = {s.stem.removeprefix("bench_") for s in scripts}
        unknown = sorted(set(args.names) - known)
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; choose from {sorted(known)}")
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    failed = []
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        if args.threads is not None and name not in NO_THREADS:
            cmd += ["--threads", str(args.threads)]
        print(f"\n=== {script.name}: {' '.join(cmd[2:])} ===", flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
