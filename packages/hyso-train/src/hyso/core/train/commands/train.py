"""``hyso train CONFIG [key=value ...]``: train a language model and report on it.

Decoder-only models learn next-token prediction; encoder-only models are trained as
masked language models (15% of positions, the tokenizer's mask token). Validation is
reported in nats per token and in bits per byte beside ``gzip -9`` on the same text.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hyso.core.train.commands._common import CliError, format_count, format_float
from hyso.core.train.commands._lm_data import PreparedData, prepare_data
from hyso.core.train.commands._model import (
    TOKENIZER_FILE,
    build_model,
    model_family,
    sample_text,
)
from hyso.core.train.data.compression import bits_per_byte, gzip_bits_per_byte
from hyso.core.train.data.corpus import CorpusError
from hyso.core.train.data.windows import MaskedLMWindows, NextTokenWindows

__all__ = [
    "TrainOutcome",
    "load_cli_config",
    "make_optimizer",
    "make_scheduler",
    "predicted_bytes",
    "register",
    "run",
    "train_from_config",
]

DEFAULT_RUNS_ROOT = "runs"


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


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a config file",
        description="Train the model of CONFIG (YAML/JSON) on the embedded Python "
        "standard-library corpus, or on data.paths=[...] globs of .txt/.jsonl files. "
        "Writes a run folder and prints the best validation loss, bits per byte beside "
        "gzip -9, the run folder and a short sample.",
        epilog="example: hyso train configs/lm.yaml training.max_steps=200 model.dim=128",
    )
    p.add_argument("config", help="path to a YAML or JSON config (e.g. configs/lm.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--runs-root", default=None, help="folder for run folders (default: runs)")
    p.add_argument("--name", default=None, help="a name appended to the run id")
    p.add_argument("--prompt", default="def ", help='prompt of the final sample (default "def ")')
    p.add_argument(
        "--sample-tokens", type=int, default=120, help="tokens in the final sample (0: none)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_cli_config(args.config, args.overrides)
    if args.no_progress:
        cfg = _with_training_key(cfg, "progress_bar", False)
    from hyso.core.train.distributed import distributed_session

    training = cfg.get("training") or {}
    # Under torchrun the process group lives for the whole command and is destroyed
    # at its end (after a barrier on success), so no rank exits with it still open.
    with distributed_session(training.get("device"), training.get("dist_timeout_s", 300.0)):
        outcome = train_from_config(
            cfg,
            runs_root=args.runs_root,
            name=args.name,
            prompt=args.prompt,
            sample_tokens=args.sample_tokens,
        )
    if "rank" not in outcome.extra:  # only rank 0 reports
        print_outcome(outcome)
    return 0


def load_cli_config(path: str, overrides: list[str]) -> Any:
    """``load_config_with_overrides`` with a one-line error for a missing file."""
    if not Path(path).is_file():
        raise CliError(f"config file {path} does not exist")
    from hyso.core.config import load_config_with_overrides

    return load_config_with_overrides(path=path, override_pairs=list(overrides))


def print_outcome(o: TrainOutcome, file: Any = None) -> None:
    """The closing lines of ``hyso train``."""
    out = file or sys.stdout
    print(f"best val loss: {format_float(o.best_val_loss)} nats/token", file=out)
    if o.val_bpb is not None:
        verdict = "better than" if o.val_bpb < o.gzip_bpb else "not better than"
        print(
            f"val bits/byte: {o.val_bpb:.3f} (gzip -9: {o.gzip_bpb:.3f}; {verdict} gzip)",
            file=out,
        )
    print(
        f"steps: {o.steps}, parameters: {format_count(o.num_parameters)}, "
        f"training time: {o.train_seconds:.1f}s wall, "
        f"{o.extra.get('cpu_seconds', math.nan):.1f}s CPU",
        file=out,
    )
    print(f"run folder: {o.run_dir}", file=out)
    if o.sample is not None:
        print("sample:", file=out)
        print(o.sample, file=out)


def train_from_config(
    cfg: Any,
    *,
    runs_root: str | Path | None = None,
    name: str | None = None,
    prompt: str = "def ",
    sample_tokens: int = 120,
    log: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """Train the model of ``cfg`` end to end; see the module docstring."""
    from hyso.core.storage import (
        CheckpointConfig,
        CheckpointManager,
        Manifest,
        get_logger,
        load_manifest,
        save_manifest,
        set_global_seed,
    )
    from hyso.core.train import Trainer, create_run_paths, init_distributed

    plain = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    model_cfg = dict(plain.get("model") or {})
    training = dict(plain.get("training") or {})
    data_cfg = dict(plain.get("data") or {})
    run_cfg = dict(plain.get("run") or {})
    family = model_family(model_cfg)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    _set_threads(training.get("num_threads"))
    # Under torchrun, rank 0 builds the tokenizer and token cache; the others then read it.
    dist = init_distributed(training.get("device"), training.get("dist_timeout_s", 300.0))
    rank0 = dist.is_rank_zero
    if not rank0:
        dist.barrier()
    prepared = prepare_data(data_cfg, log=say if rank0 else _quiet)
    if rank0:
        dist.barrier()
    seq_len = int(data_cfg.get("seq_len") or model_cfg.get("max_seq_len") or 128)
    batch_size = int(training.get("batch_size", 16))
    seed = int(training.get("seed", 0) or 0)
    train_ds, val_ds = _datasets(family, prepared, seq_len, seed, data_cfg)
    _check_sizes(train_ds, val_ds, batch_size, seq_len, prepared)

    set_global_seed(seed)
    model = build_model(model_cfg, prepared.tokenizer.vocab_size)
    num_params = int(model.num_parameters())
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train_ds, batch_size=batch_size, shuffle=True, drop_last=True, generator=gen
    )
    val_loader = DataLoader(val_ds, batch_size=batch_size, shuffle=False)
    epochs = int(training.get("epochs") or 1)
    accum = int(training.get("grad_accum_steps") or 1)
    optimizer = make_optimizer(model, training)
    steps_per_epoch = len(train_loader) // accum // max(1, dist.world_size)  # after sharding
    scheduler = make_scheduler(optimizer, training, epochs, steps_per_epoch)

    root = runs_root or run_cfg.get("root") or DEFAULT_RUNS_ROOT
    run_paths = create_run_paths(root, name)  # rank 0 creates it; the others share it
    logger = get_logger("hyso.train", log_dir=run_paths.logs_dir if rank0 else None, console=False)
    model_record = {**model_cfg, "name": family, "vocab_size": prepared.tokenizer.vocab_size}
    data_record = {**data_cfg, **prepared.manifest_record()}
    manifest = Manifest.new(
        run_id=run_paths.run_id,
        model=model_record,
        training=training,
        data=data_record,
        num_parameters=num_params,
        command="hyso train",
    )
    if rank0:
        save_manifest(run_paths.manifest_path, manifest)
        run_paths.artifacts_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prepared.tokenizer_path, run_paths.artifacts_dir / TOKENIZER_FILE)
    (say if rank0 else _quiet)(
        f"run {run_paths.run_id}: {family}, {format_count(num_params)} parameters, "
        f"{len(prepared.train_tokens):,} train / {len(prepared.val_tokens):,} val tokens "
        f"(tokens {'from cache' if prepared.tokens_cached else 'cached now'})"
    )

    checkpoints = CheckpointManager(
        CheckpointConfig.from_dir(
            directory=run_paths.checkpoints_dir, best_metric_name="val_loss", best_mode="min"
        )
    )
    trainer = Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        tokenizer=prepared.tokenizer,
        config=cfg,
        run_paths=run_paths,
        checkpoint_manager=checkpoints,
        logger=logger,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(train_loader=train_loader, val_loader=val_loader, epochs=epochs)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    checkpoints.wait()
    best_loss = _finite(getattr(trainer, "best_val_loss", None))
    steps = int(trainer.global_step)
    if not rank0:
        return TrainOutcome(
            run_dir=run_paths.run_dir,
            run_id=run_paths.run_id,
            best_val_loss=best_loss,
            val_bpb=None,
            gzip_bpb=math.nan,
            steps=steps,
            num_parameters=num_params,
            train_seconds=seconds,
            sample=None,
            extra={"rank": dist.rank, "cpu_seconds": cpu_seconds},
        )

    best = checkpoints.load_best(map_location="cpu")
    if best is not None:
        checkpoints.restore_objects(best, model, restore_rng=False)
    model.eval()
    val_bpb, bpb_bytes = None, None
    if family == "decoder_only":
        # The model and gzip are measured on the same bytes: those the windows predict.
        target_bytes = predicted_bytes(val_ds, prepared.tokenizer)
        gzip_bpb = gzip_bits_per_byte(target_bytes)
        bpb_bytes = len(target_bytes)
        if best_loss is not None:
            val_bpb = bits_per_byte(best_loss, val_ds.num_targets, len(target_bytes))
    else:
        gzip_bpb = gzip_bits_per_byte(prepared.corpus.val_text)
    sample = None
    if family == "decoder_only" and sample_tokens > 0:
        sample = sample_text(
            model, prepared.tokenizer, prompt, max_new_tokens=sample_tokens, seed=seed
        )

    final = load_manifest(run_paths.manifest_path)
    final.results.update(
        {
            "val_bpb": val_bpb,
            "gzip_bpb": gzip_bpb,
            "bpb_bytes": bpb_bytes,
            "train_seconds": seconds,
            "train_cpu_seconds": cpu_seconds,
            "train_tokens_seen": steps * batch_size * accum * seq_len * dist.world_size,
        }
    )
    if best_loss is not None:
        final.results.setdefault("best_val_loss", best_loss)
    final.results.setdefault("global_step", steps)
    save_manifest(run_paths.manifest_path, final)
    return TrainOutcome(
        run_dir=run_paths.run_dir,
        run_id=run_paths.run_id,
        best_val_loss=best_loss,
        val_bpb=val_bpb,
        gzip_bpb=gzip_bpb,
        steps=int(trainer.global_step),
        num_parameters=num_params,
        train_seconds=seconds,
        sample=sample,
        extra={"cpu_seconds": cpu_seconds},
    )


def make_optimizer(model: torch.nn.Module, training: dict[str, Any]) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on norms, biases)."""
    lr = float(training.get("lr", 1e-3))
    wd = float(training.get("weight_decay", 0.0) or 0.0)
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    betas = tuple(training.get("betas", (0.9, 0.95)))
    return torch.optim.AdamW(groups, lr=lr, betas=betas)  # type: ignore[arg-type]


