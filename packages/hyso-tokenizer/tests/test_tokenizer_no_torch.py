"""hyso-tokenizer stands alone: its own environment has no torch."""

import importlib.util
import os

import pytest


@pytest.mark.skipif(
    os.environ.get("HYSO_EXPECT_NO_TORCH") != "1",
    reason="only meaningful in the isolated tokenizer environment (tox -e tokenizer)",
)
def test_torch_is_not_installed_in_the_tokenizer_environment() -> None:
    assert importlib.util.find_spec("torch") is None


def test_importing_the_tokenizer_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, hyso.core.tokenizer; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
