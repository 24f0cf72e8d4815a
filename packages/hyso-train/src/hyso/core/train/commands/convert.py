"""``hyso convert SRC DST``: a Hugging Face model folder to a hyso one, or back.

The direction follows SRC: a folder written by ``save_pretrained`` (its
``config.json`` has a ``format_version`` and a ``family``) is exported with
``to_hf``; a run folder of ``hyso train`` (``config.yaml``, no ``config.json``) has
its best (else latest) checkpoint exported with ``to_hf`` and its tokenizer with
the tokenizer's ``to_hf``; any other folder is read as a Hugging Face folder with
``load_hf`` and saved in hyso's format. Tokenizer files found in SRC are copied along.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hyso.core.storage.atomic import atomic_write
from hyso.core.train.commands._common import CliError

__all__ = ["TOKENIZER_FILES", "convert", "register", "run"]

# Files a tokenizer may be made of, in either layout; copied when present.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "generation_config.json",
)
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"}
DTYPES.update(float16="float16", fp16="float16")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a model folder between the Hugging Face and hyso formats",
        description="Convert SRC to DST: a hyso model folder (from save_pretrained) becomes a "
        "Hugging Face folder that transformers loads; a Hugging Face folder (Llama, Mistral, "
        "Qwen2, GPT-2, BERT, T5) becomes a hyso one; a run folder of hyso train becomes a "
        "Hugging Face folder of its best checkpoint and tokenizer. Tokenizer files in SRC "
        "are copied along.",
    )
    p.add_argument("src", help="the folder to convert (a model folder or a run folder)")
    p.add_argument("dst", help="the folder to write (must not exist, or be empty)")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="cast the weights (default: as stored)")
    p.add_argument("--architecture", help="transformers class to export as (hyso -> HF only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    direction = convert(args.src, args.dst, dtype=args.dtype, architecture=args.architecture)
    print(f"hyso convert: {args.src} -> {args.dst} ({direction})")
    return 0


def convert(
    src: str | Path, dst: str | Path, *, dtype: str | None = None, architecture: str | None = None
) -> str:
    """Convert the model folder (or run folder) ``src`` into ``dst``; return the
    direction taken (``"hyso -> hf"``, ``"run -> hf"`` or ``"hf -> hyso"``)."""
    import torch

    from hyso.core.models import load_hf, load_pretrained, to_hf

    source, target = Path(src), Path(dst)
    is_run = (source / "config.yaml").is_file() and not (source / "config.json").is_file()
    if not is_run and not (source / "config.json").is_file():
        raise CliError(f"{source}: no config.json; not a model folder (nor a run folder)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CliError(f"{target}: already exists and is not an empty folder")
    cast = None if dtype is None else getattr(torch, DTYPES[dtype])
    if is_run:
        _export_run(source, target, cast, architecture)
        return "run -> hf"
    if _is_hyso_folder(source / "config.json"):
        model = load_pretrained(source)
        if cast is not None:
            model = model.to(cast)
        to_hf(model, target, architecture=architecture)
        direction = "hyso -> hf"
    else:
        if architecture is not None:
            raise CliError("--architecture applies to hyso -> HF conversions only")
        load_hf(source, dtype=cast).save_pretrained(target)
        direction = "hf -> hyso"
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            _copy(source / name, target / name)
    return direction


def _export_run(source: Path, target: Path, cast: Any, architecture: str | None) -> None:
    """A run's best (else latest) model and its tokenizer as a Hugging Face folder."""
    from hyso.core.models import to_hf
    from hyso.core.train.commands._model import load_run
    from hyso.core.train.commands.generate import check_run_files

    check_run_files(source)
    loaded = load_run(source)
    model = loaded.model if cast is None else loaded.model.to(cast)
    to_hf(model, target, architecture=architecture)
    loaded.tokenizer.to_hf(target)  # tokenizer.json and tokenizer_config.json


def _is_hyso_folder(config: Path) -> bool:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{config}: not valid JSON ({exc})") from exc
    return isinstance(data, dict) and "format_version" in data and "family" in data


def _copy(source: Path, target: Path) -> None:
    """Copy one file with the project's atomic write (streamed, not read into memory)."""

    def write(out: Any) -> None:
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                out.write(chunk)

    atomic_write(target, write)
