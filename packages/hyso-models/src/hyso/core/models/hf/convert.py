"""``load_hf`` and ``to_hf``: Hugging Face model folders in and out.

Loading checks everything before allocating: the config's fields (any that
would change the math and that hyso lacks are refused), the number of layers
and the embedding's shape against the weight files' headers, then every
tensor's shape. The model is built on the ``meta`` device (no memory) and each
weight is read once from its file and installed as it is, in its stored dtype
unless ``dtype=`` asks for another.
"""

from __future__ import annotations

import json
import os
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save

from hyso.core.models.config import ModelConfigError, config_class_for
from hyso.core.models.layers import PositionEncoding
from hyso.core.models.pretrained import atomic_write_bytes
from hyso.core.models.registry import model_class_for, register_hf_exporter

from .base import HFArchitecture, Rule, Unsupported
from .registry import ARCHITECTURES, architecture_for
from .weights import SAFETENSORS_NAME, HFFormatError, WeightSource, read_json

if TYPE_CHECKING:
    from hyso.core.models.base import HysoModel
    from hyso.core.models.config import TransformerConfig

__all__ = ["HF_EXPORT_FORMAT_VERSION", "HFExportError", "load_hf", "to_hf"]

CONFIG_NAME = "config.json"
# Written into every exported config.json (transformers keeps unknown keys).
HF_EXPORT_FORMAT_VERSION = 1


class HFExportError(ValueError):
    """A hyso model that no supported transformers class expresses exactly."""


def load_hf(
    path: str | os.PathLike[str], dtype: torch.dtype | None = None, *, device: str = "cpu"
) -> HysoModel:
    """The hyso model of a Hugging Face folder (``config.json`` + weights).

    Weights keep their stored dtype unless ``dtype`` is given. Unsupported
    fields, missing or extra tensors, shapes that do not match the config and
    damaged files raise :class:`HFFormatError` naming the file and the key.
    """
    folder = Path(path)
    config_path = folder / CONFIG_NAME
    hf = read_json(config_path)
    arch = architecture_for(hf, config_path)
    values = arch.hyso_config(hf, config_path)
    with WeightSource(folder) as source:
        _precheck(arch, values, source, config_path)
        try:
            config = config_class_for(arch.family).from_dict(values)
        except ModelConfigError as exc:
            raise HFFormatError(f"{config_path}: {exc}") from exc
        rules = arch.rules(config)
        with torch.device("meta"):
            model = model_class_for(arch.family)(config)
        _check_tensors(arch, config, rules, model, source)
        target = dtype or source.dtypes[arch.embedding]
        state = {name: _assemble(rule, source, target) for name, rule in rules.items()}
    _install(model, state, config, folder)
    model = model.to(device=device, dtype=target)
    model.hf_architecture = arch.architecture
    arch.finish(model)
    return model


def _precheck(
    arch: HFArchitecture, values: dict[str, Any], source: WeightSource, config_path: Path
) -> None:
    """Declared sizes against the files' headers, before anything is built."""
    bare = arch.embedding.removeprefix(arch.bare_prefix)
    if arch.bare_prefix and arch.embedding not in source.shapes and bare in source.shapes:
        source.add_prefix(arch.bare_prefix)
    names = list(source.names())
    if arch.embedding not in source.shapes:
        raise HFFormatError(f"{source.folder}: no tensor {arch.embedding!r} in the weights")
    have = source.shapes[arch.embedding]
    want = (values["vocab_size"], values["dim"])
    if have != want:
        raise HFFormatError(
            f"{source.file_of(arch.embedding)}: {arch.embedding} has shape {have}, but "
            f"{config_path} declares vocab_size {want[0]} and hidden size {want[1]}"
        )
    for key in ("num_layers", "num_decoder_layers"):
        declared = values.get(key)
        if declared is None:
            continue
        found = arch.count_layers(names, decoder=key == "num_decoder_layers")
        if declared != found:
            raise HFFormatError(
                f"{config_path}: declares {declared} layers ({key}) but the weights in "
                f"{source.folder} hold {found}"
            )


