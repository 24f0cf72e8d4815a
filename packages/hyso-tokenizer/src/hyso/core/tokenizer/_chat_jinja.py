"""The Jinja pieces of chat templates: the ``{% generation %}`` tag and the restricted
``namespace`` and ``dict`` globals. Only :mod:`.chat` imports this, and only once jinja2
is known to be installed (the module object is passed in)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["generation_extension", "restricted_globals"]


def generation_extension(jinja2: Any) -> type:
    """An extension for ``{% generation %} ... {% endgeneration %}``: the text inside is
    rendered as is, and its ``[start, end)`` character span in the output is recorded
    while ``env.track_generation(blocks, spans)`` is active."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    tracking: ContextVar[tuple[list[str], list[tuple[int, int]]] | None] = ContextVar(
        "hyso_generation_tracking", default=None
    )

    class Generation(Extension):  # type: ignore[misc]
        tags = {"generation"}  # noqa: RUF012  (jinja2's own class attribute)

        def __init__(self, environment: Any) -> None:
            super().__init__(environment)
            environment.extend(track_generation=self.track)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            call = self.call_method("_mark", [], [])
            return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _mark(self, caller: Any) -> str:
            text = str(caller())
            state = tracking.get()
            if state is not None:
                blocks, spans = state
                start = sum(len(b) for b in blocks)
                spans.append((start, start + len(text)))
            return text

        @contextmanager
        def track(self, blocks: list[str], spans: list[tuple[int, int]]) -> Iterator[None]:
            token = tracking.set((blocks, spans))
            try:
                yield
            finally:
                tracking.reset(token)

    return Generation


def restricted_globals(jinja2: Any) -> dict[str, Any]:
    """``namespace`` that refuses attribute names starting with ``_`` and a ``dict``
    whose only attributes are calling it and ``fromkeys``."""
    from jinja2.utils import Namespace

    def check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"a namespace cannot hold the underscore-prefixed attribute {name!r}"
            )

    class SafeNamespace(Namespace):  # type: ignore[misc]
        def __init__(*args: Any, **kwargs: Any) -> None:
            self, rest = args[0], args[1:]
            attrs = dict(*rest, **kwargs)
            for name in attrs:
                check(name)
            Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            check(name)
            Namespace.__setitem__(self, name, value)

    class SafeDict:
        def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict(*args, **kwargs)

        def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict.fromkeys(*args, **kwargs)

    return {"namespace": SafeNamespace, "dict": SafeDict()}
