"""Building a model from a config's ``model`` section, reloading a run's best model and
tokenizer, and sampling text from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hyso.core.train.commands._common import CliError, require_tokenizer

__all__ = [
    "MODEL_FAMILIES",
    "TOKENIZER_FILE",
    "LoadedRun",
    "build_model",
    "load_run",
    "model_family",
    "sample_text",
]

TOKENIZER_FILE = "tokenizer.json"
MODEL_FAMILIES = ("decoder_only", "encoder_only")
_NON_MODEL_KEYS = ("name",)


def model_family(model_cfg: dict[str, Any]) -> str:
    """``model.name`` (default ``decoder_only``), checked against what the CLI trains."""
    family = model_cfg.get("name", "decoder_only")
    if family not in MODEL_FAMILIES:
        raise CliError(
            f"model.name {family!r} is not trainable by hyso train: use decoder_only "
            "(a language model) or encoder_only (trained as a masked language model)"
        )
    return family


def build_model(model_cfg: dict[str, Any], vocab_size: int) -> torch.nn.Module:
    """A fresh model of ``model.name`` from the rest of the section, with ``vocab_size``."""
    family = model_family(model_cfg)
    if family == "decoder_only":
        from hyso.core.models.decoder_only import HysoDecoderOnly as cls
    else:
        from hyso.core.models.encoder_only import HysoEncoderOnly as cls
    kwargs = {k: v for k, v in model_cfg.items() if k not in _NON_MODEL_KEYS}
    kwargs["vocab_size"] = vocab_size
    return cls.from_config(kwargs)


@dataclass
class LoadedRun:
    """A run's config, tokenizer and model with its best (else latest) weights."""

    run_dir: Path
    config: Any
    tokenizer: Any
    model: torch.nn.Module
    checkpoint: Any


def load_run(run_dir: Path) -> LoadedRun:
    """Load ``run_dir``'s config.yaml, tokenizer and best checkpoint (CPU, eval mode)."""
    from hyso.core.config import load_config
    from hyso.core.storage import CheckpointConfig, CheckpointManager

    tok_mod = require_tokenizer()
    config_path = run_dir / "config.yaml"
    tok_path = run_dir / "artifacts" / TOKENIZER_FILE
    for path in (config_path, tok_path):
        if not path.is_file():
            raise CliError(f"{run_dir} has no {path.relative_to(run_dir)}: not a hyso train run")
    cfg = load_config(config_path)
    tokenizer = tok_mod.HysoBPETokenizer.load(tok_path)
    model_cfg = _plain(cfg)["model"]
    model = build_model(model_cfg, tokenizer.vocab_size)
    manager = CheckpointManager(
        CheckpointConfig.from_dir(
            directory=run_dir / "checkpoints", best_metric_name="val_loss", best_mode="min"
        )
    )
    checkpoint = manager.load_best(map_location="cpu") or manager.load_latest(map_location="cpu")
    if checkpoint is None:
        raise CliError(f"{run_dir / 'checkpoints'} holds no checkpoint to load")
    manager.restore_objects(checkpoint, model, restore_rng=False)
    model.eval()
    return LoadedRun(run_dir, cfg, tokenizer, model, checkpoint)


def sample_text(
    model: torch.nn.Module,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int | None = 0,
) -> str:
    """``prompt`` continued by ``model`` for up to ``max_new_tokens`` tokens, decoded."""
    if model_family_of(model) != "decoder_only":
        raise CliError("only decoder_only models generate text; this run is an encoder")
    if max_new_tokens < 0:
        raise CliError(f"--max-new-tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise CliError(f"--temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise CliError(f"--top-k must be >= 1, got {top_k}")
    ids = list(tokenizer.encode(prompt)) or [tokenizer.bos_token_id]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    new = _generate_sliding(
        model, ids, max_new_tokens, temperature, top_k, tokenizer.eos_token_id, generator
    )
    return prompt + tokenizer.decode(new)


def _generate_sliding(
    model: torch.nn.Module,
    ids: list[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    eos_id: int,
    generator: torch.Generator | None,
) -> list[int]:
    """Up to ``max_new_tokens`` ids after ``ids``, stopping at ``eos_id``.

    The model sees at most ``max_seq_len`` tokens, so longer outputs are generated in
    chunks, each conditioned on the last half-context of what came before.
    """
    window = int(model.max_seq_len)
    keep = max(1, window // 2)
    tokens = list(ids)
    new: list[int] = []
    while len(new) < max_new_tokens:
        context = tokens[-keep:] if len(tokens) > keep else tokens
        if len(context) >= window:
            context = context[-(window - 1) :]
        step = min(max_new_tokens - len(new), window - len(context))
        input_ids = torch.tensor([context], dtype=torch.long)  # (1, T)
        with torch.no_grad():
            out = model.generate(
                input_ids,
                max_new_tokens=step,
                temperature=temperature if temperature > 0 else 1.0,
                top_k=top_k,
                do_sample=temperature > 0,
                eos_token_id=eos_id,
                generator=generator,
            )
        chunk = out[0, input_ids.shape[1] :].tolist()
        if eos_id in chunk:
            new.extend(chunk[: chunk.index(eos_id)])
            break
        new.extend(chunk)
        tokens.extend(chunk)
        if not chunk:
            break
    return new


def model_family_of(model: torch.nn.Module) -> str:
    """``decoder_only`` for models with ``generate``, else ``encoder_only``."""
    return "decoder_only" if hasattr(model, "generate") else "encoder_only"


def _plain(cfg: Any) -> dict[str, Any]:
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
