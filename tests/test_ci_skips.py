"""CI's own checks: the skip allow-list plugin (conftest.py) and .ci/run's exit-5 check.

Each case runs pytest in a fresh folder holding a copy of the repository's
conftest.py, so the plugin under test is the one CI loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TESTS = textwrap.dedent(
    """
    import pytest

    def test_runs():
        assert True

    def test_skips_at_run_time():
        pytest.skip("reference library missing")

    @pytest.mark.skipif(True, reason="needs a CUDA device")
    def test_cuda_only():
        pass

    @pytest.mark.xfail(reason="known bug", strict=True)
    def test_expected_failure():
        assert False
    """
)


def _pytest(folder: Path, allowlist: str | None, env: str = "unit") -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HYSO_")}
    if allowlist is not None:
        (folder / "allow.txt").write_text(allowlist, encoding="utf-8")
        environ |= {"HYSO_SKIP_ALLOWLIST": str(folder / "allow.txt"), "HYSO_CI_ENV": env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rfEs", "-p", "no:cacheprovider", "tests"],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_sample.py").write_text(TESTS, encoding="utf-8")
    return tmp_path


def test_without_an_allowlist_skips_pass(project: Path) -> None:
    proc = _pytest(project, None)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped, 1 xfailed" in proc.stdout


def test_an_unlisted_skip_fails_with_its_reason(project: Path) -> None:
    proc = _pytest(project, "* | tests/*::test_cuda_only | needs a CUDA device\n")
    assert proc.returncode == 1, proc.stdout
    assert "test_skips_at_run_time" in proc.stdout
    assert "skipped outside the allow-list" in proc.stdout
    assert "reference library missing" in proc.stdout
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed" in proc.stdout


def test_listed_skips_pass_and_are_printed(project: Path) -> None:
    allow = "unit | tests/test_sample.py::* | needs a CUDA device\n* | * | reference*\n"
    proc = _pytest(project, allow)
    assert proc.returncode == 0, proc.stdout
    assert "SKIPPED [1] tests/test_sample.py" in proc.stdout
    assert "needs a CUDA device" in proc.stdout and "reference library missing" in proc.stdout


def test_an_entry_for_another_environment_does_not_apply(project: Path) -> None:
    allow = "other | * | *\n"
    proc = _pytest(project, allow, env="unit")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in proc.stdout  # skipif: at setup


def test_a_module_skipped_at_collection_fails_the_session(project: Path) -> None:
    (project / "tests" / "test_reference.py").write_text(
        'import pytest\npytest.importorskip("hyso_no_such_module")\n\ndef test_x():\n    pass\n',
        encoding="utf-8",
    )
    allow = "* | * | needs a CUDA device\n* | * | reference*\n"
    proc = _pytest(project, allow)
    assert proc.returncode == 1, proc.stdout
    assert "skips outside the allow-list" in proc.stdout
    assert "tests/test_reference.py: could not import 'hyso_no_such_module'" in proc.stdout


def test_a_malformed_allowlist_names_the_line(project: Path) -> None:
    proc = _pytest(project, "# comment\n\n* | only two fields\n")
    assert proc.returncode != 0
    assert "allow.txt: line 3: expected 'ENV | NODE-ID GLOB | REASON GLOB'" in proc.stderr


@pytest.mark.parametrize(
    ("log", "status"),
    [
        ("config: exit 5 (1.07 seconds) /repo> pytest packages/x pid=1\n", 1),
        ("  config: FAIL code 5 (5.54=setup[4.47]+cmd[1.07] seconds)\n", 1),
        ("============ no tests ran in 0.01s ============\n", 1),
        ("  config: OK (5.54=setup[4.47]+cmd[1.07] seconds)\n  congratulations :)\n", 0),
    ],
)
def test_ci_run_detects_pytest_exit_5(tmp_path: Path, log: str, status: int) -> None:
    path = tmp_path / "tox.log"
    path.write_text(log, encoding="utf-8")
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run"), "--check-log", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == status, proc.stderr
    assert ("collected no tests" in proc.stderr) == bool(status)
