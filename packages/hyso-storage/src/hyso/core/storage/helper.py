"""A one-thread task runner that keeps working while the interpreter shuts down.

``concurrent.futures`` refuses new work once the main thread has finished, which
would break a background checkpoint save still running at exit. These helpers
are daemon threads fed by the (non-daemon) thread that owns them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Helper", "Task"]


class Task:
    """One submitted call; :meth:`result` waits for it and re-raises its error."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # handed to the waiter
            self._error = exc
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Helper:
    """Runs submitted calls in order on one daemon thread."""

    def __init__(self, name: str) -> None:
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        task = Task(fn, args)
        self._tasks.put(task)
        return task

    def close(self) -> None:
        """Finish the queued calls and stop the thread."""
        self._tasks.put(None)
        self._thread.join()

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while (task := self._tasks.get()) is not None:
            task.run()
