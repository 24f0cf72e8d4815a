"""The settings reference: a Markdown table per section, made from the schema's docstrings.

``python -m hyso.core.train.settings_doc`` prints what the README's settings reference
holds; a test keeps the two equal.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
from typing import Any

from hyso.core.train.run_config import DataSettings, FinetuneSettings, RunSettings
from hyso.core.train.settings import TrainingSettings

__all__ = ["SCHEMAS", "field_docs", "settings_reference"]

SCHEMAS: tuple[tuple[str, type], ...] = (
    ("training", TrainingSettings),
    ("data", DataSettings),
    ("run", RunSettings),
    ("finetune", FinetuneSettings),
)
"""Each documented config section and its dataclass (``model`` is hyso-models' config)."""


def field_docs(schema: type) -> dict[str, str]:
    """The docstring written under each field of the dataclass ``schema``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(schema)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def settings_reference() -> str:
    """Markdown: one table (key, default, meaning) per section, in schema order."""
    parts = []
    for section, schema in SCHEMAS:
        docs = field_docs(schema)
        lines = [f"`{section}`:", "", "| key | default | meaning |", "| --- | --- | --- |"]
        for f in dataclasses.fields(schema):
            meaning = docs.get(f.name, "").replace("``", "`").replace("|", "\\|")
            lines.append(f"| `{section}.{f.name}` | `{_default(f)}` | {meaning} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        value = f.default
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value) if isinstance(value, dict) else str(value)


if __name__ == "__main__":
    print(settings_reference(), end="")
