"""Adversarial probes of the ``hyso`` command: a hostile checkout, failing sweep points,
config errors, signals, NaN losses, secrets from the environment, file modes, a
swapped tokenizer and damaged metrics files. Every probe trains a tiny model for a
few steps on a small slice of the embedded corpus (the tokenizer is cached once)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .harness import hyso, run_probe
from .test_storage import hostile_checkout, needs_git

TINY = """
model: {{name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}}
training:
  seed: 0
  device: cpu
  lr: 0.003
  batch_size: 4
  epochs: 1
  log_every: 1
  eval_every: 2
  save_every: 1
  max_steps: 3
  progress_bar: false
  num_threads: 1
data:
  name: python-stdlib
  max_bytes: 20000
  vocab_size: 300
  cache_dir: {cache}
"""


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``tiny.yaml`` and a trained run under ``runs/`` (the tokenizer and
    token cache it leaves are shared by every probe)."""
    root = tmp_path_factory.mktemp("adv-train")
    (root / "tiny.yaml").write_text(TINY.format(cache=root / "cache"), encoding="utf-8")
    hyso("train", "tiny.yaml", "--runs-root", "runs", "--sample-tokens", "4", cwd=root).expect_ok(
        "run folder:"
    )
    return root


def _the_run(root: Path) -> Path:
    (run_dir,) = root.iterdir()
    return run_dir


