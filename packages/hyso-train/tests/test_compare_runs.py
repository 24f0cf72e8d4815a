"""Comparing runs: ``hyso runs`` shows what differs beside the final metrics, sorts,
filters and prints JSON; ``hyso plot`` overlays several runs with a legend naming what
differs between them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from hyso.core.train.cli import main
from hyso.core.train.commands.plot import plot_comparison
from hyso.core.train.commands.runs import differing_keys, read_run, run_label

HEADER = (
    "# hyso-metrics format_version=1\n"
    "step,epoch,split,loss,ppl,lr,tokens_per_s,grad_norm,elapsed_s\n"
)


def _run(root: Path, run_id: str, *, lr: float, dim: int, losses, status="finished", when=0):
    """A run folder with a manifest (model.dim, training.lr) and metrics rows: a train
    and a val row per entry of ``losses`` (train loss, val loss) every 10 steps."""
    from hyso.core.storage import Manifest, save_manifest

    manifest = Manifest.new(
        run_id=run_id,
        model={"name": "decoder_only", "dim": dim, "layers": 2},
        training={"lr": lr, "seed": 1},
        # hyso train's record of the data (file hashes, paths) is not a hyperparameter
        data={"name": "python-stdlib", "fingerprint": {"root": f"/{run_id}"}, "val_bytes": when},
        trainer={"settings": {"lr": 0.001, "seed": 0, "log_every": 10, "progress_bar": True}},
    )
    manifest.created_at = f"2026-01-0{when + 1}T00:00:00Z"
    manifest.status = status
    if status == "finished":
        manifest.results = {
            "global_step": 10 * len(losses),
            "best_val_loss": min(v for _, v in losses),
        }
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    save_manifest(run_dir / "manifest.json", manifest)
    lines = [HEADER]
    for i, (train, val) in enumerate(losses, 1):
        lines.append(f"{10 * i},0,train,{train},1.0,{lr},100.0,1.0,{i}.0\n")
        lines.append(f"{10 * i},0,val,{val},1.0,{lr},100.0,,{i}.5\n")
    (run_dir / "metrics.csv").write_text("".join(lines), encoding="utf-8")
    return run_dir


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    _run(root, "a", lr=0.01, dim=64, losses=[(3.0, 3.1), (2.0, 2.5)], when=0)
    _run(root, "b", lr=0.001, dim=64, losses=[(3.0, 3.2), (2.5, 2.2)], when=1)
    _run(root, "c", lr=0.003, dim=128, losses=[(3.1, 3.3)], status="failed", when=2)
    return root


def _table(out: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    lines = out.strip().splitlines()
    header = [h.strip() for h in lines[0].split("  ") if h.strip()]
    rows = {}
    for line in lines[2:]:
        cells = line.split()
        rows[cells[0]] = cells
    return header, rows


def test_runs_shows_only_the_differing_hyperparameters_beside_final_losses(root, capsys):
    assert main(["runs", str(root)]) == 0
    header, rows = _table(capsys.readouterr().out)
    assert header == [
        "id", "created", "model", "params", "model.dim", "training.lr",
        "train loss", "val loss", "steps", "best val loss", "status",
    ]  # fmt: skip
    # training.seed is 1 in all three, log_every the same: not shown
    assert rows["a"][5:9] == ["64", "0.01", "2.0000", "2.5000"]
    assert rows["b"][5:9] == ["64", "0.001", "2.5000", "2.2000"]
    assert rows["c"][5:7] == ["128", "0.003"] and rows["c"][-1] == "failed"


def test_runs_sorts_filters_and_prints_json(root, capsys):
    assert main(["runs", str(root), "--sort", "val_loss"]) == 0
    assert list(_table(capsys.readouterr().out)[1]) == ["b", "a", "c"]
    assert main(["runs", str(root), "--sort", "val_loss", "--desc"]) == 0
    assert list(_table(capsys.readouterr().out)[1]) == ["c", "a", "b"]
    assert main(["runs", str(root), "--where", "training.lr<0.005"]) == 0
    assert sorted(_table(capsys.readouterr().out)[1]) == ["b", "c"]
    assert main(["runs", str(root), "--where", "training.lr<0.01", "--status", "finished"]) == 0
    header, rows = _table(capsys.readouterr().out)
    assert list(rows) == ["b"] and "training.lr" not in header  # one run: nothing differs
    assert main(["runs", str(root), "--where", "model.dim=128", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data] == ["c"]
    assert main(["runs", str(root), "--json", "--sort", "training.lr"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in data] == ["b", "c", "a"]
    assert data[2]["differing"] == {"model.dim": 64, "training.lr": 0.01}
    assert data[2]["metrics"]["val_loss"] == 2.5 and data[2]["metrics"]["steps"] == 20
    assert data[2]["hyperparameters"]["training.seed"] == 1
    assert data[2]["hyperparameters"]["training.log_every"] == 10
    assert "training.progress_bar" not in data[2]["hyperparameters"]
    assert data[2]["status"] == "finished" and data[2]["run_dir"] == str(root / "a")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--where", "training.lr"], "expected KEY OP VALUE"),
        (["--where", "training.lrr<1"], "did you mean 'training.lr'"),
        (["--sort", "val_los"], "did you mean 'val_loss'"),
    ],
)
def test_runs_bad_sort_or_where_is_one_line(root, capsys, argv, needle):
    assert main(["runs", str(root), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_labels_name_what_differs(root):
    infos = [read_run(root / r) for r in ("a", "b")]
    differing = differing_keys([i.hyperparameters for i in infos])
    assert differing == ["training.lr"]
    assert [run_label(i, differing) for i in infos] == ["training.lr=0.01", "training.lr=0.001"]
    assert run_label(infos[0], []) == "a"


def test_plot_overlays_several_runs_with_a_legend_of_what_differs(root, capsys, monkeypatch):
    import matplotlib.figure

    legends: list[list[str]] = []
    original = matplotlib.figure.Figure.savefig

    def savefig(self, *args, **kwargs):
        legends.append([t.get_text() for t in self.axes[0].get_legend().get_texts()])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    assert main(["plot", str(root / "a"), str(root / "b"), str(root / "c")]) == 0
    png = root / "compare.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out
    assert legends[-1] == [
        "model.dim=64, training.lr=0.01",
        "model.dim=64, training.lr=0.001",
        "model.dim=128, training.lr=0.003",
    ]
    out = root.parent / "two.png"
    plot_comparison([root / "a", root / "a"], out)  # the same run twice: named by id
    assert legends[-1] == ["a: a", "a: a"]
    assert main(["plot", str(root / "a"), str(root / "b"), "-o", str(root / "x.jpg")]) == 2


def test_sweep_ends_with_the_comparison_of_its_runs(root, tmp_path, capsys, monkeypatch):
    from hyso.core.train.commands import sweep
    from hyso.core.train.commands.train import TrainOutcome

    made = iter([root / "a", root / "b"])

    def fake_train(cfg, **kwargs):  # the points' runs are the fixture's a and b
        run_dir = next(made)
        return TrainOutcome(run_dir, run_dir.name, 2.0, None, 1.0, 20, 10, 1.0, None)

    monkeypatch.setattr(sweep, "train_from_config", fake_train)
    config = tmp_path / "sweep.yaml"
    config.write_text("training:\n  lr: 0.1\nsweep:\n  training.lr: [0.01, 0.001]\n")
    assert main(["sweep", str(config)]) == 0
    captured = capsys.readouterr()
    header, rows = _table(captured.out)
    assert header[:5] == ["point", "label", "training.lr", "train loss", "val loss"]
    assert rows["1"][2:5] == ["0.01", "2.0000", "2.5000"]
    assert rows["2"][2:5] == ["0.001", "2.5000", "2.2000"]
    png = root / "a" / "artifacts" / "sweep.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"comparison plot {png}" in captured.err


def test_a_run_with_validation_rows_only_is_named_in_the_legend(tmp_path, monkeypatch):
    import matplotlib.figure

    root = tmp_path / "runs"
    for run_id, lr in (("x", 0.1), ("y", 0.2)):
        run_dir = _run(root, run_id, lr=lr, dim=8, losses=[(3.0, 3.1)])
        text = (run_dir / "metrics.csv").read_text()
        (run_dir / "metrics.csv").write_text(
            "".join(line for line in text.splitlines(True) if ",train," not in line)
        )
    legends = []
    original = matplotlib.figure.Figure.savefig

    def savefig(self, *args, **kwargs):
        legends.append([t.get_text() for t in self.axes[0].get_legend().get_texts()])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "No artists with labels" warning
        plot_comparison([root / "x", root / "y"], tmp_path / "v.png")
    assert legends == [["training.lr=0.1", "training.lr=0.2"]]


def test_runs_that_no_run_matches(root, capsys):
    assert main(["runs", str(root), "--where", "training.lr>1"]) == 0
    assert capsys.readouterr().out.strip() == f"no runs under {root} match --where / --status"
    assert main(["runs", str(root), "--status", "running", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
