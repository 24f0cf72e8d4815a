"""Building a model from a config's ``model`` section, reloading a run's best model and
tokenizer (LoRA runs: the base rebuilt, the adapters loaded), adding adapters, and
sampling text from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hyso.core.models.generation import GenerationArgs, select_next_token
from hyso.core.train.commands._common import CliError, require_tokenizer
from hyso.core.train.finetune import checkpoint_module, lora_of_checkpoint

__all__ = [
    "MODEL_FAMILIES",
    "LoadedRun",
    "add_adapter",
    "banned_special_ids",
    "build_model",
    "load_model_folder",
    "load_run",
    "model_family",
    "sample_text",
]

# The families ``hyso train`` knows how to train (the model classes come from hyso-models).
MODEL_FAMILIES = ("decoder_only", "encoder_only")


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
    """A fresh model of ``model.name`` (checked by :func:`model_family`) with ``vocab_size``,
    built by hyso-models' family registry (``init_from``, which names where the weights
    come from, is not a key of the model's config)."""
    from hyso.core.models import build_model as build_registered

    values = {k: v for k, v in model_cfg.items() if k != "init_from"}
    return build_registered({**values, "name": model_family(model_cfg)}, vocab_size=vocab_size)


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
    from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths

    tok_mod = require_tokenizer()
    paths = RunPaths.for_run_dir(run_dir)
    config_path, tok_path = paths.config_path, paths.tokenizer_path
    for path in (config_path, tok_path):
        if not path.is_file():
            raise CliError(f"{run_dir} has no {path.relative_to(run_dir)}: not a hyso train run")
    cfg = load_config(config_path)
    tokenizer = tok_mod.HysoBPETokenizer.load(tok_path)
    manager = CheckpointManager(
        CheckpointConfig.from_dir(
            directory=paths.checkpoints_dir, best_metric_name="val_loss", best_mode="min"
        )
    )
    checkpoint = manager.load_best(map_location="cpu") or manager.load_latest(map_location="cpu")
    if checkpoint is None:
        raise CliError(f"{paths.checkpoints_dir} holds no checkpoint to load")
    model = _run_model(_plain(cfg), tokenizer.vocab_size, checkpoint.extra)
    target = checkpoint_module(model, sharded=checkpoint.sharded)
    manager.restore_objects(checkpoint, target, restore_rng=False)
    _check_finite(model, paths.checkpoints_dir)
    model.eval()
    return LoadedRun(run_dir, cfg, tokenizer, model, checkpoint)


def _run_model(cfg: dict[str, Any], vocab_size: int, extra: Any) -> torch.nn.Module:
    """The model a run trained. A LoRA checkpoint holds only the adapters: the frozen
    base is rebuilt as ``hyso train`` built it (loaded from ``model.init_from``, else
    seeded by ``training.seed``) and the adapters of the checkpoint's settings are put
    on it."""
    model_cfg = dict(cfg["model"])
    init_from = model_cfg.pop("init_from", None)
    # A run started from model.init_from records the source's vocabulary size, which
    # may exceed its tokenizer's (Hugging Face models pad it).
    if init_from is not None:
        vocab_size = int(model_cfg.get("vocab_size") or vocab_size)
    lora = lora_of_checkpoint(extra)
    if lora is None:
        return build_model(model_cfg, vocab_size)
    from hyso.core.models.lora import LoRASettings, apply_lora

    if init_from is not None:
        from hyso.core.train.commands._init_from import initial_model, load_init_source

        model = initial_model(load_init_source(init_from), model_cfg)
    else:
        from hyso.core.storage import set_global_seed

        set_global_seed((cfg.get("training") or {}).get("seed") or 0)
        model = build_model(model_cfg, vocab_size)
    return apply_lora(model, LoRASettings.from_dict(lora))


def add_adapter(model: torch.nn.Module, folder: Path) -> torch.nn.Module:
    """``model`` with the adapters of ``folder`` (hyso's ``lora.json`` or PEFT's
    ``adapter_config.json``); anything that does not fit is a :class:`CliError`."""
    from hyso.core.models.lora_files import load_adapter

    if not folder.is_dir():
        raise CliError(f"--adapter {folder}: no such folder")
    try:
        return load_adapter(model, folder)
    except ValueError as exc:
        raise CliError(f"--adapter {folder}: {exc}") from None


