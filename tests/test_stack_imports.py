"""The five distributions installed together share one ``hyso.core`` namespace."""

import subprocess
import sys

import pytest

MODULES = ["config", "tokenizer", "models", "storage", "train"]


def test_all_five_import_together() -> None:
    import importlib

    for name in MODULES:
        mod = importlib.import_module(f"hyso.core.{name}")
        assert mod.__version__


@pytest.mark.parametrize("name", ["config", "tokenizer"])
def test_torch_free_modules_stay_free_with_torch_installed(name: str) -> None:
    import importlib.util

    assert importlib.util.find_spec("torch") is not None, "integration env must have torch"
    code = f"import sys, hyso.core.{name}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
