"""The ``hyso`` command end to end on a tiny config: train, generate, runs, sweep, plot
and the error paths, in-process through ``main(argv)`` and once as a console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib  # noqa: F401  (hyso plot; its absence is an error, not a skip)
import numpy  # noqa: F401  (the token cache)
import pytest

import hyso.core.tokenizer  # noqa: F401  (the command trains and loads tokenizers)
from hyso.core.train.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = """
model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}
training:
  seed: 0
  device: cpu
  lr: 0.003
  weight_decay: 0.0
  batch_size: 4
  epochs: 1
  grad_accum_steps: 1
  max_grad_norm: 1.0
  precision: fp32
  log_every: 1
  eval_every: 4
  save_every: null
  scheduler_interval: step
  max_steps: 6
  warmup_steps: 2
  min_lr_ratio: 0.1
  progress_bar: false
  num_threads: 1
data:
  name: python-stdlib
  max_bytes: 60000
  val_fraction: 0.1
  vocab_size: 300
  paths: null
  cache_dir: CACHE
"""


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hyso-cli")
    config = tmp / "tiny.yaml"
    config.write_text(TINY.replace("CACHE", str(tmp / "cache")), encoding="utf-8")
    return {"tmp": tmp, "config": config, "runs": tmp / "runs", "cache": tmp / "cache"}


@pytest.fixture(scope="module")
def trained(workspace: dict[str, Path]) -> Path:
    """One tiny training run shared by the read-only commands."""
    argv = ["train", str(workspace["config"]), "--runs-root", str(workspace["runs"])]
    assert main([*argv, "--sample-tokens", "8"]) == 0
    (run_dir,) = workspace["runs"].iterdir()
    return run_dir


def test_train_writes_a_finished_run(
    trained: Path, workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    fingerprint = manifest["data"]["fingerprint"]
    assert fingerprint["train"] and fingerprint["val"]
    assert all(len(e["sha256"]) == 64 for e in fingerprint["train"] + fingerprint["val"])
    assert manifest["data"]["tokenizer"]["vocab_size"] == 300
    assert manifest["results"]["val_bpb"] > 0
    for reference in ("gzip_bpb", "xz_bpb", "bzip2_bpb"):  # the compressors, same bytes
        assert 0 < manifest["results"][reference] < 8.5
    assert (trained / "config.yaml").is_file()
    assert (trained / "artifacts" / "tokenizer.json").is_file()
    assert list((trained / "checkpoints").iterdir())
    assert (trained / "metrics.csv").is_file()
    assert list((workspace["cache"] / "tokens").glob("*.bin"))


def test_train_prints_loss_bpb_folder_and_sample(
    workspace: dict[str, Path], trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", str(workspace["config"]), "--runs-root", str(workspace["tmp"] / "again")]
    assert main([*argv, "--prompt", "import ", "--sample-tokens", "8"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "best val loss:" in out
    assert "gzip -9:" in out
    assert "xz -9e:" in out and "bzip2 -9:" in out
    assert "run folder:" in out
    sample = out.split("sample:\n", 1)[1]
    assert sample.startswith("import ")
    # the second run reuses the cached tokenizer and token arrays
    assert "from cache" in captured.err
    (again,) = (workspace["tmp"] / "again").iterdir()
    first = json.loads((trained / "manifest.json").read_text())["data"]
    second = json.loads((again / "manifest.json").read_text())["data"]
    assert first["fingerprint"] == second["fingerprint"]
    assert first["tokenizer"]["sha256"] == second["tokenizer"]["sha256"]


def test_generate_continues_the_prompt(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", str(trained), "--prompt", "class ", "--max-new-tokens", "10"]
    assert main([*argv, "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("class ")
    assert main([*argv, "--seed", "1"]) == 0
    assert capsys.readouterr().out == first


def test_runs_lists_the_run(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(trained.parent)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(trained.name))
    cells = row.split()
    assert cells[-1] == "finished"
    assert "decoder_only" in cells
    assert cells[-3] == "6"


def test_plot_makes_a_png(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "loss.png"
    assert main(["plot", str(trained), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_runs_each_point_and_compares(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(
        f"_base_: {workspace['config']}\nsweep:\n  training.lr: [0.001, 0.01]\n",
        encoding="utf-8",
    )
    root = tmp_path / "runs"
    assert main(["sweep", str(config), "training.max_steps=2", "--runs-root", str(root)]) == 0
    out = capsys.readouterr().out
    table = out.strip().splitlines()
    assert table[0].split()[:2] == ["point", "label"]
    assert len(table) == 4
    assert "lr=0.001" in table[2] and "lr=0.01" in table[3]
    assert len(list(root.iterdir())) == 2


def test_lr_sweep_config_trains_an_encoder(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    overrides = [
        "model.dim=32",
        "model.layers=1",
        "model.num_heads=2",
        "model.max_seq_len=32",
        "training.batch_size=4",
        "training.max_steps=2",
        "training.epochs=1",
        "+data.max_bytes=60000",
        "+data.vocab_size=300",
        "+data.val_fraction=0.2",
        f"+data.cache_dir={workspace['cache']}",
    ]
    argv = ["sweep", str(REPO / "configs" / "lr_sweep.yaml"), *overrides]
    assert main([*argv, "--runs-root", str(root), "--no-progress"]) == 0
    runs = list(root.iterdir())
    assert len(runs) >= 2
    for run_dir in runs:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "finished"
        assert manifest["model"]["name"] == "encoder_only"


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["training.lr"], "training.lr"),
        (["training.no_such_key=1"], "no_such_key"),
        (["data.paths=['/nonexistent/dir/*.txt']"], "data.paths"),
        (["training.batch_size=100000"], "training.batch_size"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    workspace: dict[str, Path],
    extra: list[str],
    needle: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["train", str(workspace["config"]), *extra]
    assert main([*argv, "--runs-root", str(workspace["tmp"] / "bad")]) == 2
    assert needle in _one_error_line(capsys.readouterr().err)


def test_missing_config_and_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in _one_error_line(capsys.readouterr().err)
    for command in ("generate", "plot"):
        assert main([command, str(tmp_path / "no-run")]) == 2
        assert "does not exist" in _one_error_line(capsys.readouterr().err)
    assert main(["runs", str(tmp_path / "no-root")]) == 2
    assert "does not exist" in _one_error_line(capsys.readouterr().err)


def test_console_script_runs(trained: Path) -> None:
    script = Path(sys.executable).with_name("hyso")
    cmd = [str(script)] if script.exists() else [shutil.which("hyso") or "hyso"]
    done = subprocess.run(
        [*cmd, "runs", str(trained.parent)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert trained.name in done.stdout
    bad = subprocess.run(
        [*cmd, "generate", str(trained.parent / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert _one_error_line(bad.stderr).startswith("hyso generate: error:")