def make_scheduler(
    optimizer: torch.optim.Optimizer, training: dict[str, Any], epochs: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup then cosine decay to ``min_lr_ratio`` × lr.

    With ``scheduler_interval: step`` the schedule spans ``max_steps`` (or every
    optimizer step of every epoch) and warms up for ``warmup_steps``; with ``epoch``
    it spans the epochs and has no warmup.
    """
    min_ratio = float(training.get("min_lr_ratio", 0.1))
    if training.get("scheduler_interval", "epoch") == "step":
        total = int(training.get("max_steps") or epochs * max(1, steps_per_epoch))
        warmup = int(training.get("warmup_steps", 0) or 0)
    else:
        total, warmup = epochs, 0
    total = max(1, total)

    def factor(t: int) -> float:
        if warmup and t < warmup:
            return (t + 1) / warmup
        progress = min(1.0, (t - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _datasets(
    family: str, prepared: PreparedData, seq_len: int, seed: int, data_cfg: dict[str, Any]
) -> tuple[Any, Any]:
    if family == "decoder_only":
        return (
            NextTokenWindows(prepared.train_tokens, seq_len),
            NextTokenWindows(prepared.val_tokens, seq_len),
        )
    tok = prepared.tokenizer
    mask_prob = float(data_cfg.get("mask_prob", 0.15))
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


def predicted_bytes(windows: NextTokenWindows, tokenizer: Any) -> bytes:
    """The text that ``windows`` predict, as bytes: each target token's bytes, with the
    end-of-document token standing for the newline that joins documents."""
    eos = tokenizer.eos_token_id
    pieces: dict[int, bytes] = {}
    out = bytearray()
    for i in windows.tokens[1 : windows.num_targets + 1].tolist():
        piece = pieces.get(i)
        if piece is None:
            token = b"\n" if i == eos else tokenizer.id_to_token(i)
            piece = pieces[i] = token if isinstance(token, bytes) else token.encode("utf-8")
        out += piece
    return bytes(out)


def _quiet(message: str) -> None:
    """The log of ranks other than 0: nothing."""


def _set_threads(value: Any) -> None:
    """``training.num_threads``: torch's intra-op threads (null: torch's default)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CliError(f"training.num_threads must be an integer >= 1 or null, got {value!r}")
    torch.set_num_threads(value)


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _with_training_key(cfg: Any, key: str, value: Any) -> Any:
    from hyso.core.config import merge_config

    return merge_config(cfg, {"training": {key: value}})
