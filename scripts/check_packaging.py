"""Build every distribution and prove each wheel installs and imports on its own.

Steps, each failing loudly:
1. build a wheel and an sdist of each of the five packages into one folder;
2. in a fresh venv, ``pip install --find-links DIR hyso-tokenizer`` pulls neither
   torch nor another hyso package; ``hyso-config`` likewise needs only PyYAML;
3. in a fresh venv, ``pip install --find-links DIR hyso-train`` pulls
   hyso-models, hyso-storage and hyso-config (and torch);
4. any two of the five wheels (with the hyso siblings they declare), installed side
   by side, import together.

Usage: python scripts/check_packaging.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "tokenizer", "models", "storage", "train"]
# The hyso distributions each package declares as dependencies (its pyproject.toml).
SIBLINGS = {"train": ("config", "models", "storage")}


def run(cmd: list[str], **kw) -> str:
    print("+", " ".join(cmd), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"command failed with exit code {out.returncode}: {' '.join(cmd)}")
    return out.stdout


def build_all(dist: Path) -> None:
    for name in PACKAGES:
        run(
            [
                sys.executable,
                "-m",
                "build",
                "--outdir",
                str(dist),
                str(ROOT / "packages" / f"hyso-{name}"),
            ]
        )
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    sdists = sorted(p.name for p in dist.glob("*.tar.gz"))
    if len(wheels) != len(PACKAGES) or len(sdists) != len(PACKAGES):
        raise SystemExit(f"expected {len(PACKAGES)} wheels and sdists, got {wheels} {sdists}")
    for whl in dist.glob("*.whl"):
        names = zipfile.ZipFile(whl).namelist()
        for bad in ("hyso/__init__.py", "hyso/core/__init__.py"):
            if bad in names:
                raise SystemExit(
                    f"{whl.name} ships {bad}: hyso and hyso.core must be namespace packages"
                )
        if not any(n.endswith("py.typed") for n in names):
            raise SystemExit(f"{whl.name} does not ship py.typed")


def fresh_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin" / "python"


def installed(python: Path) -> set[str]:
    code = (
        "import importlib.metadata as m; "
        "print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))"
    )
    return set(run([str(python), "-c", code]).split())


def install_alone(
    dist: Path, work: Path, name: str, must_have: set[str], must_lack: set[str]
) -> None:
    python = fresh_venv(work / f"venv-{name}")
    env = dict(os.environ, PIP_CONSTRAINT=str(ROOT / "constraints.txt"))
    run(
        [str(python), "-m", "pip", "install", "-q", "--find-links", str(dist), f"hyso-{name}"],
        env=env,
    )
    run([str(python), "-c", f"import hyso.core.{name}"])
    have = installed(python)
    missing = must_have - have
    leaked = must_lack & have
    if missing or leaked:
        raise SystemExit(
            f"hyso-{name}: missing {sorted(missing)}, should not have {sorted(leaked)}"
        )
    shown = sorted(d for d in have if d.startswith("hyso") or d == "torch")
    print(f"ok: hyso-{name} alone installs {shown}")


def pairs_side_by_side(dist: Path, work: Path) -> None:
    """Install each pair of wheels (no deps) into the train venv emptied of hyso."""
    python = str(work / "venv-train" / "bin" / "python")
    env = dict(os.environ, PIP_CONSTRAINT=str(ROOT / "constraints.txt"))
    pip = [python, "-m", "pip", "-q"]
    run([*pip, "uninstall", "-y", *(f"hyso-{n}" for n in PACKAGES)])
    run([*pip, "install", "--find-links", str(dist), "regex", "safetensors", "pyyaml"], env=env)
    wheels = {n: str(next(dist.glob(f"hyso_{n}-*.whl"))) for n in PACKAGES}
    for a, b in itertools.combinations(PACKAGES, 2):
        # each member brings the hyso siblings it declares, and nothing else
        names = sorted({a, b, *SIBLINGS.get(a, ()), *SIBLINGS.get(b, ())})
        run([*pip, "install", "--no-deps", *(wheels[n] for n in names)])
        run([python, "-c", f"import hyso.core.{a}, hyso.core.{b}"])
        run([*pip, "uninstall", "-y", *(f"hyso-{n}" for n in names)])
    print("ok: every pair of the five (with the siblings they declare) imports side by side")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build into this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hyso-pkg-") as tmp:
        work = Path(tmp)
        dist = args.keep or work / "dist"
        dist.mkdir(parents=True, exist_ok=True)
        build_all(dist)
        hyso_all = {f"hyso-{n}" for n in PACKAGES}
        install_alone(
            dist, work, "tokenizer", {"hyso-tokenizer"}, {"torch"} | (hyso_all - {"hyso-tokenizer"})
        )
        install_alone(
            dist,
            work,
            "config",
            {"hyso-config", "pyyaml"},
            {"torch"} | (hyso_all - {"hyso-config"}),
        )
        install_alone(
            dist,
            work,
            "train",
            {"hyso-train", "hyso-models", "hyso-storage", "hyso-config", "torch"},
            {"hyso-tokenizer"},
        )
        pairs_side_by_side(dist, work)
    print("packaging checks passed")


if __name__ == "__main__":
    main()
