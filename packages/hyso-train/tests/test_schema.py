"""One schema for every setting a run reads: unknown keys in a file or an override are
errors naming the file or override, the key and the closest known key; own keys live
under training.extra; the README's reference is generated from the schema."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from train_helpers import TinyLM

from hyso.core.config import load_config_with_overrides
from hyso.core.train import Trainer, TrainingConfigError
from hyso.core.train.cli import main
from hyso.core.train.run_config import DataSettings, load_run_config
from hyso.core.train.settings import COMMAND_ONLY_KEYS, TrainingSettings
from hyso.core.train.settings_doc import SCHEMAS, field_docs, settings_reference

CONFIG = """model: {name: decoder_only, dim: 16, layers: 1, num_heads: 2, max_seq_len: 8}
training:
  lr: 0.003
  warmup_step: 30
  max_steps: 2
data:
  name: python-stdlib
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "typo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_typo_in_the_file_names_the_file_the_key_and_the_closest_key(tmp_path: Path) -> None:
    path = _write(tmp_path, CONFIG)
    cfg = load_config_with_overrides(path=str(path), override_pairs=[])
    with pytest.raises(TrainingConfigError) as err:
        load_run_config(cfg)
    message = str(err.value)
    assert f"config file {path}" in message
    assert "training.warmup_step;" in message
    assert "did you mean 'training.warmup_steps'" in message


def test_hyso_train_refuses_a_file_typo_before_creating_a_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, CONFIG)
    root = tmp_path / "runs"
    assert main(["train", str(path), "--runs-root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyso train: error: config file")
    assert "warmup_step" in err and "'training.warmup_steps'" in err
    assert not root.exists()


def test_a_typo_in_an_override_names_the_override(tmp_path: Path) -> None:
    path = _write(tmp_path, CONFIG.replace("  warmup_step: 30\n", ""))
    cfg = load_config_with_overrides(path=str(path), override_pairs=["+data.vocab_sise=512"])
    with pytest.raises(TrainingConfigError) as err:
        load_run_config(cfg)
    message = str(err.value)
    assert "override '+data.vocab_sise=512'" in message and str(path) in message
    assert "unknown key data.vocab_sise" in message
    assert "did you mean 'data.vocab_size'" in message


def test_an_unknown_section_is_refused_with_the_closest_section() -> None:
    with pytest.raises(TrainingConfigError, match=r"unknown section 'trainng'.*'training'"):
        load_run_config({"trainng": {"lr": 0.1}})


def test_declared_extra_keys_are_kept_and_unchecked(tmp_path: Path) -> None:
    text = CONFIG.replace("  warmup_step: 30\n", "  extra: {my_schedule: wsd, my_list: [1, 2]}\n")
    cfg = load_config_with_overrides(path=str(_write(tmp_path, text)), override_pairs=[])
    checked = load_run_config(cfg)
    assert checked.training.extra == {"my_schedule": "wsd", "my_list": [1, 2]}
    assert checked.training.lr == 0.003 and checked.training.max_steps == 2
    model = TinyLM()
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), config=cfg)
    assert trainer.settings.extra["my_schedule"] == "wsd"


def test_the_trainer_refuses_an_undeclared_key_in_config_training() -> None:
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingConfigError) as err:
        Trainer(model, opt, config={"training": {"log_evry": 5}})
    assert "training.log_evry" in str(err.value)
    assert "did you mean 'training.log_every'" in str(err.value)
    assert "training.extra" in str(err.value)


def test_keys_only_hyso_train_reads_are_refused_as_trainer_keywords() -> None:
    model = TinyLM()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingConfigError, match=r"does not read \['lr'\]"):
        Trainer(model, opt, lr=0.1)
    names = {f.name for f in dataclasses.fields(TrainingSettings)}
    assert names >= COMMAND_ONLY_KEYS


@pytest.mark.parametrize(
    ("section", "values", "needle"),
    [
        ("training", {"betas": [0.9]}, "training.betas"),
        ("training", {"min_lr_ratio": 2}, "training.min_lr_ratio"),
        ("training", {"num_threads": 0}, "training.num_threads"),
        ("training", {"warmup_steps": -1}, "training.warmup_steps"),
        ("training", {"extra": [1]}, "training.extra"),
        ("data", {"vocab_size": 100}, "data.vocab_size"),
        ("data", {"val_fraction": 1.5}, "data.val_fraction"),
        ("data", {"mask_prob": 0}, "data.mask_prob"),
        ("run", {"root": ""}, "run.root"),
    ],
)
def test_bad_values_name_the_key_and_value(section: str, values: dict, needle: str) -> None:
    with pytest.raises(TrainingConfigError) as err:
        load_run_config({section: values})
    assert needle in str(err.value)
    assert repr(next(iter(values.values()))) in str(err.value)


def test_defaults_of_the_data_schema_are_what_the_corpus_reader_uses() -> None:
    from hyso.core.train.commands._lm_data import DEFAULT_VOCAB_SIZE

    assert DataSettings().vocab_size == DEFAULT_VOCAB_SIZE
    assert load_run_config({}).data == DataSettings()


def test_every_field_is_documented() -> None:
    for _, schema in SCHEMAS:
        docs = field_docs(schema)
        missing = [f.name for f in dataclasses.fields(schema) if not docs.get(f.name)]
        assert missing == [], f"{schema.__name__} fields without a docstring: {missing}"


def test_the_readme_reference_matches_the_schema() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- settings-reference: start -->\n", "<!-- settings-reference: end -->"
    assert start in readme and end in readme
    shown = readme.split(start, 1)[1].split(end, 1)[0]
    assert shown == settings_reference(), (
        "the README's settings reference is stale: regenerate it with "
        "python -m hyso.core.train.settings_doc"
    )
    for _, schema in SCHEMAS:
        for f in dataclasses.fields(schema):
            assert f".{f.name}`" in shown
