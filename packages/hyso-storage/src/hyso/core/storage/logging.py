"""A console + rotating-file logger that is safe to request repeatedly.

Lines look like ``2026-11-27T07:15:02.123Z INFO hyso.train: message`` (UTC).
Calling :func:`get_logger` again with the same name never adds a second console
or file handler; a different ``log_dir`` moves the file handler there.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

__all__ = ["LOG_FORMAT", "get_logger"]

LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
_TAG = "_hyso_storage_handler"  # attribute marking the handlers this module added


def get_logger(
    name: str,
    log_dir: str | os.PathLike[str] | None = None,
    level: int | str = "INFO",
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    console: bool = True,
) -> logging.Logger:
    """Return logger ``name`` writing to the console and, with ``log_dir``, to a file.

    The file is ``<log_dir>/<name>.log``, rotated at ``max_bytes`` keeping
    ``backup_count`` old files. The logger does not propagate to the root logger,
    so a configured root handler does not print each line twice.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"logger name must be a non-empty string, got {name!r}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    if backup_count < 0:
        raise ValueError(f"backup_count must be >= 0, got {backup_count}")
    logger = logging.getLogger(name)
    logger.setLevel(_parse_level(level))
    logger.propagate = False
    formatter = _formatter()
    ours = [h for h in logger.handlers if getattr(h, _TAG, None)]

    console_handlers = [h for h in ours if getattr(h, _TAG) == "console"]
    if console and not console_handlers:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        _adopt(logger, handler, "console", formatter)
    elif not console:
        for handler in console_handlers:
            logger.removeHandler(handler)

    if log_dir is not None:
        log_path = (Path(log_dir) / f"{_file_stem(name)}.log").resolve()
        kept = False
        for handler in [h for h in ours if getattr(h, _TAG) == "file"]:
            if Path(handler.baseFilename) == log_path and not kept:  # type: ignore[attr-defined]
                kept = True
                continue
            logger.removeHandler(handler)
            handler.close()
        if not kept:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            handler = RotatingFileHandler(
                log_path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
            _adopt(logger, handler, "file", formatter)
    return logger


def _adopt(logger: logging.Logger, handler: logging.Handler, kind: str, fmt: logging.Formatter):
    setattr(handler, _TAG, kind)
    handler.setFormatter(fmt)
    logger.addHandler(handler)


def _formatter() -> logging.Formatter:
    formatter = logging.Formatter(LOG_FORMAT, datefmt=_DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def _parse_level(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        value = logging.getLevelName(level.upper())
        if isinstance(value, int):
            return value
    raise ValueError(
        f"log level {level!r} is invalid: use DEBUG, INFO, WARNING, ERROR, CRITICAL or an int"
    )


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
