"""get_logger: format, file + console, no duplicated handlers or lines, rotation."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pytest

from hyso.core.storage import get_logger

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\w+) ([\w.]+): (.*)$")


def _name() -> str:
    return f"hyso.test.{uuid.uuid4().hex[:8]}"


def test_lines_have_the_format_and_reach_file_and_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _name()
    logger = get_logger(name, tmp_path)
    logger.info("hello %d", 42)
    logger.debug("hidden at INFO")
    lines = (tmp_path / f"{name}.log").read_text().splitlines()
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match and match.groups() == ("INFO", name, "hello 42")
    assert "hello 42" in capsys.readouterr().err


def test_calling_twice_does_not_duplicate(tmp_path: Path) -> None:
    name = _name()
    first = get_logger(name, tmp_path)
    second = get_logger(name, tmp_path)
    assert first is second
    assert len(first.handlers) == 2
    second.warning("once")
    assert (tmp_path / f"{name}.log").read_text().count("once") == 1


def test_new_log_dir_moves_the_file_handler(tmp_path: Path) -> None:
    name = _name()
    get_logger(name, tmp_path / "a").info("to a")
    logger = get_logger(name, tmp_path / "b", console=False)
    logger.info("to b")
    assert "to b" not in (tmp_path / "a" / f"{name}.log").read_text()
    assert (tmp_path / "b" / f"{name}.log").read_text().count("to b") == 1
    assert len(logger.handlers) == 1


def test_rotation_keeps_backup_count_files(tmp_path: Path) -> None:
    name = _name()
    logger = get_logger(name, tmp_path, max_bytes=300, backup_count=2, console=False)
    for i in range(100):
        logger.info("line %03d %s", i, "x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{name}.log", f"{name}.log.1", f"{name}.log.2"]
    assert "line 099" in (tmp_path / f"{name}.log").read_text()


def test_level_and_bad_arguments(tmp_path: Path) -> None:
    logger = get_logger(_name(), level="debug", console=False)
    assert logger.level == logging.DEBUG
    with pytest.raises(ValueError, match="log level"):
        get_logger(_name(), level="LOUD")
    with pytest.raises(ValueError, match="max_bytes"):
        get_logger(_name(), tmp_path, max_bytes=-1)
