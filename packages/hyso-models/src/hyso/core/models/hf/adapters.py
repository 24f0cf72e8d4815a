"""LoRA adapters in PEFT's folder layout: :func:`save_peft_adapter`, :func:`load_peft_adapter`.

A folder holds ``adapter_config.json`` (``peft_type`` ``LORA``, ``r``, ``lora_alpha``,
``lora_dropout``, ``target_modules`` as transformers module names, ``bias`` ``none``,
``task_type`` ``CAUSAL_LM``, ``fan_in_fan_out``) and ``adapter_model.safetensors``
(``base_model.model.<module>.lora_A.weight`` ``(r, in)`` and ``...lora_B.weight``
``(out, r)``), so that ``peft.PeftModel.from_pretrained(transformers_model, folder)``
puts the same adapters on the model :func:`~hyso.core.models.hf.to_hf` wrote.

Each hyso adapter maps to one transformers module through the architecture's weight
rules (hyso's fused ``qkv`` is ``q_proj``/``k_proj``/``v_proj``, ``gate_up`` is
``gate_proj``/``up_proj``). An adapter on a projection that transformers fuses too
(GPT-2's ``c_attn``) has no PEFT equivalent and is refused. peft itself is not needed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from hyso.core.models.lora import (
    LoRASettings,
    apply_lora,
    load_lora_state_dict,
    lora_modules,
    lora_settings_of,
    projections,
)
from hyso.core.models.pretrained import atomic_write_bytes

from .convert import HFExportError, _choose
from .weights import HFFormatError, read_json

if TYPE_CHECKING:
    from hyso.core.models.base import HysoModel

    from .base import HFArchitecture

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_FORMAT_VERSION",
    "ADAPTER_WEIGHTS_NAME",
    "load_peft_adapter",
    "save_peft_adapter",
]

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_FORMAT_VERSION = 1
"""Written as ``hyso_adapter_format_version`` in the metadata of the weights file
(``adapter_config.json`` is PEFT's own format: an extra key there makes peft warn)."""
PREFIX = "base_model.model."

# adapter_config.json keys whose non-default values change the math and are not supported.
_DEFAULTS: dict[str, Any] = {
    "bias": "none",
    "use_dora": False,
    "use_rslora": False,
    "lora_bias": False,
    "modules_to_save": None,
    "layers_to_transform": None,
    "layer_replication": None,
    "rank_pattern": {},
    "alpha_pattern": {},
    "exclude_modules": None,
    "target_parameters": None,
    "trainable_token_indices": None,
}


@dataclass(frozen=True)
class _Slot:
    """One adapter position: hyso projection ``module`` slice ``target`` is transformers
    module ``hf`` (``None``: transformers fuses it with other slices)."""

    module: str
    target: str
    hf: str | None
    transposed: bool


def _slots(model: HysoModel, arch: HFArchitecture) -> list[_Slot]:
    """Every slice of every projection of ``model`` and its transformers module."""
    rules = arch.rules(model.config)
    slots = []
    for path, module in model.named_modules():
        for attr, parts in projections(module).items():
            proj = f"{path}.{attr}" if path else attr
            rule = rules.get(f"{proj}.weight")
            if rule is None:
                raise HFExportError(f"{proj} has no counterpart in {arch.architecture}")
            names = [n.removesuffix(".weight") for n in rule.hf]
            for i, (target, _) in enumerate(parts):
                hf = names[i] if len(names) == len(parts) else None
                slots.append(_Slot(proj, target, hf, rule.transpose))
    return slots


def _target_modules(targeted: list[str], others: list[str]) -> list[str]:
    """The shortest name suffixes (same length for all) that match every module of
    ``targeted`` and none of ``others`` (PEFT matches a name or a ``.``-suffix)."""
    depth = max((n.count(".") + 1 for n in targeted), default=1)
    for k in range(1, depth + 1):
        suffixes = sorted({".".join(n.split(".")[-k:]) for n in targeted})
        if not any(_matches(n, suffixes) for n in others):
            return suffixes
    return sorted(targeted)


def _matches(name: str, targets: list[str] | str) -> bool:
    """PEFT's rule: a string is a regular expression matched against the whole name; a
    list matches a name equal to an entry or ending in ``.`` + the entry."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def save_peft_adapter(
    model: HysoModel,
    path: str | os.PathLike[str],
    *,
    architecture: str | None = None,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write the adapters of ``model`` as a PEFT folder for the transformers class
    :func:`~hyso.core.models.hf.to_hf` exports it as (``architecture`` as there);
    ``base_model_name_or_path`` is recorded for PEFT. Returns the folder."""
    settings = lora_settings_of(model)
    if settings is None:
        raise ValueError("the model has no LoRA adapters to save (apply_lora first)")
    if any(m.merged for _, m in lora_modules(model)):
        raise ValueError("the adapters are merged into the weights: unmerge_lora(model) first")
    if model.family != "decoder_only":
        raise HFExportError(
            f"PEFT adapters are written for decoder_only models, not {model.family}"
        )
    arch, _ = _choose(model, architecture)
    slots = _slots(model, arch)
    chosen = [s for s in slots if s.target in settings.targets]
    fused = sorted({s.target for s in chosen if s.hf is None})
    if fused:
        raise HFExportError(
            f"{arch.architecture} fuses the projections of targets {', '.join(fused)} into one "
            "module: PEFT has no adapter per slice of it (choose other targets)"
        )
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    tensors = {}
    for s in chosen:
        for ab in ("A", "B"):
            tensors[f"{PREFIX}{s.hf}.lora_{ab}.weight"] = state[
                f"{s.module}.lora_{ab}.{s.target}"
            ].contiguous()
    targeted = [s.hf for s in chosen if s.hf is not None]
    others = [s.hf for s in slots if s.hf is not None and s.target not in settings.targets]
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": settings.r,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": _target_modules(_layer_free(targeted), _layer_free(others)),
        "fan_in_fan_out": any(s.transposed for s in chosen),
        "base_model_name_or_path": base_model_name_or_path,
        "inference_mode": True,
        "init_lora_weights": True,
        **_DEFAULTS,
    }
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": "pt", "hyso_adapter_format_version": str(ADAPTER_FORMAT_VERSION)}
    atomic_write_bytes(folder / ADAPTER_WEIGHTS_NAME, save(tensors, metadata=meta))
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(folder / ADAPTER_CONFIG_NAME, text.encode())
    return folder


