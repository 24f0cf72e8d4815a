"""Fully sharded data parallel training (``training.strategy: fsdp``) with FSDP2.

``fully_shard`` is applied to each transformer block (every child of the model's block
lists) and then to the model itself, which keeps the rest (embeddings, positional
encoding, final norm, head). Each rank then holds a shard of every parameter, of its
gradient and of the optimizer state; a block's full parameters exist only while it
runs. Parameters that a block shares with the rest of the model (a learned or relative
position encoding every attention layer points to) stay with the model's own unit.

The helpers here also serve replicated (DDP) and one-process training, so the trainer
calls them whatever the strategy: gradient clipping that understands sharded
gradients, the pause of gradient synchronisation between accumulation micro-steps, and
validation batches taken in lockstep (a sharded forward is a collective: every rank
must run as many as the others).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from hyso.core.train.distributed import DistContext

__all__ = [
    "block_modules",
    "clip_grad_norm",
    "gradient_sync_pause",
    "is_sharded",
    "local_state_bytes",
    "lockstep_batches",
    "shard_model",
    "wrap_fsdp",
]


def is_sharded(model: nn.Module) -> bool:
    """Whether ``fully_shard`` has been applied to ``model``."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The units sharded one by one: the children of every ``nn.ModuleList`` in ``model``
    that is not itself inside such a list (the blocks of each stack)."""
    found: list[nn.Module] = []

    def visit(module: nn.Module) -> None:
        for child in module.children():
            if isinstance(child, nn.ModuleList):
                found.extend(child)
            else:
                visit(child)

    visit(model)
    return found


def shard_model(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    mixed_precision: str | None = None,
) -> nn.Module:
    """Shard ``model`` in place (per block, then the root); returns it.

    ``mixed_precision="bf16"``: parameters are gathered in bf16 for compute, gradients
    are reduced in fp32 and the sharded parameters stay fp32. ``optimizer`` (built on
    the unsharded parameters, without state yet) is pointed at the sharded ones.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if optimizer is not None and optimizer.state:
        raise ValueError(
            "strategy fsdp shards the model's parameters: give the Trainer an optimizer "
            f"that has not stepped yet (this one holds state for {len(optimizer.state)} "
            "parameters)"
        )
    if mixed_precision not in (None, "bf16"):
        raise ValueError(f"mixed_precision must be None or 'bf16', got {mixed_precision!r}")
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if mixed_precision == "bf16"
        else MixedPrecisionPolicy()
    )
    before = dict(model.named_parameters())
    blocks = block_modules(model)
    # Parameters a block shares with the model outside every block stay in the root unit.
    outside = {
        id(p)
        for name, p in model.named_parameters(remove_duplicate=False)
        if _outside_blocks(model, name)
    }
    for block in blocks:
        shared = {p for p in block.parameters() if id(p) in outside}
        fully_shard(block, mp_policy=policy, ignored_params=shared or None)
    fully_shard(model, mp_policy=policy)
    if optimizer is not None:
        _rebind(optimizer, before, dict(model.named_parameters()))
    return model


def wrap_fsdp(
    model: nn.Module, optimizer: torch.optim.Optimizer, mixed_precision: str | None
) -> nn.Module:
    """The trainer's ``strategy: fsdp`` wrapping: :func:`shard_model`, once per model."""
    if is_sharded(model):
        raise ValueError(
            "this model was sharded for a process group that has ended; build a new model, "
            "optimizer and Trainer for another fit under strategy fsdp"
        )
    return shard_model(model, optimizer, mixed_precision=mixed_precision)


def _outside_blocks(model: nn.Module, name: str) -> bool:
    """Whether parameter ``name`` is reached through no ``nn.ModuleList``."""
    module: nn.Module = model
    for part in name.split(".")[:-1]:
        if isinstance(module, nn.ModuleList):
            return False
        module = getattr(module, part)
    return not isinstance(module, nn.ModuleList)


def _rebind(
    optimizer: torch.optim.Optimizer,
    before: dict[str, nn.Parameter],
    after: dict[str, nn.Parameter],
) -> None:
    """Replace each unsharded parameter in ``optimizer`` by its sharded successor."""
    successor = {id(p): after[name] for name, p in before.items() if name in after}
    for group in optimizer.param_groups:
        missing = [i for i, p in enumerate(group["params"]) if id(p) not in successor]
        if missing:
            raise ValueError(
                f"the optimizer holds {len(missing)} parameter(s) that are not the model's; "
                "strategy fsdp can only shard the model's own parameters"
            )
        group["params"] = [successor[id(p)] for p in group["params"]]


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip the gradients' global norm to ``max_norm``; returns the norm before clipping.

    Sharded gradients give a norm whose shards are summed over ranks; it is made whole
    before it scales every gradient, so all ranks clip by the same factor.
    """
    params = list(params)
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
    full_tensor = getattr(norm, "full_tensor", None)
    if full_tensor is not None:  # a DTensor
        norm = full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return norm


def gradient_sync_pause(model: nn.Module) -> Callable[[], Any] | None:
    """A context factory that keeps gradients local (no collective) for the backward
    passes inside it, or ``None`` when the model has nothing to pause.

    DDP: its ``no_sync``. FSDP: gradients accumulate unsharded on each rank and are
    reduced once, after the last micro-step, which also keeps the parameters gathered
    between micro-steps instead of re-gathering them for every forward.
    """
    if is_sharded(model):
        return lambda: _fsdp_no_sync(model)
    return getattr(model, "no_sync", None)


@contextlib.contextmanager
def _fsdp_no_sync(model: nn.Module) -> Iterator[None]:
    model.set_requires_gradient_sync(False)  # type: ignore[operator]
    model.set_reshard_after_backward(False)  # type: ignore[operator]
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)  # type: ignore[operator]
        model.set_reshard_after_backward(True)  # type: ignore[operator]


def lockstep_batches(
    loader: Iterable[Any], ctx: DistContext | None, device: torch.device | None = None
) -> Iterator[tuple[Any, bool]]:
    """``(batch, counted)`` pairs: the loader's batches, then, on a rank whose shard ran
    out first, repeats of its first batch with ``counted=False`` until every rank is done.

    Without ``ctx`` (nothing sharded) every batch is counted and nothing is added.
    """
    if ctx is None or not ctx.is_distributed:
        for batch in loader:
            yield batch, True
        return
    first = None
    it = iter(loader)
    while True:
        batch = next(it, None)
        has = torch.tensor([0.0 if batch is None else 1.0], device=device)
        if ctx.all_reduce_sum(has).item() == 0:
            return
        if batch is not None:
            first = batch if first is None else first
            yield batch, True
        elif first is not None:
            yield first, False
        else:
            raise ValueError(
                f"rank {ctx.rank} has no validation batch while another rank has: give "
                "every rank at least one (more rows than processes)"
            )


def local_state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Bytes this rank holds of ``model``'s parameters and ``optimizer``'s state
    (the local shard of a sharded tensor; tied parameters counted once)."""
    total = 0
    seen: set[int] = set()
    tensors = list(model.parameters())
    if optimizer is not None:
        for state in optimizer.state.values():
            tensors.extend(v for v in state.values() if isinstance(v, torch.Tensor))
    for t in tensors:
        local = t.to_local() if hasattr(t, "to_local") else t
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += local.numel() * local.element_size()
    return total
