"""Issue 13's model probes: hostile or careless model folders end in a clear error,
within a memory cap and a time limit, never in an allocation the files do not back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hyso.core.models import HysoDecoderOnly, to_hf

from .harness import run_probe

SMALL = dict(dim=32, num_layers=2, vocab_size=50, num_heads=4)
# Enough for torch and a small model; far too little for what the hostile configs declare.
MEM_MB = 1536


def saved(tmp_path: Path, kind: str) -> Path:
    torch.manual_seed(0)
    model = HysoDecoderOnly(**SMALL)
    folder = tmp_path / kind
    if kind == "hf":
        to_hf(model, folder)
    else:
        model.save_pretrained(folder)
    return folder


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def load(kind: str, folder: Path):
    call = "load_hf" if kind == "hf" else "load_pretrained"
    return run_probe(
        f"from hyso.core.models import {call}\n{call}({str(folder)!r})", mem_mb=MEM_MB, seconds=60
    )


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("num_layers", 1_000_000, "declares num_layers 1000000"),
        ("dim", 1 << 20, "declares vocab_size 50 and dim 1048576"),
        ("vocab_size", 2_000_000_000, "declares vocab_size 2000000000"),
        ("norm_eps", float("nan"), "norm_eps must be a positive finite number"),
    ],
)
def test_own_format_config_is_checked_before_building(tmp_path, key, value, fragment):
    folder = saved(tmp_path, "own")
    edit_json(folder / "config.json", lambda d: d["config"].update({key: value}))
    load("own", folder).expect_error(fragment, traceback=True)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("num_hidden_layers", 1_000_000, "declares 1000000 layers"),
        ("hidden_size", 1 << 20, "hidden size 1048576"),
        ("vocab_size", 2_000_000_000, "declares vocab_size 2000000000"),
        ("intermediate_size", 1 << 30, "the config expects (1073741824, 32)"),
        ("rms_norm_eps", float("nan"), "rms_norm_eps must be positive and finite"),
    ],
)
def test_hf_config_is_checked_before_building(tmp_path, key, value, fragment):
    folder = saved(tmp_path, "hf")
    edit_json(folder / "config.json", lambda d: d.update({key: value}))
    load("hf", folder).expect_error(fragment, str(folder), traceback=True)


def test_replaced_weights_fail_the_integrity_check(tmp_path):
    folder = saved(tmp_path, "own")
    other = saved(tmp_path / "other", "own")
    # Same names and shapes, other values: only the recorded hash can tell.
    (folder / "model.safetensors").write_bytes(
        (other / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0"
    )
    load("own", folder).expect_error("does not match the weights_sha256", traceback=True)
