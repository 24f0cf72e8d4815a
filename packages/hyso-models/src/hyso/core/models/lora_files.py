"""Adapter folders: :func:`save_lora` / :func:`load_adapter`.

hyso's own adapter folder holds ``lora.json`` (``format_version``, the LoRA settings, the
model family, the SHA-256 of the weights file) and ``lora.safetensors`` (the adapter
tensors by hyso state-dict name). It works for every model hyso builds; PEFT's layout
(:mod:`hyso.core.models.hf.adapters`) only for models a transformers class expresses.
:func:`load_adapter` reads either.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .hf.adapters import ADAPTER_CONFIG_NAME, load_peft_adapter
from .lora import LoRASettings, apply_lora, load_lora_state_dict, lora_settings_of, lora_state_dict
from .pretrained import atomic_write_bytes

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "LORA_CONFIG_NAME",
    "LORA_FORMAT_VERSION",
    "LORA_WEIGHTS_NAME",
    "is_adapter_folder",
    "load_adapter",
    "load_lora",
    "save_lora",
]

LORA_CONFIG_NAME = "lora.json"
LORA_WEIGHTS_NAME = "lora.safetensors"
LORA_FORMAT_VERSION = 1


def save_lora(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write the adapters of ``model`` (weights file first, then ``lora.json``)."""
    settings = lora_settings_of(model)
    if settings is None:
        raise ValueError("the model has no LoRA adapters to save (apply_lora first)")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.to("cpu").contiguous() for k, v in lora_state_dict(model).items()}
    blob = save(tensors, metadata={"format_version": str(LORA_FORMAT_VERSION)})
    atomic_write_bytes(folder / LORA_WEIGHTS_NAME, blob)
    meta = {
        "format_version": LORA_FORMAT_VERSION,
        "family": getattr(model, "family", None),
        "lora": settings.to_dict(),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write_bytes(folder / LORA_CONFIG_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    return folder


def is_adapter_folder(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a hyso or a PEFT adapter."""
    folder = Path(directory)
    return (folder / LORA_CONFIG_NAME).is_file() or (folder / ADAPTER_CONFIG_NAME).is_file()


def load_lora(model: nn.Module, directory: str | os.PathLike[str]) -> nn.Module:
    """Put the adapters of hyso adapter folder ``directory`` on ``model`` (in place).

    A missing file, another format version, a weights file whose hash differs from the
    record, or adapters that do not fit the model is a ``ValueError`` naming the file."""
    folder = Path(directory)
    config_path, weights = folder / LORA_CONFIG_NAME, folder / LORA_WEIGHTS_NAME
    for path in (config_path, weights):
        if not path.is_file():
            raise ValueError(f"{path}: no such file (not a hyso adapter folder)")
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format_version") != LORA_FORMAT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise ValueError(
            f"{config_path}: format_version {version!r} is not supported "
            f"(expected {LORA_FORMAT_VERSION})"
        )
    blob = weights.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if meta.get("weights_sha256") not in (None, digest):
        raise ValueError(
            f"{weights}: SHA-256 {digest[:16]}... differs from the "
            f"{meta['weights_sha256'][:16]}... {LORA_CONFIG_NAME} records "
            "(a damaged or swapped file)"
        )
    family = getattr(model, "family", None)
    if meta.get("family") not in (None, family):
        raise ValueError(f"{config_path}: adapters of a {meta['family']} model, not {family}")
    try:
        settings = LoRASettings.from_dict(meta.get("lora") or {}, where=f"{config_path}: lora")
        state = load_file(str(weights))
        apply_lora(model, settings)
        load_lora_state_dict(model, state)
    except (ValueError, SafetensorError, OSError) as exc:
        raise ValueError(f"{folder}: {exc}") from exc
    return model


def load_adapter(model: nn.Module, directory: str | os.PathLike[str]) -> nn.Module:
    """Put the adapters of ``directory`` on ``model``: a hyso adapter folder
    (``lora.json``) or a PEFT one (``adapter_config.json``)."""
    folder = Path(directory)
    if (folder / LORA_CONFIG_NAME).is_file():
        return load_lora(model, folder)
    if (folder / ADAPTER_CONFIG_NAME).is_file():
        return load_peft_adapter(model, folder)  # type: ignore[arg-type]
    raise ValueError(
        f"{folder}: holds neither {LORA_CONFIG_NAME} (hyso) nor {ADAPTER_CONFIG_NAME} (PEFT)"
    )
