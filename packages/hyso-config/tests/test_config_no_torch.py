"""hyso-config never imports torch, even where torch is installed."""

import subprocess
import sys


def test_importing_config_does_not_import_torch() -> None:
    code = "import sys, hyso.core.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
