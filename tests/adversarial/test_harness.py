"""The harness itself: a runaway probe is stopped and reported, never passed."""

from __future__ import annotations

import pytest

from .harness import run_probe


def test_memory_cap_stops_a_runaway_allocation() -> None:
    result = run_probe("bytearray(4 << 30)", mem_mb=512)
    assert result.returncode != 0
    assert "MemoryError" in result.stderr
    with pytest.raises(pytest.fail.Exception, match="MemoryError"):
        result.expect_error()


def test_time_limit_stops_a_hang() -> None:
    result = run_probe("import time; time.sleep(60)", seconds=2)
    assert result.timed_out
    with pytest.raises(pytest.fail.Exception, match="time limit"):
        result.expect_ok()


def test_clean_error_and_success_are_told_apart() -> None:
    err = run_probe("import sys; sys.exit('config.yaml: unknown key')")
    err.expect_error("unknown key")
    with pytest.raises(pytest.fail.Exception, match="error was expected"):
        run_probe("print('fine')").expect_error()
    run_probe("print('fine')").expect_ok("fine")
    with pytest.raises(pytest.fail.Exception, match="traceback"):
        run_probe("raise ValueError('x')").expect_error("x")
