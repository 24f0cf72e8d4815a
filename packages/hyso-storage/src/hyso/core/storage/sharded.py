"""Sharded checkpoints: every rank writes its own shard with ``torch.distributed.checkpoint``.

A sharded checkpoint is a folder ``<prefix>-<seq>-e<epoch>-s<step>.dcp`` beside the
single-file ones, with the same record ``<folder>.json`` as their commit point:

1. rank 0 creates a staging folder ``.<name>.staging`` (and removes unfinished ones);
2. every rank writes its shard of the model and optimizer states there (DCP:
   ``__<rank>_0.distcp`` files, fsynced, and rank 0's ``.metadata``), and rank 0 adds
   ``extra.pt`` (epoch, step, metrics, extra, scheduler and RNG states);
3. once every rank has finished, rank 0 hashes the files, renames the staging folder
   to its final name, fsyncs the parent folder, and writes the record last.

A crash at any point before the record leaves no record, so the folder is never
"latest" and the next save removes it. States go through
``torch.distributed.checkpoint.state_dict`` keyed by parameter names, so a checkpoint
written by N processes loads into M (sharded or not), and into a plain model in a
process without a process group (to export it as one ``save_pretrained`` folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .atomic import fsync_dir
from .checkpoint_file import hash_file, load_verified, write_payload
from .errors import CheckpointCorruptError

__all__ = [
    "EXTRA_NAME",
    "SHARDED_SUFFIX",
    "STAGING_SUFFIX",
    "barrier",
    "broadcast",
    "files_digest",
    "is_sharded_path",
    "load_extra",
    "load_sharded_states",
    "rank_and_world",
    "remove_tree",
    "staging_path",
    "verify_sharded",
    "write_sharded",
]

SHARDED_SUFFIX = ".dcp"
STAGING_SUFFIX = ".staging"
EXTRA_NAME = "extra.pt"


def is_sharded_path(path: Path) -> bool:
    """Whether ``path`` names a sharded checkpoint folder."""
    return path.name.endswith(SHARDED_SUFFIX)


def staging_path(path: Path) -> Path:
    """The hidden folder ``path``'s shards are written into before it is published."""
    return path.with_name(f".{path.name}{STAGING_SUFFIX}")


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size (0 and 1 without a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _no_dist() -> bool:
    """True without a process group: DCP then reads and writes in this process alone."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized())


@contextlib.contextmanager
def _single_process_quiet() -> Iterator[None]:
    """Without a process group DCP warns that it assumes one process: that is meant."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (itself without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _states(model: torch.nn.Module, optimizer: Any) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    if optimizer is None:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return {"model": get_model_state_dict(model)}
    model_state, optim_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optim_state}


def write_sharded(
    path: Path, model: torch.nn.Module, optimizer: Any, extra: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Write this rank's shard into ``path``'s staging folder (made by rank 0 before);
    on rank 0 also ``extra`` (``extra.pt``), then publish the folder once every rank is
    done. Returns rank 0's ``files`` entry for the record (``None`` on other ranks)."""
    import torch.distributed.checkpoint as dcp

    rank, _ = rank_and_world()
    staging = staging_path(path)
    with _single_process_quiet():
        dcp.save(_states(model, optimizer), checkpoint_id=str(staging), no_dist=_no_dist())
    if rank == 0 and extra is not None:
        write_payload(staging / EXTRA_NAME, dict(extra))
    barrier()  # every shard (and the metadata) is on disk
    if rank != 0:
        return None
    files = {}
    for name in sorted(os.listdir(staging)):
        digest, size = hash_file(staging / name)
        files[name] = {"sha256": digest, "size": size}
    fsync_dir(staging)
    os.replace(staging, path)
    fsync_dir(path.parent)
    return files


def files_digest(files: Mapping[str, Any]) -> tuple[str, int]:
    """One SHA-256 over the files' names and digests, and their total size."""
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    total = sum(int(entry["size"]) for entry in files.values())
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), total


def verify_sharded(path: Path, record: Mapping[str, Any]) -> None:
    """``CheckpointCorruptError`` unless every file of the record is there, unchanged."""
    files = record.get("files")
    if not isinstance(files, dict) or EXTRA_NAME not in files:
        raise CheckpointCorruptError(f"sharded checkpoint record of {str(path)!r} lists no files")
    if files_digest(files)[0] != record["sha256"]:
        raise CheckpointCorruptError(f"sharded checkpoint record of {str(path)!r} is damaged")
    for name, entry in files.items():
        if name == EXTRA_NAME:
            continue  # verified while it loads
        try:
            digest, size = hash_file(path / name)
        except FileNotFoundError as exc:
            raise CheckpointCorruptError(f"sharded checkpoint {str(path)!r} lacks {name}") from exc
        if (digest, size) != (entry.get("sha256"), entry.get("size")):
            raise CheckpointCorruptError(
                f"sharded checkpoint {str(path)!r}: {name} is {size} bytes with SHA-256 "
                f"{digest[:16]}..., its record says {entry.get('size')} / "
                f"{str(entry.get('sha256'))[:16]}... (truncated or overwritten)"
            )


def load_extra(path: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """Verify the folder against its record and load its ``extra.pt`` (weights only)."""
    verify_sharded(path, record)
    return load_verified(path / EXTRA_NAME, record["files"][EXTRA_NAME])


def load_sharded_states(path: Path, model: torch.nn.Module, optimizer: Any = None) -> None:
    """Load the model (and optimizer) states of ``path`` into the objects given, each
    rank reading what its shards need: any world size, sharded or not. A model that is
    not sharded loads on its own, even where a process group exists."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

    from ._dcp_safe import SafeLoadPlanner, SafeReader, safe_load_metadata

    try:  # checked here first: DCP would bury the reason in its own exception
        safe_load_metadata((Path(path) / ".metadata").read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise CheckpointCorruptError(f"{path}/.metadata: {exc}") from None
    states = _states(model, optimizer)
    # A whole model reads every shard itself: no collective, so one rank may load alone.
    alone = _no_dist() or not any(hasattr(p, "to_local") for p in model.parameters())
    with _single_process_quiet():  # the safe reader and planner: nothing runs as code
        reader, planner = SafeReader(path), SafeLoadPlanner()
        dcp.load(states, storage_reader=reader, planner=planner, no_dist=alone)
    if optimizer is None:
        set_model_state_dict(model, states["model"])
    else:
        set_state_dict(
            model,
            optimizer,
            model_state_dict=states["model"],
            optim_state_dict=states["optimizer"],
        )


def remove_tree(path: Path) -> None:
    """Remove a checkpoint folder (or file); gone already is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
