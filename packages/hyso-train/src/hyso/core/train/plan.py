"""Memory per GPU of a training run, estimated before it runs (``hyso plan``).

The model of a config is built under ``FakeTensorMode`` (shapes, no storage), so even
a 7B model costs seconds and no memory. What it counts:

* parameters, their gradients and AdamW's two moments, in fp32: ``4 + 4 + 8`` bytes a
  parameter, each divided by the number of GPUs under FSDP;
* activations: the bytes autograd keeps for the backward pass of one micro-batch
  (``training.batch_size`` windows of ``data.seq_len`` tokens), counted by running the
  fake model's forward and loss with a saved-tensor hook (each storage once), with and
  without activation checkpointing; under checkpointing one block's activations come
  back while it is recomputed;
* transient buffers: the logits the loss holds at once and their log-softmax (for a
  decoder-only model, which computes its loss chunk by chunk in forward, one chunk's,
  counted only where they exceed the gradients and recomputed block that exist in
  backward instead; otherwise the micro-batch's), DDP's gradient buckets (a second
  copy of the gradients; more than one GPU), and under FSDP the gathered parameters
  of the root (embeddings, head) and of two blocks (the one running and the one
  prefetched) with one block's unsharded gradients.

With one GPU the trainer wraps nothing, so every strategy is the plain model. The
attention counted is the kernel torch picks on CPU (flash attention: no ``T x T``
matrices), like the CUDA flash kernels. Not counted: the CUDA context and the caching
allocator's slack (``--overhead-gb``, default 1 GiB on GPUs), data loading, and
fragmentation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["GIB", "MemoryPlan", "ModelCounts", "count_model", "plan_memory"]

GIB = 1024**3


@dataclass(frozen=True)
class ModelCounts:
    """What the memory of one model and micro-batch is made of (bytes, counts)."""

    parameters: int
    root_parameters: int
    largest_block: int
    num_blocks: int
    activations: int
    activations_checkpointed: int
    logits: int
    """Bytes of the logits the loss holds at once (a chunk's, or the micro-batch's)."""
    loss_in_forward: bool = False
    """The loss's buffers come and go in forward (a decoder-only model's chunked loss),
    before any gradient or recomputed block exists."""


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes one GPU holds at its peak under ``strategy``."""

    strategy: str
    gpus: int
    params: int
    grads: int
    optimizer: int
    activations: int
    transient: int
    overhead: int

    @property
    def total(self) -> int:
        return (
            self.params
            + self.grads
            + self.optimizer
            + self.activations
            + self.transient
            + self.overhead
        )


def count_model(
    model_cfg: Mapping[str, Any],
    vocab_size: int,
    batch_size: int,
    seq_len: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> ModelCounts:
    """Parameters and activation bytes of ``model_cfg`` for one micro-batch."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from hyso.core.models import build_model

    cfg = {k: v for k, v in model_cfg.items() if k != "activation_checkpointing"}
    cfg.setdefault("name", "decoder_only")
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with FakeTensorMode():
            model = build_model(cfg, vocab_size=vocab_size).train()
            counts = _count(model, vocab_size, batch_size, seq_len)
    finally:
        torch.set_default_dtype(default)
    rows = batch_size * seq_len
    chunked = bool(getattr(model, "accepts_targets", False))  # the head runs chunk by chunk
    if chunked:
        from hyso.core.models.layers.linear_cross_entropy import default_chunk_rows

        rows = min(rows, default_chunk_rows(rows, (vocab_size, model.config.dim)))
    return dataclasses.replace(
        counts, logits=rows * vocab_size * torch.finfo(dtype).bits // 8, loss_in_forward=chunked
    )


def _count(model: torch.nn.Module, vocab_size: int, batch_size: int, seq_len: int) -> ModelCounts:
    """Parameters and saved bytes of a (fake) model; ``logits`` is filled in by the caller."""
    from hyso.core.train.fsdp import block_modules

    blocks = block_modules(model)
    in_blocks = {id(p) for b in blocks for p in b.parameters()}
    params = list(model.parameters())
    plain = _saved_bytes(model, vocab_size, batch_size, seq_len)
    model.config.activation_checkpointing = True
    checkpointed = _saved_bytes(model, vocab_size, batch_size, seq_len)
    block_sizes = [sum(p.numel() for p in b.parameters()) for b in blocks]
    return ModelCounts(
        parameters=sum(p.numel() for p in params),
        root_parameters=sum(p.numel() for p in params if id(p) not in in_blocks),
        largest_block=max(block_sizes, default=0),
        num_blocks=len(blocks),
        activations=plain,
        activations_checkpointed=checkpointed,
        logits=0,
    )


def _saved_bytes(model: torch.nn.Module, vocab: int, batch: int, seq_len: int) -> int:
    """Bytes of the storages autograd keeps from one forward and the trainer's default
    loss (each once)."""
    seen: set[int] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = t.untyped_storage()
        if storage._cdata not in seen:
            seen.add(storage._cdata)
            total += storage.nbytes()
        return t

    from hyso.core.train.loss import default_loss_for

    ids = torch.randint(0, vocab, (batch, seq_len + 1))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        default_loss_for(model)(model, (ids[:, :-1], ids[:, 1:]))  # the trainer's loss
    return total


def plan_memory(counts: ModelCounts, gpus: int, *, overhead: int = 0) -> list[MemoryPlan]:
    """The peak bytes per GPU for ``ddp``, ``fsdp`` and ``fsdp+ac`` on ``gpus`` GPUs."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"--gpus must be an integer >= 1, got {gpus!r}")
    c = counts
    p = 4 * c.parameters
    logits_grads = 2 * c.logits
    # One block recomputed in backward under checkpointing.
    block_acts = (c.activations - c.activations_checkpointed) // max(1, c.num_blocks)
    rows = []
    for strategy in ("ddp", "fsdp", "fsdp+ac"):
        sharded = strategy != "ddp" and gpus > 1
        share = gpus if sharded else 1
        transient = logits_grads
        if c.loss_in_forward:  # only what the forward peak holds beyond the backward's
            recomputed = block_acts if strategy == "fsdp+ac" else 0
            transient = max(0, logits_grads - (-(-p // share)) - recomputed)
        if strategy == "ddp" and gpus > 1:
            transient += p  # DDP's gradient buckets
        if sharded:
            transient += 4 * (c.root_parameters + 3 * c.largest_block)
        acts = c.activations
        if strategy == "fsdp+ac":
            acts = c.activations_checkpointed + block_acts
        rows.append(
            MemoryPlan(
                strategy=strategy,
                gpus=gpus,
                params=-(-p // share),
                grads=-(-p // share),
                optimizer=-(-2 * p // share),
                activations=acts,
                transient=transient,
                overhead=overhead,
            )
        )
    return rows
