"""``hyso plan CONFIG --gpus N --gpu-mem GB``: memory per GPU under DDP, FSDP and FSDP with
activation checkpointing, estimated from the config without training (see
:mod:`hyso.core.train.plan` for what is counted)."""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch

from hyso.core.train.commands._common import CliError, format_count

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="estimate the memory per GPU of a config under DDP, FSDP and FSDP + checkpointing",
        description="Estimate the peak memory per GPU of training CONFIG on N GPUs: "
        "parameters, gradients and AdamW state (sharded under FSDP), the activations of one "
        "micro-batch (training.batch_size windows of data.seq_len tokens, counted on a "
        "model built without memory), and transient buffers.",
        epilog="example: hyso plan configs/lm.yaml --gpus 8 --gpu-mem 80 model.dim=4096",
    )
    p.add_argument("config", help="the YAML config hyso train would run")
    p.add_argument("overrides", nargs="*", help="key=value overrides, as for hyso train")
    p.add_argument("--gpus", type=int, required=True, help="GPUs (processes) in the launch")
    p.add_argument("--gpu-mem", type=float, required=True, help="memory of one GPU in GB")
    p.add_argument(
        "--overhead-gb",
        type=float,
        default=1.0,
        help="per-GPU memory the estimate adds for the CUDA context and allocator (default 1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hyso.core.train.commands.train import load_cli_config
    from hyso.core.train.plan import GIB, count_model, plan_memory
    from hyso.core.train.run_config import load_run_config

    for name, value, low in (
        ("--gpu-mem", args.gpu_mem, 0),
        ("--overhead-gb", args.overhead_gb, -1),
    ):
        if not math.isfinite(value) or value <= low:
            raise CliError(f"{name} must be a number above {max(low, 0)}, got {value}")
    if args.gpus < 1:
        raise CliError(f"--gpus must be an integer >= 1, got {args.gpus}")
    settings = load_run_config(load_cli_config(args.config, args.overrides))
    t = settings.training
    seq_len = int(settings.data.seq_len or settings.model.get("max_seq_len") or 128)
    bf16 = t.precision == "bf16" or t.mixed_precision == "bf16"
    dtype = torch.bfloat16 if bf16 else torch.float32
    counts = count_model(
        settings.model, settings.data.vocab_size, t.batch_size, seq_len, dtype=dtype
    )
    overhead = int(args.overhead_gb * GIB)
    plans = plan_memory(counts, args.gpus, overhead=overhead)
    print(
        f"hyso plan: {settings.model.get('name', 'decoder_only')}, "
        f"{format_count(counts.parameters)} parameters, {counts.num_blocks} blocks; "
        f"micro-batch {t.batch_size} x {seq_len} tokens per GPU, activations in "
        f"{'bf16' if bf16 else 'fp32'}; {args.gpus} GPU(s) of {args.gpu_mem:g} GB"
    )
    head = ("strategy", "params", "grads", "optimizer", "activations", "transient", "overhead")
    print(f"{head[0]:<9}" + "".join(f"{h:>12}" for h in head[1:]) + f"{'total GiB':>11}  fits")
    budget = args.gpu_mem * 1e9
    for plan in plans:
        parts = (plan.params, plan.grads, plan.optimizer, plan.activations, plan.transient)
        cells = "".join(f"{v / GIB:>12.2f}" for v in (*parts, plan.overhead))
        fits = "yes" if plan.total <= budget else "no"
        print(f"{plan.strategy:<9}{cells}{plan.total / GIB:>11.2f}  {fits}")
    return 0
