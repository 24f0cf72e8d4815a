"""``import hyso.core.config`` stays light: PyYAML and the heavy modules load on first use."""

import subprocess
import sys

HEAVY = ("yaml", "torch", "ast", "difflib", "json", "tempfile", "hyso.core.config.loader")


def test_import_loads_only_the_core() -> None:
    code = (
        "import sys, hyso.core.config as c; "
        f"print([m for m in {HEAVY!r} if m in sys.modules]); "
        "c.load_config; print('hyso.core.config.loader' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


def test_every_public_name_resolves() -> None:
    import hyso.core.config as pkg

    for name in pkg.__all__:
        assert getattr(pkg, name) is not None, name
    assert set(pkg.__all__) <= set(dir(pkg))