def load_model_folder(folder: Path) -> LoadedRun:
    """A ``save_pretrained`` or Hugging Face model folder and the ``tokenizer.json`` in it
    (hyso's own format or Hugging Face's), ready to sample (CPU, eval mode)."""
    import json

    from hyso.core.models import load_hf, load_pretrained
    from hyso.core.train.commands.convert import _is_hyso_folder

    tok_mod = require_tokenizer()
    tok_path = folder / "tokenizer.json"
    if not tok_path.is_file():
        raise CliError(f"{folder} has no tokenizer.json: cannot turn text into ids")
    try:
        tok_doc = json.loads(tok_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{tok_path}: not valid JSON ({exc})") from exc
    hyso_tok = isinstance(tok_doc, dict) and "format_version" in tok_doc and "format" in tok_doc
    cls = tok_mod.HysoBPETokenizer
    tokenizer = cls.load(tok_path) if hyso_tok else cls.from_hf(tok_path)
    config = folder / "config.json"
    model = load_pretrained(folder) if _is_hyso_folder(config) else load_hf(folder)
    if int(model.vocab_size) < tokenizer.vocab_size:
        raise CliError(
            f"{tok_path} has {tokenizer.vocab_size} ids but the model in {folder} only "
            f"{model.vocab_size}: not the model's tokenizer"
        )
    _check_finite(model, folder)
    model.eval()
    return LoadedRun(folder, None, tokenizer, model, None)


def _check_finite(model: torch.nn.Module, where: Path) -> None:
    """Refuse weights holding NaN or infinity (a run that diverged before it was saved)."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CliError(
                f"the checkpoint in {where} holds non-finite values in {name!r}: "
                "the run diverged before it was saved"
            )


def sample_text(
    model: torch.nn.Module,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int | None = 0,
    *,
    top_p: float | None = None,
    allow_special: bool = False,
    on_text: Callable[[str], None] | None = None,
) -> str:
    """``prompt`` continued by ``model`` for up to ``max_new_tokens`` tokens, decoded
    (the prompt's trailing spaces are generated by the model, see below).

    Special tokens other than EOS are never drawn unless ``allow_special``; EOS ends
    the text. Ids past the tokenizer's vocabulary (a model whose vocabulary is padded,
    as Hugging Face models' often are) are never drawn. ``on_text`` receives the text
    piece by piece as tokens are produced (the prompt first); the pieces join to the
    returned text.
    """
    if model_family_of(model) != "decoder_only":
        raise CliError("only decoder_only models generate text; this run is an encoder")
    if max_new_tokens < 0:
        raise CliError(f"--max-new-tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise CliError(f"--temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise CliError(f"--top-k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise CliError(f"--top-p must be in (0, 1], got {top_p}")
    # Byte-level BPE attaches a space to the word after it (" foo"), so a prompt that
    # ends in spaces would leave the model a lone space token it rarely saw in
    # training. The trailing spaces are cut off the prompt and the first new token
    # is drawn among the tokens that start with them (token healing).
    head = prompt.rstrip(" ")
    tail = prompt[len(head) :] if head else ""
    head = head or prompt
    ids = list(tokenizer.encode(head)) or [tokenizer.bos_token_id]
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    banned = [] if allow_special else banned_special_ids(tokenizer)
    # ids past the tokenizer's (a Hugging Face model's padded vocabulary) have no text
    banned += range(tokenizer.vocab_size, int(getattr(model, "vocab_size", 0)))
    emit = _text_stream(tokenizer, on_text)
    if on_text is not None:
        on_text(head)
    new: list[int] = []
    if tail and max_new_tokens > 0:
        first = _first_token_with_prefix(
            model, ids, tail, tokenizer, temperature, top_k, generator, top_p=top_p
        )
        new.append(first)
        ids.append(first)
        emit(first)
    new += _generate_sliding(
        model,
        ids,
        max_new_tokens - len(new),
        temperature,
        top_k,
        tokenizer.eos_token_id,
        generator,
        top_p=top_p,
        banned=banned,
        on_token=emit,
    )
    emit(None)
    return head + tokenizer.decode(new)


def banned_special_ids(tokenizer: Any) -> list[int]:
    """Ids of the tokenizer's special tokens other than EOS (never sampled by default)."""
    ids = {getattr(tokenizer, f"{r}_token_id", None) for r in ("pad", "bos", "unk", "mask")}
    table = getattr(tokenizer, "special_token_ids", None)
    if isinstance(table, dict):
        ids.update(table.values())
    eos = tokenizer.eos_token_id
    return sorted(i for i in ids if isinstance(i, int) and i != eos and 0 <= i)


def _text_stream(
    tokenizer: Any, on_text: Callable[[str], None] | None
) -> Callable[[int | None], None]:
    """A sink for new token ids (``None`` flushes) that passes their text to ``on_text``
    through the tokenizer's stream decoder (whole characters only)."""
    if on_text is None:
        return lambda _tid: None
    if hasattr(tokenizer, "stream_decoder"):
        decoder = tokenizer.stream_decoder()

        def feed(tid: int | None) -> None:
            piece = decoder.flush() if tid is None else decoder.feed(tid)
            if piece:
                on_text(piece)

        return feed

    def feed_whole(tid: int | None) -> None:
        if tid is not None:
            on_text(tokenizer.decode([tid]))

    return feed_whole


def _first_token_with_prefix(
    model: torch.nn.Module,
    ids: list[int],
    prefix: str,
    tokenizer: Any,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
    *,
    top_p: float | None = None,
) -> int:
    """Sample one token after ``ids`` among the non-special tokens whose text starts
    with ``prefix`` (greedy when ``temperature`` is 0)."""
    specials = set(banned_special_ids(tokenizer)) | {tokenizer.eos_token_id}
    allowed = torch.tensor(
        [
            i not in specials and tokenizer.decode([i]).startswith(prefix)
            for i in range(tokenizer.vocab_size)
        ]
    )
    if not allowed.any():
        return int(tokenizer.encode(prefix)[0])
    logits = _next_logits(model, ids)  # (V,), V >= the tokenizer's vocabulary
    padded = torch.zeros(logits.shape[-1], dtype=torch.bool)
    padded[: allowed.numel()] = allowed
    logits = logits.masked_fill(~padded.to(logits.device), float("-inf"))
    args = _sampling_args(temperature, top_k, top_p, generator)
    return int(select_next_token(logits[None, :], args))


def _sampling_args(
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> GenerationArgs:
    """hyso-models' sampling settings: greedy when ``temperature`` is 0."""
    return GenerationArgs(
        1,
        temperature if temperature > 0 else 1.0,
        top_k,
        top_p,
        None,
        temperature > 0,
        generator,
    )


def _next_logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    """The logits ``(V,)`` for the token after the last ``max_seq_len`` tokens of ``ids``."""
    context = ids[-int(model.max_seq_len) :]
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(torch.tensor([context], dtype=torch.long, device=device))[0, -1].float()


def _generate_sliding(
    model: torch.nn.Module,
    ids: list[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    eos_id: int,
    generator: torch.Generator | None,
    *,
    top_p: float | None = None,
    banned: list[int] | None = None,
    on_token: Callable[[int], None] | None = None,
) -> list[int]:
    """Up to ``max_new_tokens`` ids after ``ids``, stopping at ``eos_id``, drawn by the
    model's cached ``generate``.

    Text may run past the model's context: once the window of ``max_seq_len`` tokens
    is full, generation goes on from its last half (recomputed once into a new cache).
    ``banned`` ids are never chosen; ``on_token`` sees each id as it comes.
    """
    window = int(model.max_seq_len)
    device = next(model.parameters()).device
    tokens = list(ids)
    new: list[int] = []
    ended = False

    def take(step: torch.Tensor) -> None:  # (1,): the id chosen at this step
        nonlocal ended
        token = int(step[0])
        ended = ended or token == eos_id
        if not ended:
            new.append(token)
            tokens.append(token)
            if on_token is not None:
                on_token(token)

    while len(new) < max_new_tokens and not ended:
        context = tokens[-window:]
        if len(context) >= window:  # full: keep the last half, the cache fills the rest
            context = tokens[-max(1, window // 2) :]
        model.generate(
            torch.tensor([context], dtype=torch.long, device=device),
            min(max_new_tokens - len(new), window - len(context)),
            temperature=temperature if temperature > 0 else 1.0,
            top_k=top_k,
            top_p=top_p,
            eos_token_id=eos_id,
            do_sample=temperature > 0,
            generator=generator,
            banned_ids=banned or None,
            on_token=take,
        )
    return new


def model_family_of(model: torch.nn.Module) -> str:
    """``decoder_only`` for models with ``generate``, else ``encoder_only``."""
    return "decoder_only" if hasattr(model, "generate") else "encoder_only"


def _plain(cfg: Any) -> dict[str, Any]:
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
