"""``hyso train CONFIG [key=value ...]``: train a language model and report on it.

Decoder-only models learn next-token prediction; encoder-only models are trained as
masked language models (15% of positions, the tokenizer's mask token). Validation is
reported in nats per token and in bits per byte beside ``gzip -9``, ``xz -9e`` and
``bzip2 -9`` on the same text.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from hyso.core.train.commands._common import CliError, format_count, format_float
from hyso.core.train.commands._lm_data import PreparedData, chat_datasets, prepare_data
from hyso.core.train.commands._model import build_model, model_family, sample_text
from hyso.core.train.data.compression import (
    CompressorBitsPerByte,
    bits_per_byte,
    compressors_stream_bits_per_byte,
)
from hyso.core.train.data.corpus import CorpusError
from hyso.core.train.data.windows import MaskedLMWindows, NextTokenWindows
from hyso.core.train.distributed import DistContext
from hyso.core.train.epoch_order import LeanRandomSampler
from hyso.core.train.finetune import (
    adapter_hint,
    apply_finetune,
    checkpoint_module,
    export_adapter,
    finetune_line,
)
from hyso.core.train.fsdp import is_sharded
from hyso.core.train.redact import redact_env
from hyso.core.train.run_config import RunConfig, load_run_config
from hyso.core.train.settings import TrainingSettings, resolve_settings

if TYPE_CHECKING:
    from hyso.core.storage import RunPaths
    from hyso.core.train.commands._init_from import InitSource
    from hyso.core.train.trainer import Trainer

__all__ = [
    "TrainOutcome",
    "iter_predicted_bytes",
    "load_cli_config",
    "make_optimizer",
    "make_scheduler",
    "register",
    "run",
    "train_from_config",
]


@dataclass
class TrainOutcome:
    """What one ``hyso train`` produced."""

    run_dir: Path
    run_id: str
    best_val_loss: float | None
    val_bpb: float | None
    gzip_bpb: float
    steps: int
    num_parameters: int
    train_seconds: float
    sample: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    xz_bpb: float = math.nan  # xz -9e on the same bytes as gzip_bpb
    bzip2_bpb: float = math.nan  # bzip2 -9 on the same bytes


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a config file",
        description="Train the model of CONFIG (YAML/JSON) on the embedded Python "
        "standard-library corpus, or on data.paths=[...] globs, files or folders of "
        ".txt/.jsonl/.parquet, streamed into token shards (see hyso prepare). "
        "Every key of the training, data and run sections is checked against the "
        "settings schema first (an unknown key is an error naming the closest known "
        "one; keys of your own go under training.extra; the reference is in "
        "hyso-train's README). Writes a run folder and prints the best validation "
        "loss, bits per byte beside gzip -9, xz -9e and bzip2 -9, the run folder and a "
        "short sample.",
        epilog="example: hyso train configs/lm.yaml training.max_steps=200 model.dim=128",
    )
    p.add_argument("config", nargs="?", help="path to a YAML or JSON config (e.g. configs/lm.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument(
        "--runs-root", default=None, help="folder for run folders (default: run.root, else runs)"
    )
    p.add_argument("--name", default=None, help="a name appended to the run id")
    p.add_argument("--prompt", default="def ", help='prompt of the final sample (default "def ")')
    p.add_argument(
        "--sample-tokens", type=int, default=120, help="tokens in the final sample (0: none)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the killed or interrupted run in RUN_DIR from its latest checkpoint, "
        "with its own config.yaml, exactly as if it had not stopped (no CONFIG or "
        "overrides allowed; a finished run prints 'already finished' and exits 0; a run "
        "without a checkpoint starts again from step 0 in the same folder)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    resume_dir: Path | None = None
    if args.resume is not None:
        resume_dir, cfg = _resume_config(args)
        if cfg is None:
            return 0
    elif args.config is None:
        raise CliError("the argument config is required (or --resume RUN_DIR)")
    else:
        cfg = load_cli_config(args.config, args.overrides)
    if args.no_progress:
        cfg = _with_training_key(cfg, "progress_bar", False)
    from hyso.core.train.distributed import distributed_session

    training = load_run_config(cfg).training  # every setting checked before anything runs
    # Under torchrun the process group lives for the whole command and is destroyed
    # at its end (after a barrier on success), so no rank exits with it still open.
    with distributed_session(training.device, training.dist_timeout_s):
        outcome = train_from_config(
            cfg,
            runs_root=args.runs_root,
            name=args.name,
            prompt=args.prompt,
            sample_tokens=args.sample_tokens,
            resume_dir=resume_dir,
        )
    if "rank" not in outcome.extra:  # only rank 0 reports
        print_outcome(outcome)
    return 0


def _resume_config(args: argparse.Namespace) -> tuple[Path, Any]:
    """The run folder and config of ``--resume RUN_DIR`` (config None: already finished).

    Any CONFIG or override is refused: every setting can change what the remaining
    steps compute, so the run continues with exactly the config it recorded.
    """
    extra = ([args.config] if args.config else []) + list(args.overrides)
    if extra:
        raise CliError(
            f"--resume {args.resume}: takes no CONFIG or key=value overrides (got "
            f"{' '.join(extra)}); the run continues with its own config.yaml so that it "
            "stays exact"
        )
    if args.runs_root is not None or args.name is not None:
        raise CliError(f"--resume {args.resume}: --runs-root and --name do not apply")
    from hyso.core.storage import RunPaths, load_manifest

    run_dir = Path(args.resume)
    paths = RunPaths.for_run_dir(run_dir.resolve())
    if not paths.config_path.is_file():
        raise CliError(
            f"--resume {args.resume}: {paths.config_path} does not exist; not a hyso run folder"
        )
    if paths.manifest_path.is_file():
        status = load_manifest(paths.manifest_path).status
        if status == "finished":
            print(f"hyso train: run {run_dir} already finished; nothing to resume")
            return run_dir, None
    return run_dir, load_cli_config(str(paths.config_path), [])


def load_cli_config(path: str, overrides: list[str]) -> Any:
    """``load_config_with_overrides`` with a one-line error for a missing file."""
    if not Path(path).is_file():
        raise CliError(f"config file {path} does not exist")
    from hyso.core.config import load_config_with_overrides

    pairs = _init_from_override(path, overrides)
    return load_config_with_overrides(path=path, override_pairs=pairs)


def _init_from_override(path: str, overrides: list[str]) -> list[str]:
    """``model.init_from=PATH`` adds the key when the config has none (no ``+`` needed:
    the key is optional and documented, not one of the user's own)."""
    wanted = [i for i, text in enumerate(overrides) if text.split("=", 1)[0] == "model.init_from"]
    if not wanted:
        return list(overrides)
    from hyso.core.config import load_config

    model = load_config(path).to_dict().get("model")
    if isinstance(model, dict) and "init_from" in model:
        return list(overrides)
    return [("+" + text if i in wanted else text) for i, text in enumerate(overrides)]


def print_outcome(o: TrainOutcome, file: Any = None) -> None:
    """The closing lines of ``hyso train``."""
    out = file or sys.stdout
    print(f"best val loss: {format_float(o.best_val_loss)} nats/token", file=out)
    if o.val_bpb is not None:
        print(f"val bits/byte: {o.val_bpb:.3f} ({_references_note(o)})", file=out)
    print(
        f"steps: {o.steps}, parameters: {format_count(o.num_parameters)}, "
        f"training time: {o.train_seconds:.1f}s wall, "
        f"{o.extra.get('cpu_seconds', math.nan):.1f}s CPU",
        file=out,
    )
    print(f"run folder: {o.run_dir}", file=out)
    if o.extra.get("adapter") is not None:
        print(adapter_hint(o.run_dir, o.extra["adapter"]), file=out)
    if o.sample is not None:
        print("sample:", file=out)
        print(o.sample, file=out)


def _references_note(o: TrainOutcome) -> str:
    """``gzip -9: 1.781, xz -9e: 1.523, bzip2 -9: 1.484; better than gzip, not better
    than xz or bzip2`` (a reference that was not measured is left out)."""
    refs = [("gzip", "gzip -9", o.gzip_bpb), ("xz", "xz -9e", o.xz_bpb)]
    refs.append(("bzip2", "bzip2 -9", o.bzip2_bpb))
    refs = [r for r in refs if not math.isnan(r[2])]
    sizes = ", ".join(f"{label}: {value:.3f}" for _, label, value in refs)
    val = o.val_bpb if o.val_bpb is not None else math.nan
    beaten = [name for name, _, value in refs if val < value]
    not_beaten = [name for name, _, value in refs if not val < value]
    verdicts = [f"better than {_listed(beaten, 'and')}"] if beaten else []
    if not_beaten:
        verdicts.append(f"not better than {_listed(not_beaten, 'or')}")
    return f"{sizes}; {', '.join(verdicts)}"


def _listed(names: list[str], word: str) -> str:
    """``a``, ``a and b``, ``a, b and c`` (``word`` in place of ``and``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


@dataclass
class _Parts:
    """What training is made of, built from the checked config and the prepared data."""

    family: str
    seed: int
    seq_len: int
    model: torch.nn.Module
    num_parameters: int
    train_loader: DataLoader
    val_loader: DataLoader
    val_windows: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    epochs: int


@dataclass
class _Fitted:
    """What a finished ``fit`` left behind."""

    best_val_loss: float | None
    steps: int
    seconds: float
    cpu_seconds: float


def train_from_config(
    cfg: Any,
    *,
    runs_root: str | Path | None = None,
    name: str | None = None,
    prompt: str = "def ",
    sample_tokens: int = 120,
    log: Callable[[str], None] | None = None,
    resume_dir: str | Path | None = None,
) -> TrainOutcome:
    """Train the model of ``cfg`` end to end; see the module docstring.

    The steps: check every setting, prepare the data (rank 0 first), build the model,
    loaders, optimizer and schedule, create the run folder, train, then (rank 0) measure
    bits per byte, sample, and add the results to the manifest. With ``resume_dir``
    the run folder is reopened and training continues from its latest checkpoint.
    """
    from hyso.core.train.distributed import init_distributed

    settings = load_run_config(cfg)
    cfg, settings, source = _resolve_init_from(cfg, settings)
    family = model_family(settings.model)
    _preflight(settings)
    say = log or _to_stderr
    _set_threads(settings.training.num_threads)
    dist = init_distributed(settings.training.device, settings.training.dist_timeout_s)
    prepared = _prepare_data(settings, dist, say if dist.is_rank_zero else _quiet, source)
    parts = _build_parts(settings, family, prepared, dist.world_size, source)
    if resume_dir is None:
        run_paths = _create_run_folder(settings, runs_root, name)
    else:
        run_paths = _reopen_run_folder(resume_dir)
    trainer = _make_trainer(cfg, settings, prepared, parts, run_paths, dist.is_rank_zero, source)
    if resume_dir is not None:
        trainer.run_record.keep_config = True  # type: ignore[union-attr]  # run_paths given
    if dist.is_rank_zero:
        say(
            f"run {run_paths.run_id}: {family}, {format_count(parts.num_parameters)} "
            f"parameters, {len(prepared.train_tokens):,} train / {len(prepared.val_tokens):,} "
            f"val tokens ({_tokens_note(prepared)})"
        )
        line = finetune_line(parts.model)
        if line is None and source is not None:
            line = "full fine-tuning: every parameter trains"
        if line is not None:
            say(line)
    before = _loss_before_training(trainer, parts, source, say) if resume_dir is None else None
    fitted = _fit(trainer, parts, resume="latest" if resume_dir is not None else None)
    outcome = TrainOutcome(
        run_dir=run_paths.run_dir,
        run_id=run_paths.run_id,
        best_val_loss=fitted.best_val_loss,
        val_bpb=None,
        gzip_bpb=math.nan,
        steps=fitted.steps,
        num_parameters=parts.num_parameters,
        train_seconds=fitted.seconds,
        sample=None,
        extra={"cpu_seconds": fitted.cpu_seconds, "init_val_loss": before},
    )
    if not dist.is_rank_zero:
        outcome.extra["rank"] = dist.rank
        return outcome
    if is_sharded(parts.model):  # rank 0 evaluates alone: a whole model, from the checkpoint
        parts.model = apply_finetune(_initial_model(settings, prepared, source), settings.finetune)
    bpb_bytes = _evaluate_best(trainer, parts, prepared, outcome, prompt, sample_tokens)
    outcome.extra["adapter"] = export_adapter(parts.model, run_paths.artifacts_dir)
    tokens_seen = (
        fitted.steps
        * settings.training.batch_size
        * settings.training.grad_accum_steps
        * parts.seq_len
        * dist.world_size
    )
    _record_results(trainer, outcome, bpb_bytes, tokens_seen)
    return outcome


def _resolve_init_from(cfg: Any, settings: RunConfig) -> tuple[Any, RunConfig, InitSource | None]:
    """``model.init_from``: load the source and resolve the model section against it
    (a contradicting key is an error naming both values); else nothing changes."""
    if settings.init_from is None:
        return cfg, settings, None
    from hyso.core.train.commands._init_from import apply_init_from, load_init_source

    source = load_init_source(settings.init_from)
    cfg = apply_init_from(cfg, source)
    return cfg, load_run_config(cfg), source


def _loss_before_training(
    trainer: Trainer, parts: _Parts, source: InitSource | None, say: Callable[[str], None]
) -> float | None:
    """With ``model.init_from``, the validation loss of the loaded weights before the
    first update (rank 0, float32): the source's own loss on the same data and windows.
    Without it, None."""
    if source is None or not trainer.is_rank_zero:
        return None
    from hyso.core.train.loss import IGNORE_INDEX, forward_for_loss, token_cross_entropy

    model = trainer.model
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64)
    tokens = 0
    rng = torch.get_rng_state()  # iterating a loader draws a seed: training must not see it
    try:
        with torch.no_grad():
            for inputs, targets in parts.val_loader:
                batch = (inputs.to(trainer.device), targets.to(trainer.device))
                logits, aligned = forward_for_loss(model, batch)
                total += token_cross_entropy(logits, aligned, reduction="sum").double().cpu()
                tokens += int((aligned != IGNORE_INDEX).sum())
    finally:
        model.train(was_training)
        torch.set_rng_state(rng)
    loss = float(total) / tokens if tokens else math.nan
    say(f"model.init_from {source.path}: val loss {loss:.6f} before the first update")
    return loss


def _preflight(settings: RunConfig) -> None:
    """What can be checked before data, model or run folder exist: text that can be
    written, the device, and a model that fits in memory."""
    from hyso.core.train.preflight import check_device, check_model_size, check_writable_text

    check_writable_text(settings.raw)
    check_device(settings.training.device)
    check_model_size(settings.model, settings.data.vocab_size, settings.training.device)


def _prepare_data(
    settings: RunConfig,
    dist: DistContext,
    say: Callable[[str], None],
    source: InitSource | None = None,
) -> PreparedData:
    """Corpus, tokenizer (``model.init_from``'s, else trained) and token cache; under
    torchrun rank 0 builds them, then the other ranks read the cache."""
    if not dist.is_rank_zero:
        dist.barrier()
    prepared = prepare_data(
        settings.data.to_dict(),
        log=say,
        tokenizer=None if source is None else source.tokenizer,
        tokenizer_origin=None if source is None else str(source.path),
    )
    if dist.is_rank_zero:
        dist.barrier()
    return prepared


def _build_parts(
    settings: RunConfig,
    family: str,
    prepared: PreparedData,
    world_size: int,
    source: InitSource | None = None,
) -> _Parts:
    """Windows, loaders, model (seeded, or ``model.init_from``'s weights), optimizer and
    schedule."""
    from hyso.core.storage import set_global_seed

    training = settings.training
    seq_len = int(settings.data.seq_len or settings.model.get("max_seq_len") or 128)
    batch_size = training.batch_size
    seed = training.seed or 0
    train_ds, val_ds = _datasets(family, prepared, seq_len, seed, settings.data.mask_prob)
    _check_sizes(train_ds, val_ds, batch_size, seq_len, prepared)
    set_global_seed(seed)
    model = _initial_model(settings, prepared, source)
    model = apply_finetune(model, settings.finetune)  # LoRA: adapters on, the rest frozen
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(  # shuffled as by shuffle=True, without a list of every index
        train_ds,
        batch_size=batch_size,
        sampler=LeanRandomSampler(train_ds, generator=gen),
        drop_last=True,
        generator=gen,
        collate_fn=getattr(train_ds, "collate", None),  # chat: pad to the batch's longest
    )
    epochs = training.epochs or 1
    optimizer = make_optimizer(model, training)
    # optimizer steps per epoch, after the loader is sharded over the processes
    steps_per_epoch = len(train_loader) // training.grad_accum_steps // max(1, world_size)
    return _Parts(
        family=family,
        seed=seed,
        seq_len=seq_len,
        model=model,
        num_parameters=int(model.num_parameters()),
        train_loader=train_loader,
        val_loader=DataLoader(
            val_ds,
            batch_size=batch_size,
            shuffle=False,
            collate_fn=getattr(val_ds, "collate", None),
        ),
        val_windows=val_ds,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, training, epochs, steps_per_epoch),
        epochs=epochs,
    )


def _initial_model(
    settings: RunConfig, prepared: PreparedData, source: InitSource | None
) -> torch.nn.Module:
    """A fresh model, or with ``model.init_from`` the resolved model holding its weights."""
    if source is None:
        return build_model(settings.model, prepared.tokenizer.vocab_size)
    from hyso.core.train.commands._init_from import initial_model

    return initial_model(source, settings.model)


def _create_run_folder(
    settings: RunConfig, runs_root: str | Path | None, name: str | None
) -> RunPaths:
    """A new run folder under ``--runs-root``, else ``run.root`` (rank 0 creates it)."""
    from hyso.core.train.distributed import create_run_paths

    return create_run_paths(runs_root or settings.run.root, name)


def _reopen_run_folder(run_dir: str | Path) -> RunPaths:
    """The run folder of ``--resume``; without a checkpoint its metrics rows are dropped,
    since training starts again from step 0."""
    from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths

    paths = RunPaths.open(run_dir)
    mgr = CheckpointManager(CheckpointConfig.from_dir(directory=paths.checkpoints_dir))
    if mgr.latest_path is None and paths.metrics_path.exists():
        paths.metrics_path.unlink()
    return paths


def _make_trainer(
    cfg: Any,
    settings: RunConfig,
    prepared: PreparedData,
    parts: _Parts,
    run_paths: RunPaths,
    rank0: bool,
    source: InitSource | None = None,
) -> Trainer:
    """The Trainer, its checkpoints (best by val_loss) and what its manifest records."""
    from hyso.core.storage import CheckpointConfig, CheckpointManager, get_logger
    from hyso.core.train.trainer import Trainer

    logger = get_logger("hyso.train", log_dir=run_paths.logs_dir if rank0 else None, console=False)
    checkpoints = CheckpointManager(
        CheckpointConfig.from_dir(
            directory=run_paths.checkpoints_dir, best_metric_name="val_loss", best_mode="min"
        )
    )
    trainer = Trainer(
        model=parts.model,
        optimizer=parts.optimizer,
        scheduler=parts.scheduler,
        tokenizer=prepared.tokenizer,
        config=cfg,
        run_paths=run_paths,
        checkpoint_manager=checkpoints,
        logger=logger,
    )
    raw = redact_env(settings.raw, cfg)  # values read from the environment stay unresolved
    trainer.run_record.describe(  # type: ignore[union-attr]  # run_paths is given
        model={
            **(raw.get("model") or {}),
            "name": parts.family,
            "vocab_size": int(getattr(parts.model, "vocab_size", prepared.tokenizer.vocab_size)),
            **({} if source is None else {"init_from": source.record()}),
        },
        training=dict(raw.get("training") or {}),
        data={**(raw.get("data") or {}), **prepared.manifest_record()},
        num_parameters=parts.num_parameters,
        command="hyso train",
    )
    return trainer


def _fit(trainer: Trainer, parts: _Parts, resume: str | None = None) -> _Fitted:
    """Train (from the ``resume`` checkpoint), wait for the last checkpoint, and time it
    (wall and CPU seconds)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(
        train_loader=parts.train_loader,
        val_loader=parts.val_loader,
        epochs=parts.epochs,
        resume=resume,
    )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if trainer.checkpoint_manager is not None:
        trainer.checkpoint_manager.wait()
    return _Fitted(
        best_val_loss=_finite(trainer.best_val_loss),
        steps=int(trainer.global_step),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
    )


def _evaluate_best(
    trainer: Trainer,
    parts: _Parts,
    prepared: PreparedData,
    outcome: TrainOutcome,
    prompt: str,
    sample_tokens: int,
) -> int | None:
    """Load the best checkpoint; fill in bits per byte beside gzip -9, xz -9e and
    bzip2 -9, and a sample.

    Returns the number of bytes bits per byte was measured on (None: not measured).
    """
    checkpoints = trainer.checkpoint_manager
    model = parts.model
    best = checkpoints.load_best(map_location="cpu") if checkpoints is not None else None
    if checkpoints is not None and best is not None:
        target = checkpoint_module(model, sharded=best.sharded)
        checkpoints.restore_objects(best, target, restore_rng=False)
    model.eval()
    if parts.family != "decoder_only" or prepared.chat is not None:
        _set_references(outcome, compressors_stream_bits_per_byte(prepared.corpus.val_chunks()))
        return None  # chat: the loss is over the assistant's tokens only
    # The model and the compressors are measured on the same bytes: those the windows
    # predict, compressed as they are produced (the validation text is never held whole).
    chunks = iter_predicted_bytes(parts.val_windows, prepared.tokenizer)
    num_bytes = _set_references(outcome, compressors_stream_bits_per_byte(chunks))
    if outcome.best_val_loss is not None:
        outcome.val_bpb = bits_per_byte(
            outcome.best_val_loss, parts.val_windows.num_targets, num_bytes
        )
    if sample_tokens > 0:
        outcome.sample = sample_text(
            model, prepared.tokenizer, prompt, max_new_tokens=sample_tokens, seed=parts.seed
        )
    return num_bytes


def _set_references(outcome: TrainOutcome, refs: CompressorBitsPerByte) -> int:
    """Copy the compressors' bits per byte into ``outcome``; the bytes they measured."""
    outcome.gzip_bpb, outcome.xz_bpb, outcome.bzip2_bpb = refs.gzip, refs.xz, refs.bzip2
    return refs.num_bytes


def _record_results(
    trainer: Trainer, outcome: TrainOutcome, bpb_bytes: int | None, tokens_seen: int
) -> None:
    """Add what ``hyso train`` measured after training to the run's manifest."""
    if_missing: dict[str, Any] = {"global_step": outcome.steps}
    if outcome.best_val_loss is not None:
        if_missing["best_val_loss"] = outcome.best_val_loss
    trainer.run_record.add_results(  # type: ignore[union-attr]  # run_paths is given
        {
            "val_bpb": outcome.val_bpb,
            "gzip_bpb": outcome.gzip_bpb,
            "xz_bpb": _finite(outcome.xz_bpb),
            "bzip2_bpb": _finite(outcome.bzip2_bpb),
            "bpb_bytes": bpb_bytes,
            "train_seconds": outcome.train_seconds,
            "train_cpu_seconds": outcome.extra["cpu_seconds"],
            "train_tokens_seen": tokens_seen,
            **_init_results(outcome),
        },
        if_missing=if_missing,
    )


def _init_results(outcome: TrainOutcome) -> dict[str, Any]:
    """``init_val_loss``: the validation loss before the first update (model.init_from)."""
    loss = outcome.extra.get("init_val_loss")
    return {} if loss is None else {"init_val_loss": loss}


def make_optimizer(
    model: torch.nn.Module, training: TrainingSettings | Mapping[str, Any]
) -> torch.optim.Optimizer:
    """AdamW (``training.lr``, ``betas``); ``weight_decay`` on matrices only, not on
    norms and biases."""
    s = _training(training)
    lr, wd = float(s.lr), float(s.weight_decay)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=s.betas)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    training: TrainingSettings | Mapping[str, Any],
    epochs: int,
    steps_per_epoch: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup then cosine decay to ``min_lr_ratio`` × lr.

    With ``scheduler_interval: step`` the schedule spans ``max_steps`` (or every
    optimizer step of every epoch) and warms up for ``warmup_steps``; with ``epoch``
    it spans the epochs and has no warmup.
    """
    s = _training(training)
    min_ratio = float(s.min_lr_ratio)
    if s.scheduler_interval == "step":
        total = int(s.max_steps or epochs * max(1, steps_per_epoch))
        warmup = s.warmup_steps
    else:
        total, warmup = epochs, 0
    total = max(1, total)

    def factor(t: int) -> float:
        if warmup and t < warmup:
            return (t + 1) / warmup
        progress = min(1.0, (t - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _training(training: TrainingSettings | Mapping[str, Any]) -> TrainingSettings:
    if isinstance(training, TrainingSettings):
        return training
    return resolve_settings({"training": training})


def _datasets(
    family: str, prepared: PreparedData, seq_len: int, seed: int, mask_prob: float
) -> tuple[Any, Any]:
    if prepared.chat is not None:
        return chat_datasets(prepared, family, seq_len)
    if family == "decoder_only":
        return (
            NextTokenWindows(prepared.train_tokens, seq_len),
            NextTokenWindows(prepared.val_tokens, seq_len),
        )
    tok = prepared.tokenizer
    make = lambda tokens, s: MaskedLMWindows(  # noqa: E731
        tokens, seq_len, tok.mask_token_id, tok.vocab_size, mask_prob=mask_prob, seed=s
    )
    return make(prepared.train_tokens, seed), make(prepared.val_tokens, seed + 1)


def _check_sizes(
    train_ds: Any, val_ds: Any, batch_size: int, seq_len: int, prepared: PreparedData
) -> None:
    if len(train_ds) < batch_size:
        raise CorpusError(
            f"data: the training split has {len(prepared.train_tokens)} tokens, "
            f"{len(train_ds)} window(s) of {seq_len}; one batch needs training.batch_size "
            f"{batch_size} windows: add text (data.paths / data.max_bytes) or lower "
            "training.batch_size or model.max_seq_len"
        )
    if len(val_ds) < 1:
        raise CorpusError(
            f"data: the validation split has {len(prepared.val_tokens)} tokens, fewer than "
            f"one window of {seq_len}: raise data.val_fraction or add text"
        )


def iter_predicted_bytes(windows: NextTokenWindows, tokenizer: Any) -> Iterator[bytes]:
    """The text that ``windows`` predict, as bytes in pieces of 65,536 tokens (no list of
    every id): each target token's bytes, with the end-of-document token standing for
    the newline that joins documents."""
    eos = tokenizer.eos_token_id
    pieces: dict[int, bytes] = {}
    step = 1 << 16
    for start in range(1, windows.num_targets + 1, step):
        out = bytearray()
        for i in windows.tokens[start : min(start + step, windows.num_targets + 1)].tolist():
            piece = pieces.get(i)
            if piece is None:
                token = b"\n" if i == eos else tokenizer.id_to_token(i)
                piece = pieces[i] = token if isinstance(token, bytes) else token.encode("utf-8")
            out += piece
        yield bytes(out)


def _tokens_note(prepared: PreparedData) -> str:
    if prepared.chat is not None:
        return f"{len(prepared.chat.train):,} + {len(prepared.chat.val):,} conversations"
    return f"tokens {'from cache' if prepared.tokens_cached else 'cached now'}"


def _quiet(message: str) -> None:
    """The log of ranks other than 0: nothing."""


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _set_threads(value: int | None) -> None:
    """``training.num_threads`` (checked): torch's intra-op threads (null: torch's default)."""
    if value is not None:
        torch.set_num_threads(value)


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _with_training_key(cfg: Any, key: str, value: Any) -> Any:
    from hyso.core.config import merge_config

    return merge_config(cfg, {"training": {key: value}})
