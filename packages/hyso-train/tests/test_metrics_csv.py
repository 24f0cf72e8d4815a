"""metrics.csv: header once, whole lines only, repair of partial tails, resume cut."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from train_helpers import TinyLM, loader, token_data

from hyso.core.storage import RunPaths
from hyso.core.train import CSVMetricsLogger, Trainer, read_metrics
from hyso.core.train.metrics import COLUMNS, MetricsFileError

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 10**9), finite, st.one_of(st.none(), finite)), max_size=20
    ),
    junk=st.binary(max_size=40).filter(lambda b: b"\n" not in b),
)
def test_rows_round_trip_and_a_partial_tail_is_cut(tmp_path_factory, rows, junk) -> None:
    path = tmp_path_factory.mktemp("m") / "metrics.csv"
    log = CSVMetricsLogger(path)
    log.open()
    for step, loss, lr in rows:
        log.write_row(step=step, epoch=0, split="train", loss=loss, lr=lr)
    log.close()
    with open(path, "ab") as f:
        f.write(junk)  # what a writer killed mid-row would leave
    reopened = CSVMetricsLogger(path)
    reopened.open()
    reopened.write_row(step=1, epoch=1, split="val", loss=0.5)
    reopened.close()
    back = read_metrics(path)
    assert [(r["step"], r["loss"], r["lr"]) for r in back[:-1]] == rows
    assert back[-1]["split"] == "val" and back[-1]["loss"] == 0.5
    text = path.read_text()
    assert text.count(",".join(COLUMNS)) == 1 and text.endswith("\n")


def test_resume_state_cuts_rows_written_after_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    log = CSVMetricsLogger(path)
    for step in range(3):
        log.write_row(step=step, epoch=0, split="train", loss=1.0)
    state = log.state_dict()
    for step in range(3, 6):
        log.write_row(step=step, epoch=0, split="train", loss=1.0)
    log.close()
    resumed = CSVMetricsLogger(path)
    resumed.load_state_dict(state)
    resumed.open()
    resumed.close()
    assert [r["step"] for r in read_metrics(path)] == [0, 1, 2]


def test_a_foreign_file_is_refused(tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(MetricsFileError, match="not a hyso metrics file"):
        CSVMetricsLogger(path).open()


def test_unknown_column_is_an_error(tmp_path) -> None:
    log = CSVMetricsLogger(tmp_path / "m.csv")
    with pytest.raises(ValueError, match="unknown metrics column"):
        log.write_row(step=1, accuracy=0.5)
    log.close()


def test_trainer_writes_train_and_val_rows(tmp_path) -> None:
    paths = RunPaths.for_run_dir(tmp_path / "run").ensure_dirs()
    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        run_paths=paths,
        log_every=2,
        eval_every=3,
        progress_bar=False,
    )
    t.fit(loader(token_data(n=48)), loader(token_data(n=16)), epochs=1)  # 6 steps
    rows = read_metrics(paths.metrics_path)
    assert [(r["step"], r["split"]) for r in rows] == [
        (2, "train"),
        (3, "val"),
        (4, "train"),
        (6, "val"),
        (6, "train"),
    ]
    for r in rows:
        assert r["epoch"] == 0 and r["loss"] > 0 and r["lr"] == 0.1
        assert math.isclose(r["ppl"], math.exp(r["loss"]), rel_tol=1e-9)
    assert rows[3]["loss"] == t.history[-1]["val_loss"]


def test_train_rows_equal_write_row_and_reach_listeners(tmp_path) -> None:
    class At:
        global_step, epoch = 40, 2

    metrics = {"loss": 2.5, "lr": 1e-3, "tokens_per_s": 1234.5, "grad_norm": None}
    metrics["elapsed_s"] = 0.25
    fast, slow = CSVMetricsLogger(tmp_path / "a.csv"), CSVMetricsLogger(tmp_path / "b.csv")
    seen: list[dict] = []
    fast.add_listener(seen.append)
    fast.on_step_end(At(), metrics)
    fast.on_step_end(At(), {})  # not a logging step: no row
    slow.write_row(split="train", step=40, epoch=2, ppl=math.exp(2.5), **metrics)
    fast.close()
    slow.close()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert fast.rows == slow.rows == 1
    assert seen == read_metrics(tmp_path / "a.csv")
    assert list(seen[0]) == list(COLUMNS)
