"""The ``hyso`` command line in-process: help, one-line errors, ``runs`` and ``plot``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hyso.core.train.cli import main

COMMANDS = ["train", "generate", "runs", "sweep", "plot"]
METRICS = """# hyso-metrics format_version=1
step,epoch,split,loss,ppl,lr,tokens_per_s,grad_norm,elapsed_s
10,0,train,5.0,148.4,0.001,1000,1.0,1.0
20,0,train,4.0,54.6,0.002,1000,1.0,2.0
20,0,val,4.5,90.0,0.002,,,2.5
30,0,train,3.5,33.1,0.001,1000,1.0,3.0
30,0,val,4.25,70.1,0.001,,,3.5
"""


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hyso {command}")


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        ([], "required"),
        (["bogus"], "invalid choice"),
        (["train"], "config"),
        (["generate", "x", "--max-new-tokens", "many"], "invalid int value"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert needle in line


def test_missing_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["train", str(missing)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"hyso train: error: config file {missing} does not exist"


@pytest.mark.parametrize("command", ["generate", "plot"])
def test_missing_run_folder_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, str(tmp_path / "gone")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "gone does not exist" in line


def test_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    assert "is not a run folder" in _one_error_line(capsys.readouterr().err)


def _write_run(root: Path, run_id: str, **fields: object) -> Path:
    from hyso.core.storage import Manifest, save_manifest

    manifest = Manifest.new(
        run_id=run_id,
        model={"name": fields.pop("model_name", "decoder_only")},
        training={"lr": 0.001},
        data={"name": "python-stdlib"},
        num_parameters=fields.pop("num_parameters", 1_234_567),
    )
    for key, value in fields.items():
        setattr(manifest, key, value)
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    save_manifest(run_dir / "manifest.json", manifest)
    return run_dir


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_table_shows_each_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = socket.gethostname()
    _write_run(
        tmp_path,
        "a-finished",
        status="finished",
        results={"global_step": 300, "best_val_loss": 2.3456},
    )
    _write_run(tmp_path, "b-failed", status="failed", results={"global_step": 12})
    _write_run(tmp_path, "c-killed", status="running", pid=_dead_pid(), hostname=host)
    _write_run(tmp_path, "d-running", status="running", pid=os.getpid(), hostname=host)
    _write_run(tmp_path, "e-elsewhere", status="running", pid=_dead_pid(), hostname="elsewhere")
    assert main(["runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["id", "created"]
    by_id = {line.split()[0]: line.split() for line in lines[2:]}
    assert by_id["a-finished"][-1] == "finished"
    assert by_id["a-finished"][-3:-1] == ["300", "2.3456"]
    assert "1.23M" in by_id["a-finished"]
    assert "decoder_only" in by_id["a-finished"]
    assert by_id["b-failed"][-1] == "failed"
    assert by_id["c-killed"][-1] == "killed"
    assert by_id["d-running"][-1] == "running"
    assert by_id["e-elsewhere"][-1] == "running"


def test_runs_falls_back_to_metrics_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _write_run(tmp_path, "r1", status="finished")
    (run_dir / "metrics.csv").write_text(METRICS, encoding="utf-8")
    assert main(["runs", str(tmp_path)]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[-3:] == ["30", "4.2500", "finished"]


def test_runs_shows_a_damaged_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_run(tmp_path, "good", status="finished")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{truncated", encoding="utf-8")
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "good" in out


def test_runs_on_an_empty_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(tmp_path)]) == 0
    assert "no runs under" in capsys.readouterr().out


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib  # noqa: F401  (in the test extra: its absence is an error, not a skip)

    run_dir = _write_run(tmp_path, "r1", status="finished")
    (run_dir / "metrics.csv").write_text(METRICS, encoding="utf-8")
    assert main(["plot", str(run_dir)]) == 0
    png = run_dir / "artifacts" / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out
    out = tmp_path / "custom.png"
    assert main(["plot", str(run_dir), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    run_dir = _write_run(tmp_path, "r1", status="finished")
    (run_dir / "metrics.csv").write_text(METRICS, encoding="utf-8")
    assert main(["plot", str(run_dir)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert 'pip install "hyso-train[full]"' in line


def test_plot_of_a_run_without_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _write_run(tmp_path, "r1", status="running")
    assert main(["plot", str(run_dir)]) == 2
    assert "metrics.csv does not exist" in _one_error_line(capsys.readouterr().err)