def _check_tensors(
    arch: HFArchitecture,
    config: TransformerConfig,
    rules: dict[str, Rule],
    model: HysoModel,
    source: WeightSource,
) -> None:
    """Every tensor the rules need is there with its shape; nothing else is."""
    own = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    needed: set[str] = set()
    missing: list[str] = []
    for name, rule in rules.items():
        for hf_name, shape in zip(rule.hf, rule.hf_shapes(own[name]), strict=True):
            needed.add(hf_name)
            if hf_name not in source.shapes:
                missing.append(hf_name)
            elif source.shapes[hf_name] != shape:
                raise HFFormatError(
                    f"{source.file_of(hf_name)}: {hf_name} has shape {source.shapes[hf_name]}, "
                    f"the config expects {shape}"
                )
            elif not source.dtypes[hf_name].is_floating_point:
                raise HFFormatError(
                    f"{source.file_of(hf_name)}: {hf_name} has dtype {source.dtypes[hf_name]}"
                )
    if missing:
        raise HFFormatError(f"{source.folder}: missing tensor(s): {', '.join(missing[:10])}")
    extra = [n for n in source.names() if n not in needed and not arch.is_ignored(n, config)]
    if extra:
        raise HFFormatError(
            f"{source.file_of(extra[0])}: unexpected tensor(s) the architecture does not "
            f"use: {', '.join(extra[:10])}"
        )


def _assemble(rule: Rule, source: WeightSource, dtype: torch.dtype) -> torch.Tensor:
    """The hyso tensor ``rule`` describes, in ``dtype``."""
    parts = [source.get(name) for name in rule.hf]
    if rule.transpose:
        tensor = parts[0].t()
    elif len(parts) > 1:
        tensor = torch.cat(parts)
    else:
        tensor = parts[0]
    return tensor.to(dtype).contiguous()


def _install(
    model: HysoModel, state: dict[str, torch.Tensor], config: TransformerConfig, folder: Path
) -> None:
    """Put ``state`` into the meta-built ``model``; rebuild the position tables; re-tie."""
    model.load_state_dict(state, strict=False, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.tok_emb.weight
    for module in model.modules():
        if isinstance(module, PositionEncoding) and any(b.is_meta for b in module.buffers()):
            fresh = type(module).from_config(config)
            for name, buffer in fresh.named_buffers(recurse=False):
                persistent = name not in module._non_persistent_buffers_set
                module.register_buffer(name, buffer, persistent=persistent)
    for name, tensor in chain(model.named_parameters(), model.named_buffers()):
        if tensor.is_meta:
            raise HFFormatError(f"{folder}: hyso tensor {name} was not loaded")


def to_hf(
    model: HysoModel, path: str | os.PathLike[str], *, architecture: str | None = None
) -> Path:
    """Write ``model`` as a Hugging Face folder (``config.json`` + ``model.safetensors``)
    that transformers' ``Auto*`` classes load; return the folder.

    ``architecture`` (a transformers class name) picks the class; by default the
    one the model was loaded from, else the first that expresses it exactly. A
    model none expresses raises :class:`HFExportError` naming the feature.
    """
    arch, hf_config = _choose(model, architecture)
    state = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for name, rule in arch.rules(model.config).items():
        tensor = state[name].detach().to("cpu")
        if rule.transpose:
            tensors[rule.hf[0]] = tensor.t().contiguous()
        elif rule.sizes is not None:
            for hf_name, part in zip(rule.hf, tensor.split(list(rule.sizes)), strict=True):
                tensors[hf_name] = part.clone()
        else:
            tensors[rule.hf[0]] = tensor.contiguous()
    dtype = str(state[next(iter(arch.rules(model.config)))].dtype).removeprefix("torch.")
    hf_config.update(
        dtype=dtype, torch_dtype=dtype, hyso_export_format_version=HF_EXPORT_FORMAT_VERSION
    )
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    blob = save(tensors, metadata={"format": "pt"})
    atomic_write_bytes(folder / SAFETENSORS_NAME, blob)
    text = json.dumps(hf_config, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(folder / CONFIG_NAME, text.encode())
    return folder


def _choose(model: HysoModel, name: str | None) -> tuple[HFArchitecture, dict[str, Any]]:
    """The architecture to export as and its config; every refusal named if none fits."""
    if name is not None:
        if name not in ARCHITECTURES:
            raise HFExportError(
                f"architecture {name!r} is not supported; known: {list(ARCHITECTURES)}"
            )
        candidates = [ARCHITECTURES[name]]
    else:
        preferred = getattr(model, "hf_architecture", None)
        candidates = sorted(ARCHITECTURES.values(), key=lambda a: a.architecture != preferred)
    reasons = []
    for arch in candidates:
        try:
            return arch, arch.hf_config(model.config, model.family)
        except Unsupported as exc:
            reasons.append(f"{arch.architecture}: {exc}")
    raise HFExportError("no transformers class expresses this model exactly: " + "; ".join(reasons))


register_hf_exporter(to_hf)
