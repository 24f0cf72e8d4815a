"""Reading and writing the weight files of a Hugging Face model folder.

A folder holds ``model.safetensors``, a sharded ``model.safetensors.index.json``
(its ``weight_map`` names the shard of every tensor), or ``pytorch_model.bin``
(read with ``torch.load(weights_only=True, mmap=True)``: only tensors, nothing
executed). :class:`WeightSource` reads every tensor's shape from the file
headers first, so a config can be checked against the shapes before anything is
allocated, then reads each tensor once, through a memory map.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

__all__ = [
    "BIN_NAME",
    "INDEX_NAME",
    "SAFETENSORS_NAME",
    "HFFormatError",
    "WeightSource",
    "read_json",
]

SAFETENSORS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
BIN_NAME = "pytorch_model.bin"
# A config.json or index larger than this is not a model description.
MAX_JSON_BYTES = 64 * 1024 * 1024


class HFFormatError(ValueError):
    """A Hugging Face model folder holds something that cannot be loaded exactly."""


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; a missing, huge or malformed file is an
    :class:`HFFormatError`."""
    if not path.is_file():
        raise HFFormatError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise HFFormatError(f"{path}: {size} bytes is too large for a JSON description")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise HFFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise HFFormatError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


class WeightSource:
    """The tensors of one model folder: names, shapes and dtypes from the headers, then
    each tensor read on demand. Use as a context manager (it holds the files open)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._stack = ExitStack()
        self._files: dict[str, Path] = {}  # tensor name -> the file holding it
        self._handles: dict[Path, Any] = {}
        self._bin: dict[str, torch.Tensor] | None = None
        self._source_names: dict[str, str] | None = None  # see add_prefix
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, torch.dtype] = {}
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise

    def _open(self) -> None:
        single, index, binary = (self.folder / n for n in (SAFETENSORS_NAME, INDEX_NAME, BIN_NAME))
        if single.is_file():
            self._add_safetensors(single, None)
        elif index.is_file():
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not all(
                isinstance(v, str) for v in weight_map.values()
            ):
                raise HFFormatError(f"{index}: 'weight_map' must map tensor names to file names")
            for shard in sorted(set(weight_map.values())):
                path = self.folder / shard
                if Path(shard).name != shard or not path.is_file():
                    raise HFFormatError(f"{index}: shard {shard!r} is not a file in {self.folder}")
                names = {k for k, v in weight_map.items() if v == shard}
                self._add_safetensors(path, names)
        elif binary.is_file():
            self._add_bin(binary)
        else:
            raise HFFormatError(
                f"{self.folder}: no {SAFETENSORS_NAME}, {INDEX_NAME} or {BIN_NAME} found"
            )

    def _add_safetensors(self, path: Path, names: set[str] | None) -> None:
        try:
            handle = self._stack.enter_context(safe_open(str(path), framework="pt"))
            keys = list(handle.keys())
            for key in keys:
                view = handle.get_slice(key)
                self.shapes[key] = tuple(int(n) for n in view.get_shape())
                self.dtypes[key] = _DTYPES.get(view.get_dtype(), torch.float32)
        except (SafetensorError, OSError, ValueError) as exc:
            raise HFFormatError(f"{path}: damaged safetensors file ({exc})") from exc
        if names is not None and names != set(keys):
            missing = sorted(names - set(keys))[:5]
            extra = sorted(set(keys) - names)[:5]
            raise HFFormatError(
                f"{path}: does not hold what {INDEX_NAME} lists "
                f"(listed but absent: {missing or 'none'}; present but unlisted: {extra or 'none'})"
            )
        for key in keys:
            if key in self._files:
                raise HFFormatError(f"{path}: tensor {key!r} is also in {self._files[key]}")
            self._files[key] = path
        self._handles[path] = handle

    def _add_bin(self, path: Path) -> None:
        try:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (non-zip) file cannot be mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise HFFormatError(
                f"{path}: cannot be read as a weights-only state dict ({exc})"
            ) from exc
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            raise HFFormatError(f"{path}: expected a mapping of names to tensors")
        self._bin = state
        for key, tensor in state.items():
            self.shapes[key] = tuple(tensor.shape)
            self.dtypes[key] = tensor.dtype
            self._files[key] = path

    def add_prefix(self, prefix: str) -> None:
        """Name every tensor ``prefix + name`` (for checkpoints saved without it)."""
        self._source_names = {prefix + name: name for name in self._files}
        self._files = {prefix + name: path for name, path in self._files.items()}
        self.shapes = {prefix + name: shape for name, shape in self.shapes.items()}
        self.dtypes = {prefix + name: dtype for name, dtype in self.dtypes.items()}

    def file_of(self, name: str) -> Path:
        """The file holding tensor ``name`` (for error messages)."""
        return self._files.get(name, self.folder)

    def names(self) -> Iterator[str]:
        """Every tensor name, in file order."""
        return iter(self._files)

    def get(self, name: str) -> torch.Tensor:
        """Tensor ``name``, read once from its file."""
        path = self._files[name]
        if self._source_names is not None:
            name = self._source_names[name]
        if self._bin is not None:
            return self._bin[name]
        try:
            return self._handles[path].get_tensor(name)
        except (SafetensorError, OSError, ValueError) as exc:
            raise HFFormatError(f"{path}: tensor {name!r} cannot be read ({exc})") from exc

    def close(self) -> None:
        """Release the files."""
        self._bin = None
        self._handles.clear()
        self._stack.close()

    def __enter__(self) -> WeightSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
