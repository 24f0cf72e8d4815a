"""The ``hyso`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyso", description="HysoLLM command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model from a config file")
    train.add_argument("config", help="path to a YAML or JSON config")
    train.add_argument("overrides", nargs="*", help="key.path=value overrides")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(f"hyso {args.command}: would train from {args.config} with overrides {args.overrides}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
