"""The run folder tells the story: config, manifest (running -> finished/failed), checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from train_helpers import TinyLM, loader, token_data

from hyso.core.config import load_config, load_config_with_overrides
from hyso.core.storage import (
    CheckpointConfig,
    CheckpointManager,
    Manifest,
    RunPaths,
    load_manifest,
    save_manifest,
)
from hyso.core.train import Callback, NonFiniteLossError, Trainer


@pytest.fixture
def paths(tmp_path) -> RunPaths:
    return RunPaths.for_run_dir(tmp_path / "20260101-000000-000000-abcdef").ensure_dirs()


def _cfg(tmp_path):
    f = tmp_path / "cfg.yaml"
    f.write_text("model: {dim: 8}\ntraining: {lr: 0.1, log_every: 2, epochs: 2}\ndata: {name: t}\n")
    return load_config_with_overrides(path=str(f), override_pairs=["training.lr=0.2"])


def test_config_and_manifest_written_and_finished(tmp_path, paths) -> None:
    cfg = _cfg(tmp_path)
    model = TinyLM()
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.2),
        config=cfg,
        run_paths=paths,
        progress_bar=False,
    )
    history = t.fit(loader(token_data(n=16)), loader(token_data(n=8)))  # epochs from config
    assert len(history) == 2
    assert load_config(paths.config_path).to_dict() == cfg.to_dict()
    assert "training.lr=0.2" in (paths.run_dir / "overrides.yaml").read_text()
    m = load_manifest(paths.manifest_path)
    assert m.status == "finished" and m.finished_at
    assert m.training["lr"] == 0.2 and m.data == {"name": "t"}
    assert m.results["global_step"] == 4 and m.results["val_loss"] == history[-1]["val_loss"]
    assert m.extra["trainer"]["settings"]["log_every"] == 2
    assert len(list(paths.checkpoints_dir.glob("*.pt"))) == 2
    assert (paths.logs_dir).exists()


def test_an_existing_manifest_is_updated_not_replaced(paths) -> None:
    save_manifest(
        paths.manifest_path, Manifest.new(run_id=paths.run_id, data={"name": "mine"}, note="kept")
    )
    model = TinyLM()
    Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), run_paths=paths, progress_bar=False
    ).fit(loader(token_data(n=8)), epochs=1)
    m = load_manifest(paths.manifest_path)
    assert m.extra["note"] == "kept" and m.data == {"name": "mine"}
    assert m.status == "finished"


class _NanAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_start(self, trainer) -> None:
        if trainer.global_step + 1 == self.step:
            with torch.no_grad():
                trainer.model.out.bias.fill_(float("inf"))


def test_nan_fails_the_run_and_keeps_the_last_good_checkpoint(paths) -> None:
    model = TinyLM()
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=paths.checkpoints_dir))
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        run_paths=paths,
        checkpoint_manager=manager,
        callbacks=[_NanAt(5)],
        save_every=2,
        log_every=3,
        progress_bar=False,
    )
    with pytest.raises(NonFiniteLossError, match="step 5"):
        t.fit(loader(token_data(n=80)), epochs=1)
    m = load_manifest(paths.manifest_path)
    assert m.status == "failed" and "NonFiniteLossError" in m.results["error"]
    latest = manager.load_latest()
    assert latest is not None and latest.step == 4
    assert all(torch.isfinite(v).all() for v in latest.model_state.values())


def test_resume_from_an_explicit_checkpoint_path(paths) -> None:
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    t = Trainer(model, opt, run_paths=paths, save_every=1, progress_bar=False)
    t.fit(loader(token_data(n=24)), epochs=1)
    first, second = sorted(paths.checkpoints_dir.glob("*.pt"))[:2]
    at_step_2 = torch.load(second, weights_only=True)["model"]
    model2 = TinyLM()
    t2 = Trainer(
        model2,
        torch.optim.SGD(model2.parameters(), lr=0.1),
        run_paths=paths,
        progress_bar=False,
        max_steps=2,
        checkpoint_manager=CheckpointManager(
            CheckpointConfig.from_dir(directory=paths.run_dir / "again")
        ),
    )
    t2.fit(loader(token_data(n=24)), epochs=1, resume=str(first))
    assert t2.global_step == 2  # one step after the restored position
    assert math.isfinite(t2.history[0]["train_loss"])
    for key, value in model2.state_dict().items():
        assert torch.equal(value, at_step_2[key]), key


def test_checkpoint_from_elsewhere_without_trainer_state_is_refused(paths, tmp_path) -> None:
    model = TinyLM()
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=tmp_path / "other"))
    manager.save(0, model, step=1)
    t = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        run_paths=paths,
        checkpoint_manager=manager,
        progress_bar=False,
    )
    with pytest.raises(ValueError, match="no trainer state"):
        t.fit(loader(token_data(n=8)), epochs=1, resume="latest")
