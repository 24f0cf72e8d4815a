"""The ``finetune`` section and LoRA checkpoints through the Trainer."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from hyso.core.models import HysoDecoderOnly
from hyso.core.models.lora import LoRASettings, apply_lora, is_lora_key, lora_state_dict
from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths
from hyso.core.train import Trainer
from hyso.core.train.errors import TrainingConfigError
from hyso.core.train.finetune import (
    AdapterCheckpoint,
    apply_finetune,
    check_checkpoint_fits,
    checkpoint_extra,
    finetune_line,
)
from hyso.core.train.run_config import FinetuneSettings, load_run_config

VOCAB = 29


def _model(lora: LoRASettings | None) -> HysoDecoderOnly:
    torch.manual_seed(0)
    model = HysoDecoderOnly(dim=16, num_layers=1, vocab_size=VOCAB, num_heads=2, max_seq_len=8)
    return model if lora is None else apply_lora(model, lora)


def _loader(seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, VOCAB, (16, 8), generator=g)
    return DataLoader(TensorDataset(x[:, :-1], x[:, 1:]), batch_size=4)


def _trainer(run_dir, model) -> Trainer:
    paths = RunPaths.for_run_dir(run_dir).ensure_dirs()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=paths.checkpoints_dir))
    return Trainer(
        model=model,
        optimizer=opt,
        run_paths=paths,
        checkpoint_manager=manager,
        progress_bar=False,
        device="cpu",
        seed=0,
        log_every=1,
    )


def test_the_section_is_checked_with_the_key_named() -> None:
    assert load_run_config({}).finetune == FinetuneSettings()
    assert load_run_config({"finetune": {"lora": None}}).finetune.lora is None
    got = load_run_config({"finetune": {"lora": {"r": 4, "targets": ["out", "q"]}}})
    assert got.finetune.lora == LoRASettings(r=4, targets=("q", "out"))
    with pytest.raises(TrainingConfigError, match=r"unknown key finetune\.lorra; did you mean"):
        load_run_config({"finetune": {"lorra": {}}})
    with pytest.raises(TrainingConfigError, match=r"finetune\.lora\.r must be .*got -1"):
        load_run_config({"finetune": {"lora": {"r": -1}}})
    with pytest.raises(TrainingConfigError, match=r"unknown target 'c_attn'; valid: q, k"):
        load_run_config({"finetune": {"lora": {"targets": ["c_attn"]}}})
    with pytest.raises(TrainingConfigError, match=r"unknown section 'fine_tune'"):
        load_run_config({"fine_tune": {}})


def test_apply_finetune_freezes_the_base_and_names_the_share() -> None:
    model = apply_finetune(_model(None), FinetuneSettings(lora=LoRASettings(r=2)))
    line = finetune_line(model)
    assert line is not None and line.startswith("LoRA r=2 on q, v: trainable ")
    assert finetune_line(_model(None)) is None
    assert apply_finetune(_model(None), FinetuneSettings()).num_parameters(True) > 0
    gelu = HysoDecoderOnly(dim=16, num_layers=1, vocab_size=VOCAB, num_heads=2, mlp="gelu")
    with pytest.raises(TrainingConfigError, match=r"finetune\.lora: .*gate match no projection"):
        apply_finetune(gelu, FinetuneSettings(lora=LoRASettings(targets=("gate",))))


def test_trainer_checkpoints_adapters_and_resumes_only_into_matching_ones(tmp_path) -> None:
    settings = LoRASettings(r=2, targets=("q", "v", "down"))
    trainer = _trainer(tmp_path / "run", _model(settings))
    trainer.fit(train_loader=_loader(), val_loader=_loader(1), epochs=1)
    trainer.checkpoint_manager.wait()
    ckpt = trainer.checkpoint_manager.load_latest()
    assert ckpt.model_state and all(is_lora_key(k) for k in ckpt.model_state)
    assert ckpt.extra["lora"] == settings.to_dict() == checkpoint_extra(trainer.model)["lora"]
    trained = lora_state_dict(trainer.model)
    # A fresh LoRA model resumes the adapters (and nothing else) from the checkpoint.
    again = _trainer(tmp_path / "run", _model(settings))
    again._restore("latest")
    assert all(torch.equal(trained[k], v) for k, v in lora_state_dict(again.model).items())
    with pytest.raises(TrainingConfigError, match=r"holds LoRA adapters .* has no adapters"):
        _trainer(tmp_path / "run", _model(None))._restore("latest")
    other = _trainer(tmp_path / "run", _model(LoRASettings(r=4, targets=("q", "v", "down"))))
    with pytest.raises(TrainingConfigError, match=r"'r': 2.*'r': 4"):
        other._restore("latest")


def test_a_full_checkpoint_is_refused_for_a_lora_model(tmp_path) -> None:
    with pytest.raises(TrainingConfigError, match=r"holds a full model .* has LoRA adapters"):
        check_checkpoint_fits("ckpt.pt", {}, _model(LoRASettings()))
    check_checkpoint_fits("ckpt.pt", {}, _model(None))  # full into full: fine


def test_adapter_checkpoint_holds_and_restores_the_adapters_only() -> None:
    model = _model(LoRASettings(r=2))
    view = AdapterCheckpoint(model)
    state = view.state_dict()
    assert set(state) == set(lora_state_dict(model)) and not list(view.children())
    changed = {k: torch.ones_like(v) for k, v in state.items()}
    view.load_state_dict(changed)
    assert all(torch.equal(v, changed[k]) for k, v in lora_state_dict(model).items())
