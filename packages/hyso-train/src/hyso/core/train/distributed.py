"""Multi-process training through ``torch.distributed``, launched by ``torchrun``.

A launch is detected from ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. The process group
uses gloo on CPU and NCCL on CUDA, with a timeout so a failed peer ends the launch
instead of hanging it. Rank 0 alone writes the run folder; it chooses the run id and
the other ranks receive it.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from hyso.core.storage import RunPaths

__all__ = [
    "DistContext",
    "create_run_paths",
    "destroy_distributed",
    "distributed_session",
    "init_distributed",
    "shard_loader",
]


@dataclass
class DistContext:
    """Where this process sits in the launch (``world_size == 1`` when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_rank_zero(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        """Read ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (set by torchrun); default: one process."""
        if dist.is_available() and dist.is_initialized():
            return cls(
                rank=dist.get_rank(),
                world_size=dist.get_world_size(),
                local_rank=_env_int("LOCAL_RANK", 0),
                backend=str(dist.get_backend()),
            )
        return cls(
            rank=_env_int("RANK", 0),
            world_size=_env_int("WORLD_SIZE", 1),
            local_rank=_env_int("LOCAL_RANK", 0),
        )

    def device(self, requested: str | None) -> torch.device | None:
        """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA launches."""
        if requested is None:
            return None
        dev = torch.device(requested)
        if dev.type == "cuda" and self.is_distributed and dev.index is None:
            return torch.device("cuda", self.local_rank)
        return dev

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (no-op for one process)."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.is_distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()


def init_distributed(device: str | None = None, timeout_s: float = 300.0) -> DistContext:
    """Initialise the default process group for a ``torchrun`` launch (idempotent).

    Returns a one-process context when the environment is not a distributed launch.
    """
    ctx = DistContext.from_env()
    if ctx.world_size <= 1 or dist.is_initialized():
        return ctx
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    use_cuda = (device or "").startswith("cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    ctx.backend = backend
    return ctx


def destroy_distributed(sync: bool = False) -> None:
    """Destroy the default process group if one exists.

    With ``sync`` (a clean end), the ranks first meet at a barrier, so no rank tears
    down its connections while a peer still uses them (gloo aborts the process when
    that happens). After an error there is no barrier: a failed peer would never come.
    Unreachable objects (a sharded model's hooks and the collective handles they keep)
    are collected first, while the group they belong to still exists.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        if sync:
            dist.barrier()
            _all_left_the_barrier()
        dist.destroy_process_group()


_TEARDOWNS = itertools.count()


def _all_left_the_barrier(timeout_s: float = 30.0) -> None:
    """Wait until every rank has returned from the last collective, counted in the
    rendezvous store (outside gloo's connections): a rank that returns first and closes
    its connections while a peer still reads its last message makes gloo abort the peer.
    Best effort: a store that is gone or slow only skips the wait."""
    key = f"hyso/teardown/{next(_TEARDOWNS)}"  # every rank counts its teardowns alike
    world = dist.get_world_size()
    try:
        store = dist.distributed_c10d._get_default_store()
        store.add(key, 1)
        deadline = time.monotonic() + timeout_s
        while store.add(key, 0) < world and time.monotonic() < deadline:
            time.sleep(0.005)
    except (RuntimeError, ValueError, AttributeError):  # no store, or its server left
        return


@contextlib.contextmanager
def distributed_session(
    device: str | None = None, timeout_s: float = 300.0
) -> Iterator[DistContext]:
    """``init_distributed`` on entry, the process group destroyed on exit, error or not."""
    created = not (dist.is_available() and dist.is_initialized())
    ctx = init_distributed(device, timeout_s)
    clean = False
    try:
        yield ctx
        clean = True
    finally:
        if created:
            destroy_distributed(sync=clean)


def create_run_paths(root: str | os.PathLike[str], name: str | None = None) -> RunPaths:
    """A new run folder chosen by rank 0; the other ranks get the same ``RunPaths``.

    Call after ``init_distributed`` in multi-process launches. Only rank 0 creates folders.
    """
    from hyso.core.storage import RunPathFactory

    factory = RunPathFactory.from_root(root)
    ctx = DistContext.from_env()
    run_id = factory.create(name).run_id if ctx.is_rank_zero else None
    run_id = ctx.broadcast_object(run_id)
    return factory.path_for(run_id)


def shard_loader(loader: Any, ctx: DistContext, seed: int, *, train: bool) -> Any:
    """``loader`` with this rank's share of the data.

    Training: a ``DistributedSampler`` (shuffled when the loader shuffles, seeded with
    ``seed``; the trainer sets its epoch). Evaluation: every ``world_size``-th sample,
    without the padding a ``DistributedSampler`` adds, so summed losses are exact.
    Loaders that already use a ``DistributedSampler``, and iterables that are not
    DataLoaders, are returned as they are.
    """
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler
    from torch.utils.data.distributed import DistributedSampler

    if not ctx.is_distributed or not isinstance(loader, DataLoader):
        return loader
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_sampler is None or type(loader.batch_sampler) is not BatchSampler:
        raise ValueError(
            "distributed training needs DataLoaders with a batch_size (or a "
            "DistributedSampler of your own); this loader has a custom batch_sampler "
            f"{type(loader.batch_sampler).__name__}"
        )
    from hyso.core.train.epoch_order import LeanDistributedSampler, clone_loader

    if train:  # DistributedSampler's order, without a Python list of every index
        sampler: Any = LeanDistributedSampler(
            loader.dataset,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=isinstance(loader.sampler, RandomSampler),
            seed=seed,
            drop_last=loader.drop_last,
        )
    else:
        sampler = list(range(ctx.rank, len(loader.dataset), ctx.world_size))  # type: ignore[arg-type]
    return clone_loader(
        loader, sampler=sampler, batch_size=loader.batch_size, drop_last=loader.drop_last
    )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
