"""The ``hyso`` command line: ``train``, ``generate``, ``runs``, ``sweep``, ``plot``, ``convert``.

Every error a user can cause (a bad config path or override, a missing run folder, an
unusable corpus) is printed as one line on stderr with exit status 2; set
``HYSO_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from hyso.core.train.commands import convert, generate, plot, runs, sweep, train

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
_COMMANDS = (train, generate, runs, sweep, plot, convert)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hyso`` and its sub-commands."""
    parser = _Parser(
        prog="hyso",
        description="HysoLLM: train a small language model in one command, then sample, "
        "list, compare and plot its runs.",
        epilog="run 'hyso COMMAND --help' for the options of each command",
    )
    from hyso.core.train import __version__

    parser.add_argument("--version", action="version", version=f"hyso {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hyso`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    prog = f"hyso {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        if os.environ.get("HYSO_DEBUG"):
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
