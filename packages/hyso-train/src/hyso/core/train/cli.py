"""The ``hyso`` command line: ``train``, ``prepare``, ``generate``, ``runs``, ``sweep``, ``plot``,
``convert``.

Every error a user can cause (a bad config path or override, a missing run folder, an
unusable corpus, a loss that turns NaN) is printed as one line on stderr with exit
status 2; set ``HYSO_DEBUG=1`` to see the traceback instead. ``SIGTERM`` (what ``kill``
and job schedulers send) is handled like Ctrl-C: the run is marked interrupted in its
manifest, its last checkpoint stays, one line is printed and the exit status is 130
(143 for ``SIGTERM``); further signals while the command winds down and exits are
ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import NoReturn

from hyso.core.train.commands import convert, generate, plan, plot, prepare, runs, sweep, train
from hyso.core.train.errors import NonFiniteLossError, RunInterrupted

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
_COMMANDS = (train, prepare, generate, runs, sweep, plot, convert, plan)


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
    with _signals_interrupt() as received:
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            name = "terminated (SIGTERM)" if received[:1] == [signal.SIGTERM] else "interrupted"
            print(f"{prog}: {name}", file=sys.stderr)
            return 128 + int(received[0]) if received else 130
        except (ValueError, OSError, NonFiniteLossError) as exc:
            if os.environ.get("HYSO_DEBUG"):
                raise
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[list[signal.Signals]]:
    """SIGINT and SIGTERM raise :class:`RunInterrupted` (a KeyboardInterrupt) once;
    later ones are ignored, so cleanup (manifest, checkpoint) is not cut short.
    Yields the list of signals received."""
    received: list[signal.Signals] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        first = not received
        received.append(signal.Signals(signum))
        if first:
            raise RunInterrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        # After an interrupt the command is ending: a repeated Ctrl-C must not break the
        # exit (exit handlers still run), so signals stay ignored from here on.
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if received else old)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
