"""scripts/check_structure.py finds long functions and import cycles in tiny fake packages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_structure.py"


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def _check(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _function(name: str, body_lines: int, decorators: int = 0) -> str:
    head = "@staticmethod\n" * decorators + f"def {name}():\n"
    return head + "".join(f"    x{i} = {i}\n" for i in range(body_lines))


def _clean_package(root: Path) -> None:
    src = "packages/fake/src/hyso/core/fake"
    _write(root, f"{src}/__init__.py", "from .a import A\nfrom . import b\n")
    _write(root, f"{src}/a.py", "A = 1\n")
    _write(root, f"{src}/b.py", "from .a import A\nB = A\n")


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    _clean_package(tmp_path)
    _write(tmp_path, "packages/fake/src/hyso/core/fake/c.py", _function("ok", 79))  # 80 lines
    proc = _check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 packages clean" in proc.stdout


def test_functions_longer_than_the_limit_are_listed(tmp_path: Path) -> None:
    _clean_package(tmp_path)
    # 81 lines from `def` on; the decorators above it do not count.
    method = textwrap.indent(_function("too_long", 80, decorators=3), "    ")
    _write(tmp_path, "packages/fake/src/hyso/core/fake/c.py", "class K:\n" + method)
    nested = "def outer():\n" + textwrap.indent(_function("inner", 81), "    ")
    _write(tmp_path, "packages/other/src/hyso/core/other/d.py", nested)
    proc = _check(tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert "fake: packages/fake/src/hyso/core/fake/c.py:5: K.too_long is 81 lines (limit 80)" in (
        lines
    )
    assert any(line.endswith("d.py:2: outer.inner is 82 lines (limit 80)") for line in lines)
    assert any(line.endswith("d.py:1: outer is 83 lines (limit 80)") for line in lines)
    assert len(lines) == 3
    assert _check(tmp_path, "--max-lines", "90").returncode == 0


def test_import_cycles_are_found_and_exempt_imports_are_not(tmp_path: Path) -> None:
    src = "packages/fake/src/hyso/core/fake"
    # __init__ -> sub.x -> y -> __init__ (relative, absolute and package imports).
    _write(tmp_path, f"{src}/__init__.py", "from .sub import x\n")
    _write(tmp_path, f"{src}/sub/__init__.py", "")
    _write(tmp_path, f"{src}/sub/x.py", "from .. import y\n")
    _write(tmp_path, f"{src}/y.py", "import hyso.core.fake\n")
    # p <-> q, only through exempt imports: TYPE_CHECKING and a function body.
    _write(
        tmp_path,
        f"{src}/p.py",
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from .q import Q
        else:
            import json
        """,
    )
    _write(tmp_path, f"{src}/q.py", "def f():\n    from .p import P\n    return P\n")
    proc = _check(tmp_path)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    expected = (
        "fake: import cycle: hyso.core.fake -> hyso.core.fake.sub.x -> hyso.core.fake.y"
        " -> hyso.core.fake (component of 3 modules)"
    )
    assert lines == [expected]


def test_a_two_module_cycle_through_a_module_level_if(tmp_path: Path) -> None:
    src = "packages/fake/src/hyso/core/fake"
    _write(tmp_path, f"{src}/__init__.py", "")
    _write(tmp_path, f"{src}/a.py", "import sys\nif sys.platform:\n    from .b import B\nA = 1\n")
    _write(tmp_path, f"{src}/b.py", "from hyso.core.fake.a import A\nB = 2\n")
    proc = _check(tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "fake: import cycle: hyso.core.fake.a -> hyso.core.fake.b -> hyso.core.fake.a"
    ]
