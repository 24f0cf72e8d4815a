"""The trainer's own state (position, loss sums) round-trips through state_dict, and one
RunRecord is the only writer of manifest.json."""

from __future__ import annotations

import math

import pytest
import torch
from train_helpers import TinyLM, loader, token_data

from hyso.core.storage import RunPaths, load_manifest
from hyso.core.train import NonFiniteLossError, Trainer
from hyso.core.train.distributed import DistContext
from hyso.core.train.loss_tracker import LossTracker


def test_loss_tracker_folds_and_round_trips() -> None:
    t = LossTracker()
    for value in (1.0, 2.0, 4.0):
        t.pending.append(torch.tensor(value))
        t.tokens += 10
    t.mark_step(1)
    t.fold(DistContext(), step=1, epoch=0)
    assert (t.window_sum, t.window_count, t.window_tokens) == (7.0, 3, 30)
    assert t.epoch_mean() == pytest.approx(7 / 3) and t.pending == []
    other = LossTracker()
    other.pending.append(torch.tensor(9.0))  # dropped by the load: it was never folded
    other.load_state_dict(t.state_dict())
    assert other.state_dict() == t.state_dict() and other.pending == []
    assert other.window_mean() == t.window_mean()


def test_loss_tracker_names_the_step_of_a_non_finite_loss() -> None:
    t = LossTracker()
    t.pending.append(torch.tensor(1.0))
    t.mark_step(7)
    t.pending.append(torch.tensor(math.inf))
    t.mark_step(8)
    with pytest.raises(NonFiniteLossError) as err:
        t.fold(DistContext(), step=8, epoch=2)
    assert (err.value.step, err.value.epoch, err.value.loss) == (8, 2, math.inf)


def test_loss_tracker_sums_cpu_losses_exactly_rounded() -> None:
    # 2**24 + 1 + 1 is not a float32; summed one by one in float32 it would lose both
    # ones; the fold keeps them (an exactly rounded float64 sum of the float32 values)
    t = LossTracker()
    for value in (2.0**24, 1.0, 1.0, 0.1):
        t.pending.append(torch.tensor(value, dtype=torch.float32))
    t.fold(DistContext(), step=1, epoch=0)
    expected = math.fsum([2.0**24, 1.0, 1.0, float(torch.tensor(0.1, dtype=torch.float32))])
    assert t.window_sum == expected == 2.0**24 + 2 + float(torch.tensor(0.1))
    assert (t.window_count, t.epoch_count) == (4, 4)


def test_loss_tracker_opposite_infinities_are_a_non_finite_loss() -> None:
    t = LossTracker()
    t.pending.append(torch.tensor(math.inf))
    t.mark_step(3)
    t.pending.append(torch.tensor(-math.inf))
    t.mark_step(4)
    with pytest.raises(NonFiniteLossError) as err:
        t.fold(DistContext(), step=4, epoch=1)
    assert (err.value.step, err.value.epoch, err.value.loss) == (3, 1, math.inf)
    assert t.window_count == 0  # nothing folded


def _trainer(**kw) -> Trainer:
    torch.manual_seed(0)
    model = TinyLM()
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress_bar=False, **kw)


def test_trainer_state_dict_round_trips_into_a_fresh_trainer() -> None:
    first = _trainer(log_every=4)
    first.fit(loader(token_data(n=40)), loader(token_data(n=8, seed=3)), epochs=2)
    state = first.state_dict()
    second = _trainer(log_every=4)
    second.load_state_dict(state)
    assert (second.epoch, second.global_step, second.seed) == (1, first.global_step, first.seed)
    assert second.history == first.history and second.best_val_loss == first.best_val_loss
    assert second.losses.state_dict() == first.losses.state_dict()
    assert second.state_dict()["epoch_sums"] == state["epoch_sums"]
    with pytest.raises(ValueError, match="format_version"):
        second.load_state_dict({**state, "format_version": 99})


def test_one_record_writes_the_manifest_at_start_and_end(tmp_path, monkeypatch) -> None:
    import hyso.core.train.run_record as run_record

    writes: list[str] = []
    real = run_record.save_manifest

    def counting(path, manifest):
        writes.append(manifest.status)
        return real(path, manifest)

    monkeypatch.setattr(run_record, "save_manifest", counting)
    paths = RunPaths.for_run_dir(tmp_path / "run").ensure_dirs()
    trainer = _trainer(run_paths=paths)
    trainer.fit(loader(token_data(n=16)), loader(token_data(n=8, seed=3)), epochs=1)
    assert writes == ["running", "finished"]
    trainer.run_record.add_results({"note": 1.5}, if_missing={"global_step": -1})
    m = load_manifest(paths.manifest_path)
    assert writes == ["running", "finished", "finished"]
    assert m.results["note"] == 1.5 and m.results["global_step"] == trainer.global_step


def test_the_tokenizer_given_is_saved_in_the_run_folder(tmp_path) -> None:
    class _Tok:
        def save(self, path: str) -> None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write('{"tok": 1}')

    paths = RunPaths.for_run_dir(tmp_path / "run").ensure_dirs()
    _trainer(run_paths=paths, tokenizer=_Tok()).fit(loader(token_data(n=16)), epochs=1)
    assert paths.tokenizer_path.read_text(encoding="utf-8") == '{"tok": 1}'
