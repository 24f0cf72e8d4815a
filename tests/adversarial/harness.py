"""Harness of the standing adversarial suite.

Every probe runs in a fresh Python process under a memory cap (``RLIMIT_DATA``)
and a wall-clock limit, so a probe that would hang or exhaust memory fails its
test instead of taking the suite down. A probe passes when it ends in a clear
error or in correct behaviour; :meth:`ProbeResult.expect_error` and
:meth:`ProbeResult.expect_ok` say which.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence

import pytest

DEFAULT_MEM_MB = 1536
DEFAULT_SECONDS = 30.0
# Signs that a probe escaped its bounds or ended in an unhandled crash.
_CRASH_MARKERS = ("MemoryError", "RecursionError", "Segmentation fault", "Fatal Python error")


@dataclasses.dataclass
class ProbeResult:
    """What a probe process did: exit code, output, and whether it ran out of time."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool

    def _describe(self) -> str:
        return (
            f"exit {self.returncode}, timed out: {self.timed_out}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )

    def _check_bounded(self) -> None:
        if self.timed_out:
            pytest.fail(f"probe ran past its time limit\n{self._describe()}")
        for marker in _CRASH_MARKERS:
            if marker in self.stderr:
                pytest.fail(f"probe ended in {marker}\n{self._describe()}")
        if self.returncode is not None and self.returncode < 0:
            pytest.fail(f"probe was killed by signal {-self.returncode}\n{self._describe()}")

    def expect_ok(self, contains: str = "") -> ProbeResult:
        """The probe exited 0 (and printed ``contains`` on stdout)."""
        self._check_bounded()
        if self.returncode != 0 or contains not in self.stdout:
            wanted = f"wanted {contains!r} on stdout"
            pytest.fail(f"probe did not succeed ({wanted})\n{self._describe()}")
        return self

    def expect_error(self, *fragments: str, traceback: bool = False) -> ProbeResult:
        """The probe failed cleanly: non-zero exit, every fragment in stderr and, unless
        ``traceback``, no Python traceback (a one-line error, as the CLI promises)."""
        self._check_bounded()
        if self.returncode == 0:
            pytest.fail(f"probe succeeded but an error was expected\n{self._describe()}")
        missing = [f for f in fragments if f not in self.stderr]
        if missing:
            pytest.fail(f"error message lacks {missing!r}\n{self._describe()}")
        if not traceback and "Traceback (most recent call last)" in self.stderr:
            pytest.fail(f"a traceback instead of a one-line error\n{self._describe()}")
        return self


def _limit(mem_mb: int) -> Callable[[], None]:
    def apply() -> None:
        cap = mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    return apply


def run_probe(
    argv_or_code: str | Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    mem_mb: int = DEFAULT_MEM_MB,
    seconds: float = DEFAULT_SECONDS,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> ProbeResult:
    """Run Python source (a string) or a ``python -m ...``-style argv list (without the
    interpreter) in a capped child process and report what happened."""
    if isinstance(argv_or_code, str):
        args = [sys.executable, "-c", textwrap.dedent(argv_or_code)]
    else:
        args = [sys.executable, *argv_or_code]
    child_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    child_env.update(env or {})
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=child_env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=seconds,
            preexec_fn=_limit(mem_mb),
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        return ProbeResult(None, out, err, timed_out=True)
    return ProbeResult(done.returncode, done.stdout, done.stderr, timed_out=False)


def hyso(*args: str, cwd: str | os.PathLike[str], **kwargs) -> ProbeResult:
    """Run the ``hyso`` command (``python -m hyso.core.train``) as a capped probe."""
    return run_probe(["-m", "hyso.core.train", *args], cwd=cwd, **kwargs)