def _layer_free(names: list[str]) -> list[str]:
    """Module names with the layer index and what precedes it cut off (the same
    projections repeat in every layer)."""
    return sorted({re.sub(r"^.*?\.\d+\.", "", n) for n in names})


def load_peft_adapter(
    model: HysoModel, path: str | os.PathLike[str], *, architecture: str | None = None
) -> HysoModel:
    """Put the adapters of PEFT folder ``path`` on ``model`` (no adapters yet), in place;
    returns ``model``. Features PEFT has and hyso does not (DoRA, rsLoRA, per-layer
    ranks, biases, extra trained modules) are an :class:`HFFormatError` naming the key."""
    folder = Path(path)
    config_path = folder / ADAPTER_CONFIG_NAME
    cfg = read_json(config_path)
    if cfg.get("peft_type") != "LORA":
        raise HFFormatError(f"{config_path}: peft_type {cfg.get('peft_type')!r} is not LORA")
    for key, default in _DEFAULTS.items():
        value = cfg.get(key, default)
        if value != default and value not in (None, False, {}, []):
            raise HFFormatError(
                f"{config_path}: {key} {value!r} is not supported (only {default!r})"
            )
    arch, _ = _choose(model, architecture)
    slots = _slots(model, arch)
    targets = cfg.get("target_modules")
    if not isinstance(targets, (str, list)) or not targets:
        raise HFFormatError(f"{config_path}: target_modules must be a list or a pattern")
    hit = {s for s in slots if s.hf is not None and _matches(s.hf, targets)}
    fused = sorted({s.target for s in slots if s.hf is None})
    chosen = sorted({s.target for s in hit})
    for target in chosen:
        missed = [s.hf for s in slots if s.target == target and s not in hit]
        if missed:
            raise HFFormatError(
                f"{config_path}: target_modules {targets!r} adapt {target} in some layers "
                f"only (not {missed[0]}); hyso adapts a target in every layer"
            )
    if not chosen:
        raise HFFormatError(
            f"{config_path}: target_modules {targets!r} match no projection hyso can adapt"
            + (f" ({', '.join(fused)} are fused in {arch.architecture})" if fused else "")
        )
    try:
        settings = LoRASettings(
            r=cfg.get("r"),  # type: ignore[arg-type]
            alpha=cfg.get("lora_alpha"),  # type: ignore[arg-type]
            dropout=cfg.get("lora_dropout", 0.0),
            targets=tuple(chosen),
        )
    except ValueError as exc:
        raise HFFormatError(f"{config_path}: {exc}") from None
    state = _read_adapter_tensors(folder / ADAPTER_WEIGHTS_NAME, hit)
    apply_lora(model, settings)
    try:
        load_lora_state_dict(model, state)
    except ValueError as exc:
        raise HFFormatError(f"{folder / ADAPTER_WEIGHTS_NAME}: {exc}") from None
    return model


def _read_adapter_tensors(path: Path, slots: set[_Slot]) -> dict[str, torch.Tensor]:
    """hyso adapter name -> tensor, for the adapted ``slots``; any other tensor in the
    file is an error."""
    wanted = {
        f"{PREFIX}{s.hf}.lora_{ab}.weight": f"{s.module}.lora_{ab}.{s.target}"
        for s in slots
        for ab in ("A", "B")
    }
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = set(handle.keys())
            extra = sorted(names - set(wanted))
            missing = sorted(set(wanted) - names)
            if extra or missing:
                raise HFFormatError(
                    f"{path}: tensors do not match target_modules (missing "
                    f"{missing[:3] or 'none'}, unexpected {extra[:3] or 'none'})"
                )
            return {ours: handle.get_tensor(theirs) for theirs, ours in wanted.items()}
    except (SafetensorError, OSError) as exc:
        raise HFFormatError(f"{path}: cannot be read ({exc})") from exc
