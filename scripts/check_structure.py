"""Structure rules of the house, checked over every package's source (packages/*/src).

1. No function or method longer than ``--max-lines`` lines (80): from its ``def``
   line to its last line, decorators excluded.
2. No import cycle inside a package among module-level imports. Imports under
   ``if TYPE_CHECKING:`` and inside functions do not count; relative imports are
   resolved; a package ``__init__`` importing its submodules counts.

Prints each offender and exits 1, or exits 0 when there are none.

    python scripts/check_structure.py [ROOT] [--max-lines 80]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Module", "find_modules", "import_cycles", "long_functions", "main"]

MAX_LINES = 80


@dataclass(frozen=True)
class Module:
    """One source file of a distribution: its dotted name and whether it is a package."""

    name: str
    path: Path
    is_package: bool


def find_modules(src: Path) -> dict[str, Module]:
    """Every ``.py`` file under ``src``, by dotted module name."""
    modules = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package)
    return modules


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def long_functions(path: Path, root: Path, max_lines: int = MAX_LINES) -> list[str]:
    """``path:line: name is N lines`` for each def in ``path`` longer than ``max_lines``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for name, node in _functions(tree):
        length = node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]
        if length > max_lines:
            where = path.relative_to(root).as_posix()
            found.append(f"{where}:{node.lineno}: {name} is {length} lines (limit {max_lines})")  # type: ignore[attr-defined]
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _module_level_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions or TYPE_CHECKING."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _module_level_imports(ast.Module(body=[child], type_ignores=[]))
        else:
            yield from _module_level_imports(node)


def _targets(
    node: ast.Import | ast.ImportFrom, module: Module, modules: dict[str, Module]
) -> Iterator[str]:
    """The modules a statement imports, relative names resolved.

    ``from pkg import name`` imports the submodule ``pkg.name`` when there is one
    (its package, already importing, is not an edge of its own), else ``pkg``.
    """
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    base = node.module or ""
    if node.level:
        package = module.name.split(".")
        if not module.is_package:
            package.pop()
        if node.level > 1:
            package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules else base


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the modules of the same source tree it imports at module level."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, module in modules.items():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
        for node in _module_level_imports(tree):
            for target in _targets(node, module, modules):
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, for the message."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component  # unreachable for a strongly connected component


def import_cycles(src: Path) -> list[str]:
    """One line per import cycle among the modules under ``src``."""
    graph = import_graph(find_modules(src))
    return [
        "import cycle: " + " -> ".join(_one_cycle(graph, component))
        + (f" (component of {len(component)} modules)" if len(component) > 2 else "")
        for component in _strongly_connected(graph)
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).parents[1])
    parser.add_argument("--max-lines", type=int, default=MAX_LINES)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    sources = sorted(root.glob("packages/*/src"))
    if not sources:
        print(f"check_structure: no packages/*/src under {root}", file=sys.stderr)
        return 2
    offenders = []
    for src in sources:
        package = src.parent.name
        for path in sorted(src.rglob("*.py")):
            found = long_functions(path, root, args.max_lines)
            offenders += [f"{package}: {line}" for line in found]
        offenders += [f"{package}: {line}" for line in import_cycles(src)]
    for line in offenders:
        print(line)
    if offenders:
        print(f"check_structure: {len(offenders)} offender(s)", file=sys.stderr)
        return 1
    print(f"check_structure: {len(sources)} packages clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
