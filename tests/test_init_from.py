"""``model.init_from``: ``hyso train`` starting from a run folder or a ``save_pretrained``
folder, with the source's tokenizer; contradictions and bad paths are one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy  # noqa: F401  (the token cache; its absence is an error, not a skip)
import pytest

import hyso.core.tokenizer  # noqa: F401  (the source's tokenizer comes along)
from hyso.core.train.cli import main
from hyso.core.train.commands._model import load_run

SOURCE = """
model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 32, dropout: 0.0}
training:
  seed: 0
  device: cpu
  lr: 0.003
  batch_size: 4
  epochs: 1
  log_every: 1
  eval_every: 3
  max_steps: 6
  progress_bar: false
  num_threads: 1
data:
  max_bytes: 40000
  vocab_size: 300
  cache_dir: CACHE
"""
# The same data, no model keys and no data.vocab_size: everything comes from the source.
FINETUNE = """
model: {}
training:
  seed: 1
  device: cpu
  lr: 0.001
  batch_size: 4
  epochs: 1
  log_every: 1
  eval_every: 2
  max_steps: 2
  progress_bar: false
  num_threads: 1
data:
  max_bytes: 40000
  cache_dir: CACHE
"""


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The configs and one trained source run."""
    tmp = tmp_path_factory.mktemp("init-from")
    cache = str(tmp / "cache")
    (tmp / "source.yaml").write_text(SOURCE.replace("CACHE", cache), encoding="utf-8")
    (tmp / "finetune.yaml").write_text(FINETUNE.replace("CACHE", cache), encoding="utf-8")
    argv = ["train", str(tmp / "source.yaml"), "--runs-root", str(tmp / "source-runs")]
    assert main([*argv, "--sample-tokens", "0"]) == 0
    (source,) = (tmp / "source-runs").iterdir()
    return {"tmp": tmp, "source": source, "finetune": tmp / "finetune.yaml"}


def _finetune(space: dict[str, Path], init_from: Path, *extra: str, runs: str = "ft") -> Path:
    runs_root = space["tmp"] / runs
    argv = ["train", str(space["finetune"]), f"model.init_from={init_from}", *extra]
    assert main([*argv, "--runs-root", str(runs_root), "--sample-tokens", "4"]) == 0
    return max(runs_root.iterdir(), key=lambda p: p.stat().st_mtime_ns)


def test_a_run_folder_starts_at_the_sources_validation_loss(space: dict[str, Path]) -> None:
    source = space["source"]
    run = _finetune(space, source)
    before = _manifest(run)["results"]["init_val_loss"]
    assert before == pytest.approx(_manifest(source)["results"]["best_val_loss"], abs=1e-6)
    assert _manifest(run)["results"]["best_val_loss"] < before  # training went on from there
    record = _manifest(run)["model"]["init_from"]
    assert record["path"] == str(source.resolve()) and record["kind"] == "run"
    ((name, digest),) = record["weights"].items()
    assert name.startswith("checkpoints/") and digest == _sha256(source / name)
    # the source's tokenizer, not a new one; the run's copy is byte-identical
    tokenizer = _manifest(run)["data"]["tokenizer"]
    assert tokenizer["from"] == str(source.resolve()) and "trained_on" not in tokenizer
    assert (run / "artifacts" / "tokenizer.json").read_bytes() == (
        source / "artifacts" / "tokenizer.json"
    ).read_bytes()
    # the run's config.yaml rebuilds the model without the source (hyso generate)
    loaded = load_run(run)
    assert loaded.model.config.dim == 32 and loaded.model.config.num_layers == 1
    assert main(["generate", str(run), "--max-new-tokens", "5", "--seed", "0"]) == 0


def test_a_save_pretrained_folder_starts_at_the_same_loss(
    space: dict[str, Path], tmp_path: Path
) -> None:
    loaded = load_run(space["source"])
    folder = tmp_path / "pretrained"
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save(folder / "tokenizer.json")
    run = _finetune(space, folder, runs="ft-pretrained")
    manifest = _manifest(run)
    source_loss = _manifest(space["source"])["results"]["best_val_loss"]
    assert manifest["results"]["init_val_loss"] == pytest.approx(source_loss, abs=1e-6)
    record = manifest["model"]["init_from"]
    assert record["kind"] == "save_pretrained"
    assert record["weights"] == {"model.safetensors": _sha256(folder / "model.safetensors")}


def test_dropout_may_change_and_agreeing_keys_are_fine(space: dict[str, Path]) -> None:
    run = _finetune(
        space, space["source"], "+model.dropout=0.1", "+model.dim=32", runs="ft-dropout"
    )
    saved = load_run(run).config.to_dict()["model"]
    assert saved["dropout"] == 0.1 and saved["dim"] == 32
    assert saved["init_from"] == str(space["source"].resolve())


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("+model.dim=64", ["model.dim is 64", "'+model.dim=64'", "but 32 in model.init_from"]),
        ("+model.num_heads=4", ["model.num_heads is 4", "but 2 in model.init_from"]),
        ("+model.name=encoder_only", ["model.name is 'encoder_only'", "'decoder_only' model"]),
        ("+data.vocab_size=512", ["data.vocab_size is 512", "has 300 ids"]),
    ],
)
def test_a_contradicting_key_names_both_values(
    space: dict[str, Path], override: str, fragments: list[str], capsys
) -> None:
    argv = ["train", str(space["finetune"]), f"model.init_from={space['source']}", override]
    assert main([*argv, "--runs-root", str(space["tmp"] / "never")]) == 2
    line = _error_line(capsys)
    for fragment in fragments:
        assert fragment in line, line
    assert str(space["source"].resolve()) in line
    assert not (space["tmp"] / "never").exists()


