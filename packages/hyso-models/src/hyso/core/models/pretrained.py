"""Save and load models: ``config.json`` plus weights in safetensors.

A saved folder holds ``config.json`` (``format_version``, the family, the dtype,
every config field and the ``weights_sha256`` of the weights file) and
``model.safetensors``. Tied weights are stored once. Both files are written
atomically by :func:`atomic_write_bytes`, and loading never executes anything:
safetensors holds only tensors. Loading checks the weights' hash (when the
config records one) and checks the config's sizes against the weights' header
before building the model, so a config declaring a million layers fails at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from .config import config_class_for
from .lora import is_lora_key
from .registry import model_class_for

if TYPE_CHECKING:
    from .base import HysoModel

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "PretrainedFormatError",
    "atomic_write_bytes",
    "load_pretrained",
    "read_pretrained_config",
    "save_pretrained",
]

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class PretrainedFormatError(ValueError):
    """A saved model folder is missing a file, or holds something this version cannot read."""


def save_pretrained(model: HysoModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``directory`` (created if needed); return the folder.

    LoRA adapters are left out: the projections' weights are written as they are now
    (the base weights, or the merged ones after ``merge_lora``)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, torch.dtype, tuple[int, ...]]] = set()
    for name, tensor in model.state_dict().items():
        if is_lora_key(name):  # adapters are saved on their own (hyso.core.models.lora)
            continue
        key = (tensor.data_ptr(), tensor.dtype, tuple(tensor.shape))
        if key in seen:  # a tied weight: stored once, re-tied by the constructor
            continue
        seen.add(key)
        tensors[name] = tensor.detach().to("cpu").contiguous()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    blob = save(tensors, metadata={"format_version": str(FORMAT_VERSION), "family": model.family})
    atomic_write_bytes(folder / WEIGHTS_NAME, blob)
    meta = {
        "format_version": FORMAT_VERSION,
        "family": model.family,
        "dtype": dtype,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "config": model.config.to_dict(),
    }
    atomic_write_bytes(folder / CONFIG_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    return folder


def read_pretrained_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed, checked ``config.json`` of a saved model folder."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise PretrainedFormatError(f"{path}: no such file; not a saved hyso model folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PretrainedFormatError(f"{path}: invalid JSON ({exc})") from exc
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise PretrainedFormatError(
            f"{path}: format_version {version!r} is not supported (expected {FORMAT_VERSION})"
        )
    for key in ("family", "config", "dtype"):
        if key not in meta:
            raise PretrainedFormatError(f"{path}: missing key {key!r}")
    return meta


def load_pretrained(
    directory: str | os.PathLike[str],
    expected_class: type[HysoModel] | None = None,
    map_location: str | torch.device = "cpu",
) -> HysoModel:
    """Rebuild the model saved in ``directory``, bit-identical to the saved one."""
    folder = Path(directory)
    meta = read_pretrained_config(folder)
    cls = model_class_for(meta["family"])
    if expected_class is not None and not issubclass(cls, expected_class):
        raise PretrainedFormatError(
            f"{folder / CONFIG_NAME}: holds a {meta['family']} model, "
            f"not a {expected_class.__name__}"
        )
    config = config_class_for(meta["family"]).from_dict(meta["config"])
    dtype = getattr(torch, str(meta["dtype"]), None)
    if not isinstance(dtype, torch.dtype):
        raise PretrainedFormatError(f"{folder / CONFIG_NAME}: unknown dtype {meta['dtype']!r}")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise PretrainedFormatError(f"{weights}: no such file")
    _check_sha256(weights, meta.get("weights_sha256"))
    _check_header(weights, config)
    model = cls(config).to(dtype)
    state = load_file(str(weights), device=str(map_location))
    own = model.state_dict()
    missing = set(own) - set(state)
    stored = {own[k].data_ptr() for k in state if k in own}
    untied = sorted(k for k in missing if own[k].data_ptr() not in stored)
    unexpected = sorted(set(state) - set(own))
    if untied or unexpected:
        raise PretrainedFormatError(
            f"{weights}: weights do not match the config "
            f"(missing: {untied or 'none'}; unexpected: {unexpected or 'none'})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise PretrainedFormatError(
                f"{weights}: {name} has shape {tuple(tensor.shape)}, "
                f"config expects {tuple(own[name].shape)}"
            )
    model.load_state_dict(state, strict=False)
    return model.to(map_location)


def _check_sha256(weights: Path, expected: Any) -> None:
    """The file's sha256 equals the one ``config.json`` records (folders saved before
    the hash was recorded have none)."""
    if expected is None:
        return
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise PretrainedFormatError(
            f"{weights}: sha256 {digest.hexdigest()} does not match the weights_sha256 "
            f"{expected!r} in {CONFIG_NAME}: the file is damaged or was replaced"
        )


# Stacks of blocks by family: the tensor-name prefix of each and the config key counting it.
_STACKS = {
    "encoder_decoder": {"encoder_blocks": "num_layers", "decoder_blocks": "num_decoder_layers"},
}


def _check_header(weights: Path, config: Any) -> None:
    """The config's vocabulary, width and depth against the weights' header, read
    without loading a tensor, so nothing is allocated for a config the file contradicts."""
    try:
        with safe_open(str(weights), framework="pt") as handle:
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise PretrainedFormatError(f"{weights}: damaged safetensors file ({exc})") from exc
    have = shapes.get("tok_emb.weight")
    want = (config.vocab_size, config.dim)
    if have != want:
        raise PretrainedFormatError(
            f"{weights}: tok_emb.weight has shape {have}, but {CONFIG_NAME} declares "
            f"vocab_size {want[0]} and dim {want[1]}"
        )
    for stack, key in _STACKS.get(config.family, {"blocks": "num_layers"}).items():
        found = {int(m.group(1)) for n in shapes if (m := re.match(rf"{stack}\.(\d+)\.", n))}
        declared = getattr(config, key)
        if declared != len(found):
            raise PretrainedFormatError(
                f"{weights}: holds {len(found)} {stack}, but {CONFIG_NAME} declares "
                f"{key} {declared}"
            )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    hyso-models' copy of the project's scheme (``hyso.core.storage.atomic``,
    which this package does not depend on): the temp file
    ``.<name>.<pid>.<8 hex>.tmp`` in the same folder is written, flushed and
    fsynced, moved over ``path``, then the folder is fsynced. On any error the
    temp file is removed and the error re-raised; one left by a killed process
    has the name ``hyso.core.storage.atomic.clean_stale_temps`` recognises.
    """
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    handle = open(tmp, "xb")
    try:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, path)
        _fsync_folder(folder)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise


def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder for fsync
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
