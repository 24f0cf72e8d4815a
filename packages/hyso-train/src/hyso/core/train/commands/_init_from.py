"""``model.init_from: PATH``: training that starts from a model that already exists.

PATH is a run folder written by ``hyso train`` (its best checkpoint, else its latest),
a ``save_pretrained`` folder or a Hugging Face model folder (both holding a
``tokenizer.json``). The source's model config is the base of the run's ``model``
section: a key the config also gives must agree with it, except the training-only
:data:`CHANGEABLE_KEYS`. The source's tokenizer replaces the one ``hyso train`` would
train, so ``data.vocab_size``, when given, must equal its size. The run's config.yaml
records the resolved model section (so ``hyso generate`` and ``--resume`` rebuild the
model without the source) and its manifest records where the weights came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hyso.core.train.commands._common import CliError
from hyso.core.train.commands._model import MODEL_FAMILIES, LoadedRun
from hyso.core.train.errors import TrainingConfigError

__all__ = [
    "CHANGEABLE_KEYS",
    "InitSource",
    "apply_init_from",
    "initial_model",
    "load_init_source",
]

CHANGEABLE_KEYS = ("dropout", "drop_path")
"""Model keys a config may set to another value than the source's: they change
training only, not the function the weights compute at evaluation."""
# Keys of the model section that name the family or the source, not a config field.
_NOT_FIELDS = ("init_from", "name", "family")


@dataclass
class InitSource:
    """A loaded ``model.init_from`` source: the model, its tokenizer and where they came from."""

    path: Path
    kind: str
    """``run``, ``save_pretrained`` or ``hugging_face``."""
    family: str
    model: torch.nn.Module
    tokenizer: Any
    weights: dict[str, str] = field(default_factory=dict)
    """Weight file (relative to ``path``) -> its SHA-256."""

    @property
    def model_config(self) -> dict[str, Any]:
        """The source model's config, every field resolved."""
        return dict(self.model.config.to_dict())  # type: ignore[operator]

    def record(self) -> dict[str, Any]:
        """What the manifest keeps under ``model.init_from``."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "family": self.family,
            "weights": dict(self.weights),
            "tokenizer_vocab_size": int(self.tokenizer.vocab_size),
        }


def load_init_source(path: str | Path) -> InitSource:
    """The model and tokenizer of ``path`` (a run folder, a ``save_pretrained`` folder
    or a Hugging Face folder); anything else is one error naming ``model.init_from``."""
    from hyso.core.train.commands._model import load_model_folder, load_run

    folder = Path(path).expanduser()
    if not folder.exists():
        raise TrainingConfigError(f"model.init_from: {path} does not exist")
    if not folder.is_dir():
        raise TrainingConfigError(f"model.init_from: {path} is not a folder")
    folder = folder.resolve()
    try:
        if (folder / "config.yaml").is_file():
            from hyso.core.train.commands.generate import check_run_files

            check_run_files(folder)
            loaded, kind = load_run(folder), "run"
        elif (folder / "config.json").is_file():
            loaded = load_model_folder(folder)
            kind = "save_pretrained" if _is_hyso_folder(folder) else "hugging_face"
        else:
            raise CliError(
                "holds neither a hyso run (config.yaml, checkpoints/) nor a model folder "
                "(config.json, weights and tokenizer.json)"
            )
    except (ValueError, OSError) as exc:  # the loaders' one-line errors, given the key
        message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        raise TrainingConfigError(f"model.init_from: {message}") from exc
    family = str(getattr(loaded.model, "family", ""))
    if family not in MODEL_FAMILIES:
        raise TrainingConfigError(
            f"model.init_from: {path} holds a {family or 'non-hyso'} model; hyso train "
            f"trains {' or '.join(MODEL_FAMILIES)} models"
        )
    return InitSource(
        path=folder,
        kind=kind,
        family=family,
        model=loaded.model,
        tokenizer=loaded.tokenizer,
        weights=_weight_files(loaded, kind),
    )


def apply_init_from(cfg: Any, source: InitSource) -> Any:
    """``cfg`` with its ``model`` section resolved against ``source``'s config.

    Raises ``TrainingConfigError`` naming both values for a model key that contradicts
    the source (other than :data:`CHANGEABLE_KEYS`) and for a ``data.vocab_size``
    other than the source tokenizer's.
    """
    from hyso.core.config import merge_config
    from hyso.core.models.config import ALIASES
    from hyso.core.train.settings import as_plain_dict, config_origin

    plain = as_plain_dict(cfg)
    given: Mapping[str, Any] = plain.get("model") or {}
    base = source.model_config
    where = f"model.init_from {source.path}"
    origin = config_origin(cfg)
    for key in ("name", "family"):
        named = given.get(key)
        if named is not None and str(named).replace("-", "_") != source.family:
            raise TrainingConfigError(
                f"model.{key} is {named!r} in {origin('model.' + key)} but {where} holds "
                f"a {source.family!r} model"
            )
    resolved: dict[str, Any] = {"name": source.family}
    for key, value in given.items():
        target = ALIASES.get(key, key)
        if key in _NOT_FIELDS or value is None or target not in base:
            continue  # a null takes the source's value; an unknown key fails when built
        if target in CHANGEABLE_KEYS:
            resolved[target] = value
        elif value != base[target]:
            raise TrainingConfigError(
                f"model.{key} is {value!r} in {origin('model.' + key)} but {base[target]!r} "
                f"in {where}: drop the key, or set it to {base[target]!r}"
            )
    _check_vocab_size(plain, source, origin)
    model = {**base, **resolved, "init_from": str(source.path)}  # absolute: --resume elsewhere
    for alias, target in ALIASES.items():
        if alias in given:  # the config's own spelling stays, agreeing, in the merge
            model[alias] = model[target]
    return merge_config(cfg, {"model": model})


def _check_vocab_size(plain: Mapping[str, Any], source: InitSource, origin: Any) -> None:
    data = plain.get("data") or {}
    wanted = data.get("vocab_size") if isinstance(data, Mapping) else None
    have = int(source.tokenizer.vocab_size)
    if wanted is not None and wanted != have:
        raise TrainingConfigError(
            f"data.vocab_size is {wanted!r} in {origin('data.vocab_size')} but the tokenizer of "
            f"model.init_from {source.path} has {have} ids: drop data.vocab_size (the "
            "source's tokenizer is used as it is)"
        )


def initial_model(source: InitSource, model_cfg: Mapping[str, Any]) -> torch.nn.Module:
    """A fresh model of the resolved ``model_cfg`` holding the source's weights, in
    float32 (what the optimizer updates; ``training.precision`` chooses autocast)."""
    from hyso.core.train.commands._model import build_model

    model = build_model(dict(model_cfg), int(source.model_config["vocab_size"]))
    weights = source.model.state_dict()
    state = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    model.load_state_dict(state, strict=True)
    return model.float().train()


def _is_hyso_folder(folder: Path) -> bool:
    from hyso.core.train.commands.convert import _is_hyso_folder as is_hyso

    return is_hyso(folder / "config.json")


def _weight_files(loaded: LoadedRun, kind: str) -> dict[str, str]:
    """The files the weights were read from, each with its SHA-256."""
    folder = loaded.run_dir
    if kind == "run":
        path = Path(loaded.checkpoint.path)
        digest = loaded.checkpoint.sha256 or _sha256(path)
        return {str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path): digest}
    names = sorted(
        p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()
    )
    return {name: _sha256(folder / name) for name in names}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
