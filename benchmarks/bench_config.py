"""hyso-config against OmegaConf: import time, load + overrides, attribute access, behaviour.

Every figure is measured in this run for both libraries, interleaved, best of the repeats:

- import time: ``python -X importtime -c "import X"`` (the cumulative microseconds of
  the top module), for ``hyso.core.config``, for the hyso names a training script
  uses, for ``yaml`` alone and for ``omegaconf``;
- load + overrides: ``configs/base.yaml`` with two overrides, to a config object;
- attribute access: ``cfg.training.lr`` in a loop;
- behaviour: what each library does with inputs users get wrong (a table, not timed).

OmegaConf is a reference only, never a dependency:
``pip install -c constraints.txt omegaconf`` to include it; without it the hyso
figures are still printed.

Usage: python benchmarks/bench_config.py [--quick] [--repeats N] [--config PATH]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ["training.lr=0.0001", "model.dim=512"]
IMPORT_GOAL_MS = 50.0


def _top_level_imports(statement: str) -> dict[str, int]:
    """Top-level modules ``python -X importtime -c statement`` reports, with cumulative us."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    )
    # Lines look like "import time:   self |  cumulative | name"; a module imported
    # directly (not by another module) has no indentation before its name.
    found = {}
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match:
            found[match.group(2)] = int(match.group(1))
    return found


STARTUP = set(_top_level_imports("pass"))  # the interpreter's own start-up imports


def import_ms(statement: str) -> float:
    """Cumulative import time in ms of the modules ``statement`` imports itself."""
    found = _top_level_imports(statement)
    return sum(us for name, us in found.items() if name not in STARTUP) / 1000


def best_import_ms(statement: str, repeats: int) -> float:
    return min(import_ms(statement) for _ in range(repeats))


