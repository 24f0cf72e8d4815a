"""A table of bad inputs, each with the ``ConfigError`` it gets and what the message says.

Every entry writes one file (or none), runs one call, and checks the error names the
file, key or override at fault, the position where one exists, and what to write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from hyso.core.config import (
    Config,
    ConfigError,
    expand_sweep,
    load_config,
    load_config_with_overrides,
    merge_config,
    parse_overrides,
)

BASE = "training:\n  lr: 0.001\n  device: cpu\nmodel:\n  layers: 2\n"


class Case(NamedTuple):
    name: str
    files: dict[str, str]  # name -> content, written to tmp_path
    call: Callable[[Path], Any]  # gets tmp_path
    needles: tuple[str, ...]  # substrings of the message; "{dir}" is tmp_path
    position: tuple[int, int] | None = None  # (line, column), 1-based


def with_base(*overrides: str) -> Callable[[Path], Any]:
    return lambda d: load_config_with_overrides(d / "base.yaml", list(overrides))


def load(name: str) -> Callable[[Path], Any]:
    return lambda d: load_config(d / name)


CASES = [
    # Files --------------------------------------------------------------------------
    Case(
        "yaml syntax",
        {"c.yaml": "a: 1\nb: [1, 2\nc: 3\n"},
        load("c.yaml"),
        ("{dir}/c.yaml", "line 3, column 2", "expected ',' or ']'"),
        (3, 2),
    ),
    Case(
        "bad indentation",
        {"c.yaml": "a:\n  b: 1\n c: 2\n"},
        load("c.yaml"),
        ("{dir}/c.yaml", "line 3, column 2"),
        (3, 2),
    ),
    Case(
        "tab indentation",
        {"c.yaml": "a:\n\tb: 1\n"},
        load("c.yaml"),
        ("{dir}/c.yaml", "line 2, column 1", "spaces, not tabs"),
        (2, 1),
    ),
    Case(
        "duplicate key",
        {"c.yaml": "t:\n  lr: 1\n  lr: 2\n"},
        load("c.yaml"),
        ("{dir}/c.yaml", "duplicate key 'lr'", "first defined on line 2"),
        (3, 3),
    ),
    Case(
        "ambiguous bool",
        {"c.yaml": "shuffle: yes\n"},
        load("c.yaml"),
        ("'yes' is ambiguous", "write true or false"),
        (1, 10),
    ),
    Case(
        "python tag",
        {"c.yaml": "x: !!python/object/apply:os.system [ls]\n"},
        load("c.yaml"),
        ("python/object/apply:os.system", "is not allowed"),
        (1, 4),
    ),
    Case(
        "int key",
        {"c.yaml": "a:\n  1: x\n"},
        load("c.yaml"),
        ("key 1 is of type int", "quote it: '1'"),
        (2, 3),
    ),
    Case(
        "json syntax",
        {"c.json": '{\n  "a": 1,\n}\n'},
        load("c.json"),
        ("{dir}/c.json", "line 3, column 1", "Expecting property name"),
        (3, 1),
    ),
    Case(
        "json duplicate",
        {"c.json": '{"a": 1, "a": 2}'},
        load("c.json"),
        ("{dir}/c.json", "duplicate key 'a'"),
    ),
    Case(
        "top level list",
        {"c.yaml": "- 1\n- 2\n"},
        load("c.yaml"),
        ("{dir}/c.yaml", "top level is a list", "must hold a mapping"),
    ),
    Case("top level scalar", {"c.json": "3"}, load("c.json"), ("top level is an int",)),
    Case("empty file", {"c.yaml": "# nothing\n"}, load("c.yaml"), ("{dir}/c.yaml", "is empty")),
    Case(
        "two documents",
        {"c.yaml": "a: 1\n---\nb: 2\n"},
        load("c.yaml"),
        ("{dir}/c.yaml", "single document"),
        (2, 1),
    ),
    Case("missing file", {}, load("nope.yaml"), ("{dir}/nope.yaml does not exist",)),
    Case("bad suffix", {"c.toml": "a = 1"}, load("c.toml"), ("unsupported suffix '.toml'",)),
    Case(
        "missing base",
        {"c.yaml": "_base_: gone.yaml\n"},
        load("c.yaml"),
        ("{dir}/gone.yaml does not exist", "listed in _base_ of {dir}/c.yaml"),
    ),
    Case(
        "base cycle",
        {"a.yaml": "_base_: b.yaml\n", "b.yaml": "_base_: a.yaml\n"},
        load("a.yaml"),
        ("_base_ cycle", "{dir}/a.yaml -> {dir}/b.yaml -> {dir}/a.yaml"),
    ),
    Case(
        "base not a name",
        {"c.yaml": "_base_: 3\n"},
        load("c.yaml"),
        ("_base_ must be a file name or a list",),
    ),
    Case(
        "nested base",
        {"c.yaml": "m:\n  _base_: x.yaml\n"},
        load("c.yaml"),
        ("'m._base_' is not at the top level",),
    ),
    Case(
        "bad replace marker",
        {"c.yaml": "m:\n  _replace_: maybe\n"},
        load("c.yaml"),
        ("'m._replace_' must be true or false",),
    ),
    Case(
        "newer format",
        {"c.yaml": "_format_version_: 2\n"},
        load("c.yaml"),
        ("_format_version_ is 2",),
    ),
    # Overrides --------------------------------------------------------------------
    Case(
        "no equals",
        {"base.yaml": BASE},
        with_base("training.lr"),
        ("'training.lr' has no '='", "write training.lr=VALUE", "~training.lr"),
    ),
    Case(
        "empty key",
        {"base.yaml": BASE},
        with_base("=1"),
        ("'=1' has an empty key", "KEY.PATH=VALUE"),
    ),
    Case(
        "empty key part",
        {"base.yaml": BASE},
        with_base("training..lr=1"),
        ("key 'training..lr' has an empty part",),
    ),
    Case(
        "space in key", {"base.yaml": BASE}, with_base("training. lr=1"), ("contains whitespace",)
    ),
    Case(
        "double prefix", {"base.yaml": BASE}, with_base("++training.lr=1"), ("one prefix at most",)
    ),
    Case(
        "unknown key",
        {"base.yaml": BASE},
        with_base("training.lrr=0.1"),
        ("no key 'training.lrr'", "did you mean 'training.lr'", "+training.lrr=0.1"),
    ),
    Case(
        "unknown section",
        {"base.yaml": BASE},
        with_base("trainng.lr=0.1"),
        ("no key 'trainng.lr'", "did you mean 'training.lr'"),
    ),
    Case(
        "str for int",
        {"base.yaml": BASE},
        with_base("model.layers=deep"),
        ("key 'model.layers' holds an int (2)", "new value is a str ('deep')"),
    ),
    Case(
        "float for int",
        {"base.yaml": BASE},
        with_base("model.layers=2.5"),
        ("holds an int", "is a float"),
    ),
    Case(
        "int for str",
        {"base.yaml": BASE},
        with_base("training.device=0"),
        ("holds a str ('cpu')", "training.device='0'"),
    ),
    Case(
        "add existing",
        {"base.yaml": BASE},
        with_base("+training.lr=1.0"),
        ("'training.lr' already exists", "write training.lr=1.0"),
    ),
    Case(
        "delete missing",
        {"base.yaml": BASE},
        with_base("~training.lrr"),
        ("no key 'training.lrr'", "did you mean 'training.lr'"),
    ),
    Case(
        "delete with value",
        {"base.yaml": BASE},
        with_base("~training.lr=1"),
        ("a deletion takes no value", "write ~training.lr"),
    ),
    Case(
        "below a value",
        {"base.yaml": BASE},
        with_base("training.lr.x=1"),
        ("'training.lr' is a float (0.001), not a section",),
    ),
    Case(
        "set literal",
        {"base.yaml": BASE},
        with_base("training.lr={1, 2}"),
        ("a set is not a config value", "write a list"),
    ),
    Case(
        "broken list",
        {"base.yaml": BASE},
        with_base("training.lr=[1, 2"),
        ("neither a Python literal nor a YAML flow",),
    ),
    Case(
        "not a string",
        {"base.yaml": BASE},
        with_base(3),  # type: ignore[arg-type]
        ("an override must be a string", "got int 3"),
    ),
    Case(
        "string not list",
        {"base.yaml": BASE},
        lambda d: load_config_with_overrides(d / "base.yaml", "training.lr=1"),  # type: ignore
        ("must be a list of 'key=value' strings", "wrap it in a list"),
    ),
    Case("parse twice", {}, lambda d: parse_overrides(["a=1", "a=2"]), ("'a' is set twice",)),
    # Interpolation ----------------------------------------------------------------
    Case(
        "missing target",
        {"c.yaml": "a: {b: 1}\nc: ${a.x}\n"},
        load("c.yaml"),
        ("key 'c' refers to ${a.x}, which does not exist",),
    ),
    Case(
        "cycle",
        {"c.yaml": "a: ${b}\nb: ${a}\n"},
        load("c.yaml"),
        ("interpolation cycle: a -> b -> a",),
    ),
    # Values, merge and sweep ---------------------------------------------------------
    Case("non-string key in code", {}, lambda d: Config({1: 2}), ("config key 1",)),
    Case("merge non-mapping", {}, lambda d: merge_config({}, 3), ("override must be a mapping",)),
    Case(
        "sweep not a list",
        {},
        lambda d: expand_sweep({"a": 1, "sweep": {"a": 2}}),
        ("'sweep.a' must be a non-empty list",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_config_error(tmp_path: Path, case: Case) -> None:
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        case.call(tmp_path)
    error = info.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert "\n" not in message, "messages are one line"
    for needle in case.needles:
        assert needle.replace("{dir}", str(tmp_path)) in message, (needle, message)
    if case.position is not None:
        assert (error.line, error.column) == case.position
        assert error.path is not None and error.path in message


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)
