"""LoRA fine-tuning in ``hyso train``: adapters on the model, adapter-only checkpoints.

With ``finetune.lora`` set, :func:`apply_finetune` puts adapters on the freshly built
(or loaded) model and freezes the rest, so the optimizer sees only the adapters. A
checkpoint of such a run holds the adapters and their optimizer state, not the frozen
base: :func:`checkpoint_module` is what the checkpoint manager saves and restores, and
:func:`checkpoint_extra` records the LoRA settings, which :func:`check_checkpoint_fits`
compares with the model's before anything is loaded. At the end of the run the best
adapters are written to ``artifacts/adapter`` (:func:`export_adapter`), the folder
``hyso generate --adapter`` takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from hyso.core.train.errors import TrainingConfigError

if TYPE_CHECKING:
    from hyso.core.train.run_config import FinetuneSettings

__all__ = [
    "ADAPTER_DIR",
    "AdapterCheckpoint",
    "adapter_hint",
    "apply_finetune",
    "check_checkpoint_fits",
    "checkpoint_extra",
    "checkpoint_module",
    "export_adapter",
    "finetune_line",
    "lora_of_checkpoint",
]

ADAPTER_DIR = "adapter"
"""The folder, inside the run's ``artifacts``, that holds the best adapters."""
_EXTRA_KEY = "lora"


def apply_finetune(model: nn.Module, finetune: FinetuneSettings) -> nn.Module:
    """``model`` with the adapters of ``finetune.lora`` (unchanged when null)."""
    if finetune.lora is None:
        return model
    from hyso.core.models.lora import apply_lora

    try:
        apply_lora(model, finetune.lora)
    except ValueError as exc:
        raise TrainingConfigError(f"finetune.lora: {exc}") from None
    return model


def finetune_line(model: nn.Module) -> str | None:
    """``LoRA r=8 on q, v: trainable 1.2 % (12,288 of 1,032,192 parameters)`` for a model
    with adapters (None: full fine-tuning)."""
    from hyso.core.models.lora import format_trainable_share, lora_settings_of

    settings = lora_settings_of(model)
    if settings is None:
        return None
    on = ", ".join(settings.targets)
    return f"LoRA r={settings.r} on {on}: {format_trainable_share(model)}"


class AdapterCheckpoint(nn.Module):
    """The state a LoRA run checkpoints: the adapters of ``model`` only.

    ``state_dict`` holds the adapter tensors by their model names; ``load_state_dict``
    copies them back. ``model`` is not a submodule (its frozen weights stay out)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_target", model)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        from hyso.core.models.lora import lora_state_dict

        return dict(lora_state_dict(self._target))

    def load_state_dict(  # type: ignore[override]
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        from hyso.core.models.lora import load_lora_state_dict

        load_lora_state_dict(self._target, state_dict)
        return nn.modules.module._IncompatibleKeys([], [])


def checkpoint_module(model: nn.Module, *, sharded: bool = False) -> nn.Module:
    """What a checkpoint holds of ``model``: its adapters when it has any, else itself.

    A sharded checkpoint (``strategy: fsdp``) always holds the whole model, adapters and
    frozen base alike: every rank writes its shard of every parameter.
    """
    from hyso.core.models.lora import has_lora

    return AdapterCheckpoint(model) if has_lora(model) and not sharded else model


def checkpoint_extra(model: nn.Module) -> dict[str, Any]:
    """``{"lora": settings}`` for a model with adapters (kept in the checkpoint's extra)."""
    from hyso.core.models.lora import lora_settings_of

    settings = lora_settings_of(model)
    return {} if settings is None else {_EXTRA_KEY: settings.to_dict()}


def lora_of_checkpoint(extra: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The LoRA settings a checkpoint's ``extra`` records (``None``: a full checkpoint)."""
    value = (extra or {}).get(_EXTRA_KEY)
    return dict(value) if isinstance(value, Mapping) else None


def check_checkpoint_fits(path: Any, extra: Mapping[str, Any] | None, model: nn.Module) -> None:
    """Refuse a LoRA checkpoint for a model without the same adapters, and a full
    checkpoint for a model with adapters (the message names both)."""
    from hyso.core.models.lora import lora_settings_of

    saved = lora_of_checkpoint(extra)
    settings = lora_settings_of(model)
    have = None if settings is None else settings.to_dict()
    if saved == have:
        return
    what = f"LoRA adapters {saved}" if saved else "a full model (no adapters)"
    need = f"LoRA adapters {have}" if have else "no adapters (finetune.lora is null)"
    raise TrainingConfigError(
        f"checkpoint {path} holds {what}, but this run's model has {need}: "
        "set finetune.lora as the checkpoint's run did"
    )


def export_adapter(model: nn.Module, artifacts_dir: Path) -> Path | None:
    """Write the adapters of ``model`` to ``artifacts_dir/adapter`` (None: no adapters)."""
    from hyso.core.models.lora import has_lora
    from hyso.core.models.lora_files import save_lora

    if not has_lora(model):
        return None
    return save_lora(model, artifacts_dir / ADAPTER_DIR)


def adapter_hint(run_dir: Path, adapter: Path) -> str:
    """The closing lines of a LoRA run: where the adapters are and how to use them."""
    return (
        f"adapters (best): {adapter}\n"
        f"  sample: hyso generate {run_dir}\n"
        "  merged model: load the base, then hyso.core.models.lora_files.load_adapter, "
        "merge_lora and save_pretrained (see hyso-train's README, LoRA)"
    )
