"""Adversarial probes of hyso-config: hostile or careless config files, overrides and
environments end in a ``ConfigError`` naming the file, override or key (or in correct
behaviour), never in a hang, a MemoryError, a RecursionError or a leaked secret.

Each probe runs in a child process under a memory cap and a time limit (``harness``);
a raised ``ConfigError`` prints a traceback, so ``traceback=True`` and the class name
is among the fragments checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .harness import run_probe

MEM_MB = 768
SECONDS = 20.0


def _load(path: str, overrides: list[str] | None = None) -> str:
    """Probe source that loads ``path`` (with ``overrides``) and prints 'loaded'."""
    return (
        "from hyso.core.config import load_config_with_overrides\n"
        f"cfg = load_config_with_overrides({path!r}, {overrides or []!r})\n"
        "print('loaded')\n"
    )


def _probe(code: str, cwd: Path, **kwargs):
    kwargs.setdefault("mem_mb", MEM_MB)
    kwargs.setdefault("seconds", SECONDS)
    return run_probe(code, cwd=cwd, **kwargs)


# Interpolation bombs ----------------------------------------------------------------


def test_interpolation_text_bomb_is_refused_naming_the_key(probe_dir: Path) -> None:
    # Eleven keys, each holding ten references to the one before: 10**10 characters.
    lines = ["k0: 'xxxxxxxxxx'"]
    lines += [f"k{i}: '" + " ".join([f"${{k{i - 1}}}"] * 10) + "'" for i in range(1, 11)]
    (probe_dir / "bomb.yaml").write_text("\n".join(lines) + "\n")
    result = _probe(_load("bomb.yaml"), probe_dir)
    result.expect_error("ConfigError", "key 'k", "10,000,000 characters", traceback=True)


def test_interpolation_section_bomb_is_refused_naming_the_key(probe_dir: Path) -> None:
    # Whole-list references repeated ten times a level: 10**11 values once copied.
    lines = ["k0: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"k{i}: [" + ", ".join([f"'${{k{i - 1}}}'"] * 10) + "]" for i in range(1, 11)]
    (probe_dir / "bomb.yaml").write_text("\n".join(lines) + "\n")
    result = _probe(_load("bomb.yaml"), probe_dir)
    result.expect_error("ConfigError", "key 'k", "1,000,000 values", traceback=True)


def test_long_reference_chain_is_refused(probe_dir: Path) -> None:
    # k0 -> k1 -> ... -> k400, resolved from the far end: one frame stack per link.
    text = "".join(f"k{i}: ${{k{i + 1}}}\n" for i in range(400)) + "k400: 1\n"
    (probe_dir / "chain.yaml").write_text(text)
    result = _probe(_load("chain.yaml"), probe_dir)
    result.expect_error("ConfigError", "nest more than 100 deep", traceback=True)


# Deep nesting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("flow.yaml", "a: " + "[" * 500 + "]" * 500 + "\n"),
        ("block.yaml", "".join("  " * i + f"k{i}:\n" for i in range(480)) + "  " * 480 + "v\n"),
        ("deep.json", '{"a": ' + "[" * 500 + "]" * 500 + "}"),
        ("objects.json", '{"a": ' + '{"b": ' * 460 + "1" + "}" * 460 + "}"),
        ("self.yaml", "a: &x [*x]\n"),
        ("key.yaml", "? " + "[" * 300 + "]" * 300 + "\n: 1\n"),
    ],
)
def test_deeply_nested_file_is_refused_naming_it(probe_dir: Path, name: str, text: str) -> None:
    (probe_dir / name).write_text(text)
    result = _probe(_load(name), probe_dir)
    result.expect_error("ConfigError", name, traceback=True)
    assert "levels deep" in result.stderr or "keys must be strings" in result.stderr


def test_deep_yaml_is_refused_by_the_pure_python_loader_too(probe_dir: Path) -> None:
    (probe_dir / "flow.yaml").write_text("a: " + "[" * 500 + "]" * 500 + "\n")
    code = "import yaml\ndel yaml.CSafeLoader\n" + _load("flow.yaml")
    result = _probe(code, probe_dir)
    result.expect_error("ConfigError", "flow.yaml", "levels deep", traceback=True)


def test_chained_yaml_merge_keys_are_refused(probe_dir: Path) -> None:
    lines = ["a0: &a0 {x: 1}"]
    lines += [f"a{i}: &a{i} {{<<: *a{i - 1}, y{i}: 1}}" for i in range(1, 400)]
    lines.append("<<: *a399")  # the top level is flattened first, down the whole chain
    (probe_dir / "merge.yaml").write_text("\n".join(lines) + "\n")
    result = _probe(_load("merge.yaml"), probe_dir)
    result.expect_error("ConfigError", "merge.yaml", "'<<' merges chain", traceback=True)


@pytest.mark.parametrize(
    "override",
    [
        "a=" + "[" * 500 + "]" * 500,
        "a=" + "{'a': " * 500 + "1" + "}" * 500,
        "a=" + "{a: " * 500 + "1" + "}" * 500,
        "+" + ".".join(["x"] * 600) + "=1",
    ],
)
def test_deeply_nested_override_is_refused_naming_it(probe_dir: Path, override: str) -> None:
    (probe_dir / "c.yaml").write_text("a: null\n")
    result = _probe(_load("c.yaml", [override]), probe_dir)
    result.expect_error("ConfigError", f"override {override[:20]!r}"[:-1], traceback=True)


# Files that are no files ------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_base_naming_a_fifo_is_refused_without_blocking(probe_dir: Path) -> None:
    os.mkfifo(probe_dir / "pipe.yaml")
    (probe_dir / "c.yaml").write_text("_base_: pipe.yaml\na: 1\n")
    result = _probe(_load("c.yaml"), probe_dir, seconds=10)
    result.expect_error("ConfigError", "pipe.yaml", "not a regular file", traceback=True)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_base_linking_to_dev_zero_is_refused(probe_dir: Path) -> None:
    (probe_dir / "zero.yaml").symlink_to("/dev/zero")
    (probe_dir / "c.yaml").write_text("_base_: zero.yaml\na: 1\n")
    result = _probe(_load("c.yaml"), probe_dir, seconds=10)
    result.expect_error("ConfigError", "zero.yaml", "not a regular file", traceback=True)


def test_oversized_config_file_is_refused(probe_dir: Path) -> None:
    with open(probe_dir / "big.yaml", "w") as handle:
        handle.write("a: '" + "x" * (17 << 20) + "'\n")
    result = _probe(_load("big.yaml"), probe_dir)
    result.expect_error("ConfigError", "big.yaml", "16,777,216 bytes", traceback=True)


def test_base_files_listed_over_and_over_are_refused(probe_dir: Path) -> None:
    # Ten levels, each listing the next ten times: 10**9 file reads.
    for i in range(10):
        base = "_base_: [" + ", ".join([f"d{i + 1}.yaml"] * 10) + "]\n" if i < 9 else ""
        (probe_dir / f"d{i}.yaml").write_text(base + f"k{i}: 1\n")
    result = _probe(_load("d0.yaml"), probe_dir)
    result.expect_error("ConfigError", "more than 100 files", traceback=True)


# Sweeps -----------------------------------------------------------------------------


def test_huge_sweep_grid_is_refused_before_expanding(probe_dir: Path) -> None:
    grid = str(list(range(100)))
    text = f"a: 1\nb: 1\nc: 1\nsweep:\n  a: {grid}\n  b: {grid}\n  c: {grid}\n"
    (probe_dir / "s.yaml").write_text(text)
    code = "from hyso.core.config import expand_sweep, load_config as L\nexpand_sweep(L('s.yaml'))"
    result = _probe(code, probe_dir, seconds=10)
    result.expect_error("ConfigError", "100 x 100 x 100", "10,000", traceback=True)


# Text that is not Unicode -----------------------------------------------------------


def test_lone_surrogate_in_an_override_is_refused(probe_dir: Path) -> None:
    (probe_dir / "c.yaml").write_text("name: run\n")
    code = _load("c.yaml", ["name=x\udc80y"])
    result = _probe(code, probe_dir)
    result.expect_error("ConfigError", "override 'name=x", "lone surrogate", traceback=True)


def test_undecodable_environment_value_is_refused_naming_the_key(probe_dir: Path) -> None:
    (probe_dir / "c.yaml").write_text("name: ${env:RUN_NAME}\n")
    code = "import os\nos.environb[b'RUN_NAME'] = b'x\\xff'\n" + _load("c.yaml")
    result = _probe(code, probe_dir)
    result.expect_error("ConfigError", "key 'name'", "lone surrogate", traceback=True)


def test_lone_surrogate_escape_in_json_is_refused(probe_dir: Path) -> None:
    (probe_dir / "c.json").write_text('{"name": "x\\udc80"}')
    result = _probe(_load("c.json"), probe_dir)
    result.expect_error("ConfigError", "c.json", "lone surrogate", traceback=True)


def test_json_integer_too_long_to_convert_is_a_config_error(probe_dir: Path) -> None:
    (probe_dir / "c.json").write_text('{"n": 1' + "0" * 5000 + "}")
    result = _probe(_load("c.json"), probe_dir)
    result.expect_error("ConfigError", "c.json", "4300 digits", traceback=True)


# Secrets ----------------------------------------------------------------------------


def test_environment_secrets_stay_out_of_saved_configs(probe_dir: Path) -> None:
    (probe_dir / "c.yaml").write_text(
        "api:\n  token: ${env:HYSO_TOKEN}\n  header: 'Bearer ${env:HYSO_TOKEN}'\n"
        "copy: ${api}\nwidth: ${env:HYSO_WIDTH,8}\n"
    )
    code = (
        "import json\n"
        "from hyso.core.config import load_config, load_config_with_overrides, save_config,"
        " save_run_config, to_dict_env_unresolved\n"
        "cfg = load_config_with_overrides('c.yaml', ['+note=${api.header}!'])\n"
        "assert cfg.api.token == 'hunter2' and cfg.width == 8, cfg\n"
        "save_run_config(cfg, 'run/config.yaml')\n"
        "save_config(cfg, 'run/config.json')\n"
        "open('run/record.json', 'w').write(json.dumps(to_dict_env_unresolved(cfg)))\n"
        "assert load_config('run/config.yaml') == cfg and load_config('run/config.json') == cfg\n"
        "print('saved')\n"
    )
    env = {"HYSO_TOKEN": "hunter2"}
    _probe(code, probe_dir, env=env).expect_ok("saved")
    for file in sorted((probe_dir / "run").iterdir()):
        text = file.read_text()
        assert "hunter2" not in text, f"{file.name} holds the secret:\n{text}"
    record = json.loads((probe_dir / "run" / "record.json").read_text())
    assert record["api"] == {"token": "${env:HYSO_TOKEN}", "header": "Bearer ${env:HYSO_TOKEN}"}
    assert record["copy"] == record["api"]
    assert record["note"] == "Bearer ${env:HYSO_TOKEN}!"
    assert record["width"] == "${env:HYSO_WIDTH,8}"