def best_us(fn: Callable[[], Any], number: int, repeats: int) -> float:
    """Best per-call time in microseconds over ``repeats`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def have_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "base.yaml")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    loads = 50 if args.quick else 200
    reads = 10_000 if args.quick else 50_000
    omega = have_omegaconf()

    print(f"python {sys.version.split()[0]}; config {args.config}; best of {repeats}")
    if not omega:
        print("omegaconf is not installed: reference columns are empty")

    # 1. Import time -----------------------------------------------------------------
    statements = {
        "import hyso.core.config": "import hyso.core.config",
        "+ load/override names": "from hyso.core.config import load_config_with_overrides, "
        "save_run_config, merge_config, expand_sweep",
        "import yaml (PyYAML)": "import yaml",
    }
    if omega:
        statements["import omegaconf"] = "import omegaconf"
    imports = {name: [] for name in statements}
    for _ in range(repeats):  # interleaved, so machine load hits both alike
        for name, stmt in statements.items():
            imports[name].append(import_ms(stmt))
    print("\nimport time (python -X importtime, cumulative, best)")
    print(f"| {'what':<28} | {'ms':>7} |")
    print(f"|{'-' * 30}|{'-' * 9}|")
    for name, values in imports.items():
        print(f"| {name:<28} | {min(values):7.1f} |")

    # 2. Load + overrides -------------------------------------------------------------
    from hyso.core.config import load_config_with_overrides

    path = str(args.config)
    rows: list[tuple[str, float, float | None]] = []

    def hyso_load() -> Any:
        return load_config_with_overrides(path, OVERRIDES)

    hyso_cfg = hyso_load()
    if omega:
        from omegaconf import OmegaConf

        def omega_load() -> Any:
            cfg = OmegaConf.load(path)
            OmegaConf.set_struct(cfg, True)  # unknown keys are errors, as in hyso
            return OmegaConf.merge(cfg, OmegaConf.from_dotlist(OVERRIDES))

        omega_cfg = omega_load()
        assert omega_cfg.training.lr == hyso_cfg.training.lr == 0.0001
    hyso_t = best_us(hyso_load, loads, repeats)
    omega_t = best_us(omega_load, loads, repeats) if omega else None
    rows.append(("load base.yaml + 2 overrides", hyso_t, omega_t))

    hyso_read = best_us(lambda: hyso_cfg.training.lr, reads, repeats)
    omega_read = best_us(lambda: omega_cfg.training.lr, reads, repeats) if omega else None
    rows.append(("read cfg.training.lr", hyso_read, omega_read))

    with tempfile.TemporaryDirectory() as folder:
        from hyso.core.config import save_config

        target = Path(folder) / "c.yaml"
        hyso_save = best_us(lambda: save_config(hyso_cfg, target), loads // 5, repeats)
        omega_save = None
        if omega:
            omega_target = Path(folder) / "o.yaml"
            omega_save = best_us(
                lambda: OmegaConf.save(omega_cfg, omega_target), loads // 5, repeats
            )
        rows.append(("save to YAML (hyso: atomic+fsync)", hyso_save, omega_save))

    print("\nper call, microseconds (best)")
    print(f"| {'operation':<34} | {'hyso':>9} | {'omegaconf':>9} | {'ratio':>6} |")
    print(f"|{'-' * 36}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    for name, mine, ref in rows:
        ref_s = f"{ref:9.1f}" if ref is not None else f"{'-':>9}"
        ratio = f"{ref / mine:5.1f}x" if ref is not None else f"{'-':>6}"
        print(f"| {name:<34} | {mine:9.1f} | {ref_s} | {ratio} |")

    # 3. Behaviour on inputs users get wrong ------------------------------------------
    print("\nbehaviour on inputs users get wrong (full messages below the table)")
    print(f"| {'input':<34} | {'hyso':<26} | {'omegaconf':<26} |")
    print(f"|{'-' * 36}|{'-' * 28}|{'-' * 28}|")
    messages = []
    for name, text, overrides, key in CASES:
        mine = outcome(lambda t=text, o=overrides, k=key: hyso_case(t, o, k))
        ref = (
            outcome(lambda t=text, o=overrides, k=key: omega_case(t, o, k)) if omega else ("-", "")
        )
        print(f"| {name:<34} | {mine[0]:<26} | {ref[0]:<26} |")
        messages.append((name, mine[1], ref[1]))
    for name, mine, ref in messages:
        if mine or ref:
            print(f"\n{name}:")
            print(f"  hyso:      {mine or '(no error)'}")
            print(f"  omegaconf: {ref or '(no error)'}")

    goal = min(imports["import hyso.core.config"])
    verdict = "met" if goal < IMPORT_GOAL_MS else "NOT met"
    print(
        f"\ngoal: import hyso.core.config under {IMPORT_GOAL_MS:.0f} ms: {verdict} ({goal:.1f} ms)"
    )
    return 0


BASE = "training:\n  lr: 0.001\n  epochs: 2\n  device: cpu\n"
CASES = [  # (name, file text, overrides, the key whose value is shown)
    ("lr: 1e-4 (type of the value)", "training:\n  lr: 1e-4\n", [], "training.lr"),
    ("key repeated in one mapping", "training:\n  lr: 0.1\n  lr: 0.2\n", [], "training.lr"),
    ("shuffle: no (type of the value)", "shuffle: no\n", [], "shuffle"),
    ("override of a misspelt key", BASE, ["training.lrr=0.1"], "training.lrr"),
    ("override: text where an int stood", BASE, ["training.epochs=ten"], "training.epochs"),
    ("override: float where an int stood", BASE, ["training.epochs=2.5"], "training.epochs"),
    ("!!python/object tag", "x: !!python/object/apply:os.getcwd []\n", [], "x"),
]


def hyso_case(text: str, overrides: list[str], key: str) -> Any:
    from hyso.core.config import load_config_with_overrides

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        cfg = load_config_with_overrides(path, overrides)
    return _at(cfg.to_dict(), key)


def omega_case(text: str, overrides: list[str], key: str) -> Any:
    from omegaconf import OmegaConf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        cfg = OmegaConf.load(path)
        OmegaConf.set_struct(cfg, True)
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
        return _at(OmegaConf.to_container(cfg), key)


def _at(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def outcome(fn: Callable[[], Any]) -> tuple[str, str]:
    """(short result for the table, the full one-line error message or "")."""
    try:
        value = fn()
    except Exception as exc:  # the table reports what each library raises
        message = " ".join(str(exc).split())
        message = re.sub(r"/tmp/\S+?/c\.yaml", "c.yaml", message)
        return f"error ({type(exc).__name__})", message
    return f"ok: {value!r} ({type(value).__name__})", ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
