"""An embedded instruction set mined from the Python standard library: no download.

Each public function and method with a docstring, in the top-level modules and the
modules of the top-level packages (tests, IDLE and the turtle demos left out), gives one
pair: the prompt names the module (and class) and gives the docstring's first paragraph;
the answer is the signature, ``def name(args) -> annotation:`` as ``ast.unparse`` writes
it. Sources are parsed, never imported. Pairs come in file order and the split is by
module (see :func:`split_by_module`), so validation asks about modules training never saw,
and both depend only on the Python installation and ``val_fraction``.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "INSTRUCTIONS_NAME",
    "InstructionPair",
    "mine_stdlib_pairs",
    "split_by_module",
]

INSTRUCTIONS_NAME = "python-stdlib-instructions"
"""The ``data.name`` of the embedded instruction set."""

_SKIP_DIRS = {"test", "tests", "idlelib", "turtledemo", "site-packages", "__pycache__"}
_MAX_SUMMARY_CHARS = 200
_MIN_SUMMARY_CHARS = 12
_MAX_SIGNATURE_CHARS = 100


@dataclass(frozen=True)
class InstructionPair:
    """One prompt and answer, and the module they come from."""

    module: str
    name: str
    prompt: str
    answer: str

    def messages(self) -> list[dict[str, str]]:
        """The pair as a user turn and the assistant's answer."""
        return [
            {"role": "user", "content": self.prompt},
            {"role": "assistant", "content": self.answer},
        ]


def mine_stdlib_pairs(root: str | Path | None = None) -> list[InstructionPair]:
    """Every pair of the standard library at ``root`` (default: this Python's), in file
    order, each (prompt, answer) once."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted(base.glob("*.py")) + sorted(
        p for p in base.glob("*/*.py") if p.parent.name not in _SKIP_DIRS
    )
    seen: set[tuple[str, str]] = set()
    pairs: list[InstructionPair] = []
    for path in files:
        module = ".".join(path.relative_to(base).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for pair in _pairs_of_file(path, module):
            key = (pair.prompt, pair.answer)
            if key not in seen:
                seen.add(key)
                pairs.append(pair)
    return pairs


def split_by_module(
    pairs: list[InstructionPair], val_fraction: float
) -> tuple[list[InstructionPair], list[InstructionPair]]:
    """Train and validation pairs, whole modules to each side: modules in the order of
    their name's SHA-256, each going to validation while validation holds fewer than
    ``val_fraction`` of the pairs seen so far. Each split keeps file order."""
    by_module: dict[str, list[InstructionPair]] = {}
    for pair in pairs:
        by_module.setdefault(pair.module, []).append(pair)
    order = sorted(by_module, key=lambda m: hashlib.sha256(m.encode("utf-8")).digest())
    val_modules: set[str] = set()
    seen = in_val = 0
    for module in order:
        seen += len(by_module[module])
        if in_val < val_fraction * seen and seen > len(by_module[module]):
            val_modules.add(module)
            in_val += len(by_module[module])
    train = [p for p in pairs if p.module not in val_modules]
    val = [p for p in pairs if p.module in val_modules]
    return train, val


def source_record(root: str | Path | None, val_fraction: float) -> dict[str, Any]:
    """What the manifest keeps about the embedded set."""
    return {
        "kind": INSTRUCTIONS_NAME,
        "root": str(root or sysconfig.get_paths()["stdlib"]),
        "python": ".".join(map(str, sys.version_info[:3])),
        "val_fraction": val_fraction,
    }


def _pairs_of_file(path: Path, module: str) -> list[InstructionPair]:
    try:
        tree = ast.parse(path.read_bytes().decode("utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []  # an unreadable file is left out
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(_pair(node, module, None))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    out.append(_pair(item, module, node.name))
    return [p for p in out if p is not None]


def _pair(
    node: ast.FunctionDef | ast.AsyncFunctionDef, module: str, cls: str | None
) -> InstructionPair | None:
    if node.name.startswith("_"):
        return None
    doc = ast.get_docstring(node)
    if not doc:
        return None
    summary = " ".join(doc.strip().split("\n\n")[0].split())
    if not _MIN_SUMMARY_CHARS <= len(summary) <= _MAX_SUMMARY_CHARS:
        return None
    keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    signature = f"{keyword} {node.name}({ast.unparse(node.args)}){returns}:"
    if len(signature) > _MAX_SIGNATURE_CHARS:
        return None
    where = f"module {module}, class {cls}" if cls else f"module {module}"
    prompt = f"Python signature ({where}): {summary}"
    return InstructionPair(module, f"{cls}.{node.name}" if cls else node.name, prompt, signature)
