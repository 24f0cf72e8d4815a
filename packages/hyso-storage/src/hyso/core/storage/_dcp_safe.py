"""Reading ``torch.distributed.checkpoint`` folders without running code from them.

DCP's own reader unpickles the ``.metadata`` file with plain :mod:`pickle` and its
default planner reads non-tensor values with ``torch.load(weights_only=False)``: a
crafted folder would run code as it loads. The reader and planner here accept only
what a checkpoint holds: the metadata's own classes (and dtypes, sizes, layouts,
paths), and values that ``torch.load(weights_only=True)`` reads. Anything else raises
:class:`pickle.UnpicklingError` naming the refused name.

Imported only when a sharded checkpoint is loaded (it imports DCP).
"""

from __future__ import annotations

import io
import pathlib
import pickle
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

__all__ = ["SafeLoadPlanner", "SafeReader", "safe_load_metadata"]

_METADATA_MODULE = "torch.distributed.checkpoint.metadata"
_ALLOWED = {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch.serialization", "_get_layout"),
    ("torch", "Size"),
    ("collections", "OrderedDict"),
    *(("pathlib", name) for name in ("Path", "PosixPath", "WindowsPath", "PurePosixPath")),
    ("pathlib", "PureWindowsPath"),
}


class _MetadataUnpickler(pickle.Unpickler):
    """An unpickler that finds only the names a DCP ``.metadata`` file refers to."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module == _METADATA_MODULE and not name.startswith("__"):
            found = super().find_class(module, name)
            if isinstance(found, type) and found.__module__ == _METADATA_MODULE:
                return found
            if name == "_MEM_FORMAT_ENCODING":  # an enum of the module
                return found
        raise pickle.UnpicklingError(f"refused {module}.{name}: not a checkpoint metadata name")


def safe_load_metadata(data: bytes) -> Metadata:
    """The :class:`Metadata` pickled in ``data``, or ``UnpicklingError``."""
    metadata = _MetadataUnpickler(io.BytesIO(data)).load()
    if not isinstance(metadata, Metadata):
        raise pickle.UnpicklingError(f"expected DCP Metadata, found {type(metadata).__name__}")
    return metadata


class SafeReader(FileSystemReader):
    """:class:`FileSystemReader` whose metadata is read by :func:`safe_load_metadata`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        rank = kwargs.get("rank")
        name = ".metadata" if rank is None else f"__{rank}.metadata"
        metadata = safe_load_metadata((pathlib.Path(str(self.path)) / name).read_bytes())
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata


class SafeLoadPlanner(DefaultLoadPlanner):
    """:class:`DefaultLoadPlanner` that reads non-tensor values with ``weights_only``."""

    def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
        checked = torch.load(value, weights_only=True)  # refuses anything but plain data
        again = io.BytesIO()
        torch.save(checked, again)  # what the default planner reads back: plain data only
        again.seek(0)
        super().load_bytes(read_item, again)