def test_a_contradicting_key_in_the_config_file_names_the_file(
    space: dict[str, Path], capsys
) -> None:
    config = space["tmp"] / "wide.yaml"
    config.write_text(space["finetune"].read_text().replace("model: {}", "model: {layers: 3}"))
    assert main(["train", str(config), f"model.init_from={space['source']}"]) == 2
    line = _error_line(capsys)
    assert "model.layers is 3 in config file" in line and "wide.yaml" in line
    assert "but 1 in model.init_from" in line


def _bad_folders(tmp: Path, source: Path) -> dict[str, tuple[Path, str]]:
    """Sources that cannot be loaded, each with what its error must say."""
    empty = tmp / "empty"
    empty.mkdir()
    a_file = tmp / "weights.bin"
    a_file.write_bytes(b"\0" * 16)
    no_tokenizer = tmp / "no-tokenizer"
    load_run(source).model.save_pretrained(no_tokenizer)
    garbage = tmp / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    (garbage / "tokenizer.json").write_text((source / "artifacts" / "tokenizer.json").read_text())
    no_checkpoint = tmp / "no-checkpoint"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.yaml").write_text((source / "config.yaml").read_text())
    (no_checkpoint / "artifacts").mkdir()
    (no_checkpoint / "artifacts" / "tokenizer.json").write_bytes(
        (source / "artifacts" / "tokenizer.json").read_bytes()
    )
    return {
        "missing": (tmp / "nowhere", "does not exist"),
        "file": (a_file, "is not a folder"),
        "empty": (empty, "holds neither a hyso run"),
        "no tokenizer": (no_tokenizer, "tokenizer.json"),
        "bad config.json": (garbage, "not valid JSON"),
        "no checkpoint": (no_checkpoint, "no checkpoint"),
    }


def test_unloadable_sources_are_one_line_errors_naming_the_path(
    space: dict[str, Path], tmp_path: Path, capsys
) -> None:
    for name, (folder, fragment) in _bad_folders(tmp_path, space["source"]).items():
        argv = ["train", str(space["finetune"]), f"model.init_from={folder}"]
        assert main([*argv, "--runs-root", str(tmp_path / "runs")]) == 2, name
        line = _error_line(capsys)
        assert line.startswith("hyso train: error: model.init_from: "), (name, line)
        assert str(folder) in line and fragment in line, (name, line)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("value", ["5", "''", "[a, b]"])
def test_init_from_must_be_a_path(space: dict[str, Path], value: str, capsys) -> None:
    assert main(["train", str(space["finetune"]), f"model.init_from={value}"]) == 2
    assert "model.init_from must be the path of a run folder" in _error_line(capsys)


def test_a_run_converts_to_a_hugging_face_folder_that_starts_another_run(
    space: dict[str, Path], tmp_path: Path, capsys
) -> None:
    source = space["source"]
    assert main(["convert", str(source), str(tmp_path / "hf")]) == 0
    assert "(run -> hf)" in capsys.readouterr().out
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in (tmp_path / "hf").iterdir()
    }
    greedy = ["--prompt", "def", "--max-new-tokens", "12", "--temperature", "0"]
    assert main(["generate", str(source), *greedy]) == 0
    from_run = capsys.readouterr().out
    assert main(["generate", str(tmp_path / "hf"), *greedy]) == 0
    assert capsys.readouterr().out == from_run
    run = _finetune(space, tmp_path / "hf", runs="ft-hf")
    record = _manifest(run)["model"]["init_from"]
    assert record["kind"] == "hugging_face"
    source_loss = _manifest(source)["results"]["best_val_loss"]
    assert _manifest(run)["results"]["init_val_loss"] == pytest.approx(source_loss, abs=1e-6)


def test_the_example_finetune_config_is_valid_and_names_no_model_keys() -> None:
    from hyso.core.config import load_config
    from hyso.core.train import load_run_config

    path = Path(__file__).resolve().parents[1] / "examples" / "finetune.yaml"
    settings = load_run_config(load_config(path))
    assert settings.model == {} and settings.init_from is None
    assert "vocab_size" not in load_config(path).to_dict()["data"]


def test_a_lora_run_from_a_source_reloads_base_and_adapters(space: dict[str, Path]) -> None:
    """A LoRA fine-tune of a source keeps only the adapters; ``hyso generate`` (through
    ``load_run``) rebuilds the base from ``model.init_from`` and puts them on top."""
    import torch

    from hyso.core.models.lora import lora_state_dict, merge_lora

    source = space["source"]
    lora = ["+finetune.lora.r=4", "+finetune.lora.targets=[q, v]"]
    run = _finetune(space, source, *lora, "training.lr=0.05", runs="ft-lora")
    assert _manifest(run)["results"]["best_val_loss"] < _manifest(run)["results"]["init_val_loss"]
    loaded = load_run(run)
    adapters = lora_state_dict(loaded.model)
    assert adapters and any(v.abs().max() > 0 for k, v in adapters.items() if "lora_B" in k)
    base = load_run(source).model
    ids = torch.randint(0, loaded.tokenizer.vocab_size, (2, 12), generator=torch.Generator())
    with torch.no_grad():
        tuned = loaded.model(ids)
        assert not torch.allclose(tuned, base(ids), atol=1e-4)  # the adapters act
        frozen = {k: v for k, v in loaded.model.state_dict().items() if "lora_" not in k}
        for name, weight in base.state_dict().items():  # the base is the source's, unchanged
            assert torch.equal(frozen[name], weight), name
        torch.testing.assert_close(merge_lora(loaded.model)(ids), tuned, rtol=0, atol=1e-5)
    assert main(["generate", str(run), "--max-new-tokens", "5", "--seed", "0"]) == 0
