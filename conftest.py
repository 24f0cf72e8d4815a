"""Repository-wide pytest plugin: in CI, a skip outside the allow-list fails the run.

Off unless ``HYSO_SKIP_ALLOWLIST`` names an allow-list file (tox sets it for every
environment, with ``HYSO_CI_ENV`` set to the environment's name). Each line of that
file is ``ENV | NODE-ID GLOB | REASON GLOB``: a skip is allowed when all three match
(``*`` as ENV matches every environment). A test skipped with no matching line
becomes a failure that carries its skip reason; a module skipped at collection
(a module-level ``importorskip``) is listed at the end and fails the session.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWLIST_VAR = "HYSO_SKIP_ALLOWLIST"
ENV_VAR = "HYSO_CI_ENV"


@dataclass(frozen=True)
class AllowedSkip:
    """One allow-list line: which environment, which tests, which reason."""

    env: str
    nodeid: str
    reason: str
    line: int

    def matches(self, env: str, nodeid: str, reason: str) -> bool:
        return (
            fnmatch.fnmatchcase(env, self.env)
            and fnmatch.fnmatchcase(nodeid, self.nodeid)
            and fnmatch.fnmatchcase(reason, self.reason)
        )


def read_allowlist(path: Path) -> list[AllowedSkip]:
    """Parse an allow-list file; a malformed line raises ValueError naming it."""
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        fields = [field.strip() for field in text.split("|")]
        if len(fields) != 3 or not all(fields):
            raise ValueError(
                f"{path}: line {number}: expected 'ENV | NODE-ID GLOB | REASON GLOB', "
                f"got {len(fields)} field(s): {raw!r}"
            )
        entries.append(AllowedSkip(*fields, line=number))
    return entries


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class SkipAllowlist:
    """Turns skips that the allow-list does not name into failures."""

    def __init__(self, entries: list[AllowedSkip], env: str) -> None:
        self.entries = entries
        self.env = env
        self.collect_skips: list[tuple[str, str]] = []

    def allowed(self, nodeid: str, reason: str) -> bool:
        return any(entry.matches(self.env, nodeid, reason) for entry in self.entries)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, object, None]:
        outcome = yield
        report = outcome.get_result()  # type: ignore[attr-defined]
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = _skip_reason(report)
        if self.allowed(report.nodeid, reason):
            return
        report.outcome = "failed"
        report.longrepr = (
            f"skipped outside the allow-list ({os.environ[ALLOWLIST_VAR]}, "
            f"environment {self.env!r}): {reason}"
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            reason = _skip_reason(report)
            if not self.allowed(report.nodeid, reason):
                self.collect_skips.append((report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.collect_skips:
            terminalreporter.section("skips outside the allow-list", red=True)
            for nodeid, reason in self.collect_skips:
                terminalreporter.line(f"SKIPPED (not allowed) {nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.collect_skips and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(ALLOWLIST_VAR)
    if not path:
        return
    entries = read_allowlist(Path(path))
    env = os.environ.get(ENV_VAR, "")
    config.pluginmanager.register(SkipAllowlist(entries, env), "hyso-skip-allowlist")