@needs_git
def test_train_in_a_hostile_checkout_runs_none_of_its_commands(space: Path, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    repo = hostile_checkout(tmp_path, markers)
    shutil.copy(space / "tiny.yaml", repo / "tiny.yaml")
    hyso("train", "tiny.yaml", "--runs-root", str(tmp_path / "runs"), cwd=repo).expect_ok()
    assert sorted(p.name for p in markers.iterdir()) == []
    manifest = json.loads((_the_run(tmp_path / "runs") / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["environment"]["git"]["dirty"] is False  # untracked files do not count


def test_sweep_runs_every_point_and_reports_the_failed_ones(space: Path, tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(
        f"_base_: {space / 'tiny.yaml'}\nsweep:\n  model.dim: [30, 32]\n"
        "  training.lr: [0.001, 1.0e+30]\n",
        encoding="utf-8",
    )
    result = hyso("sweep", str(config), "--runs-root", "runs", cwd=tmp_path)
    result.expect_error("3 of 4 points failed", "non-finite training loss")
    assert result.returncode == 1
    rows = result.stdout.strip().splitlines()[2:]
    assert len(rows) == 4
    assert [row.split()[-1] if row.endswith("ok") else "failed" for row in rows] == [
        "failed",
        "failed",
        "ok",
        "failed",
    ]
    assert "failed: " in rows[0] and "dim=32,lr=0.001" in rows[2]


@pytest.mark.parametrize(
    "override, needle",
    [
        ("training.epochs=0", "training.epochs"),
        ("training.precision=fp8", "training.precision"),
        ("training.log_every=0", "training.log_every"),
        ('data.name="\\ud800"', "lone surrogate"),
        ("data.paths=5", "data.paths"),
        ("training.device=cuda:7", "training.device"),
        ("training.lr=inf", "training.lr"),
        ("model.dim=1000000000", "model.dim=1000000000"),
    ],
)
def test_config_errors_are_one_line_before_any_run_folder(
    space: Path, tmp_path: Path, override: str, needle: str
) -> None:
    result = hyso("train", str(space / "tiny.yaml"), override, "--runs-root", "runs", cwd=tmp_path)
    result.expect_error(needle)
    assert result.returncode == 2
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_nan_loss_fails_the_run_and_keeps_the_checkpoint_before_it(
    space: Path, tmp_path: Path
) -> None:
    result = hyso(
        "train", str(space / "tiny.yaml"), "training.lr=1e30", "--runs-root", "runs", cwd=tmp_path
    )
    result.expect_error("non-finite training loss", "optimizer step")
    assert result.returncode == 2
    run_dir = _the_run(tmp_path / "runs")
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "failed"
    _latest_checkpoint_loads(run_dir)


def _latest_checkpoint_loads(run_dir: Path) -> None:
    """The run's newest checkpoint verifies against its record and loads."""
    folder = str(run_dir / "checkpoints")
    code = f"""
    from hyso.core.storage import CheckpointConfig, CheckpointManager
    manager = CheckpointManager(CheckpointConfig.from_dir(directory={folder!r}))
    newest = manager.list()[-1]
    print("loaded step", manager.load(newest.path).step)
    """
    run_probe(code).expect_ok("loaded step")


def _start_long_run(space: Path, runs: Path) -> subprocess.Popen[str]:
    argv = [str(space / "tiny.yaml"), "training.max_steps=100000", "training.epochs=1000"]
    return subprocess.Popen(
        [sys.executable, "-m", "hyso.core.train", "train", *argv, "--runs-root", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for_checkpoint(runs: Path, proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        records = list(runs.glob("*/checkpoints/*.pt.json"))
        if len(records) >= 2:
            return records[0].parent.parent
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no checkpoint appeared: {proc.communicate()[1][-2000:]}")


@pytest.mark.parametrize(
    "signals, code, word",
    [((signal.SIGTERM,), 143, "terminated"), ((signal.SIGINT, signal.SIGINT), 130, "interrupted")],
    ids=["sigterm", "double-ctrl-c"],
)
def test_a_signal_ends_the_run_in_one_line_with_its_checkpoint_intact(
    space: Path, tmp_path: Path, signals: tuple[signal.Signals, ...], code: int, word: str
) -> None:
    runs = tmp_path / "runs"
    proc = _start_long_run(space, runs)
    run_dir = _wait_for_checkpoint(runs, proc)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.01)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"hyso train: {word}" + (
        " (SIGTERM)" if word == "terminated" else ""
    )
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    _latest_checkpoint_loads(run_dir)


def test_environment_values_stay_out_of_every_run_file(space: Path, tmp_path: Path) -> None:
    secret = "hunter2-s3cr3t-value"
    config = tmp_path / "env.yaml"
    config.write_text(
        f"_base_: {space / 'tiny.yaml'}\ndata: {{name: '${{env:HYSO_TEST_SECRET}}'}}\n"
        "training: {extra: {url: 'https://user:${data.name}@example.com'}}\n",
        encoding="utf-8",
    )
    hyso(
        "train", str(config), "--runs-root", "runs", cwd=tmp_path, env={"HYSO_TEST_SECRET": secret}
    ).expect_ok()
    run_dir = _the_run(tmp_path / "runs")
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 6
    leaking = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaking == []
    assert "env:HYSO_TEST_SECRET" in (run_dir / "config.yaml").read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data"]["name"] == "${env:HYSO_TEST_SECRET}"
    # a value built from the environment keeps the environment reference, as config.yaml does
    url = "https://user:${env:HYSO_TEST_SECRET}@example.com"
    assert manifest["training"]["extra"]["url"] == url
    assert url in (run_dir / "config.yaml").read_text()


def test_run_files_follow_one_mode_policy(space: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    run_dir = _the_run(space / "runs")
    modes = {str(p.relative_to(run_dir)): p.stat().st_mode & 0o777 for p in run_dir.rglob("*")}
    files = {name: mode for name, mode in modes.items() if (run_dir / name).is_file()}
    assert {"config.yaml", "overrides.yaml", "manifest.json", "metrics.csv"} <= set(files)
    assert "artifacts/tokenizer.json" in files
    assert set(files.values()) == {0o666 & ~umask}, files


def _copy_run(space: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "runs" / _the_run(space / "runs").name
    shutil.copytree(_the_run(space / "runs"), run_dir)
    return run_dir


def test_generate_refuses_a_swapped_tokenizer(space: Path, tmp_path: Path) -> None:
    run_dir = _copy_run(space, tmp_path)
    tokenizer = run_dir / "artifacts" / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes().replace(b"\n", b"\n "))  # same tokens, new file
    hyso("generate", str(run_dir), cwd=tmp_path).expect_error("not the tokenizer", "SHA-256")


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_generate_refuses_a_non_finite_temperature(space: Path, tmp_path: Path, value: str) -> None:
    run_dir = _the_run(space / "runs")
    hyso("generate", str(run_dir), "--temperature", value, cwd=tmp_path).expect_error(
        "--temperature"
    )


def test_generate_names_a_config_without_model(space: Path, tmp_path: Path) -> None:
    run_dir = _copy_run(space, tmp_path)
    config = run_dir / "config.yaml"
    lines = config.read_text(encoding="utf-8").splitlines()
    start = lines.index("model:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    config.write_text("\n".join(lines[:start] + lines[end:]) + "\n", encoding="utf-8")
    hyso("generate", str(run_dir), cwd=tmp_path).expect_error("no model section")


@pytest.mark.parametrize(
    "row, needle",
    [
        ("inf,0,train,1.0,2.7,0.001,1,1,1", "step 'inf'"),
        ("1,0,train," + "9" * 200_000 + ",2.7,0.001,1,1,1", "200000 characters"),
    ],
    ids=["step-inf", "200kb-field"],
)
def test_a_damaged_metrics_file_breaks_neither_runs_nor_plot(
    space: Path, tmp_path: Path, row: str, needle: str
) -> None:
    good = _copy_run(space, tmp_path)
    bad = good.with_name("bad-run")
    shutil.copytree(good, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest.update(status="running", results={}, pid=10**30, run_id="bad-run")
    (bad / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    metrics = bad / "metrics.csv"
    header = metrics.read_text(encoding="utf-8").splitlines()[:2]
    metrics.write_text("\n".join([*header, row]) + "\n", encoding="utf-8")
    listing = hyso("runs", str(tmp_path / "runs"), cwd=tmp_path).expect_ok(good.name)
    assert "bad-run" in listing.stdout
    hyso("plot", str(bad), cwd=tmp_path).expect_error("line 3", needle)
    hyso("plot", str(good), cwd=tmp_path).expect_ok("saved")
