"""``hyso generate RUN_DIR --prompt TEXT``: sample text from a run's best checkpoint,
or from a ``save_pretrained`` or Hugging Face model folder holding a ``tokenizer.json``;
``--adapter DIR`` puts LoRA adapters (hyso's or PEFT's) on that model first.

Before anything is loaded, the run's tokenizer is checked against the SHA-256 its
manifest recorded (a swapped tokenizer would decode garbage without a word), its
config.yaml must hold a ``model`` section, and the sampling arguments must be finite.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from pathlib import Path
from typing import Any

from hyso.core.train.commands._common import CliError, require_run_dir
from hyso.core.train.commands._model import (
    add_adapter,
    load_model_folder,
    load_run,
    sample_text,
)

__all__ = ["check_run_files", "check_sampling_args", "register", "run"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="sample text from a trained run",
        description="Load RUN_DIR's best checkpoint and tokenizer (or a model folder's "
        "weights and tokenizer.json) and print the prompt "
        "continued by the model, token by token as it is produced. Special tokens other "
        "than EOS are never drawn unless --allow-special.",
        epilog='example: hyso generate runs/<run-id> --prompt "def " --max-new-tokens 100',
    )
    p.add_argument(
        "run_dir",
        help="the run folder written by hyso train, or a model folder (save_pretrained "
        "or Hugging Face) holding a tokenizer.json",
    )
    p.add_argument("--prompt", default="def ", help='text to continue (default "def ")')
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to add (default 200)")
    p.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature; 0 is greedy"
    )
    p.add_argument("--top-k", type=int, default=50, help="sample from the k likeliest tokens")
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="nucleus sampling: draw from the likeliest tokens whose probabilities "
        "reach P, 0 < P <= 1 (default: off)",
    )
    p.add_argument(
        "--allow-special",
        action="store_true",
        help="let the model draw special tokens such as <mask> (by default only EOS, "
        "which ends the text)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    p.add_argument(
        "--adapter",
        metavar="DIR",
        default=None,
        help="LoRA adapters to put on the model: a folder with lora.json (a LoRA run's "
        "artifacts/adapter) or PEFT's adapter_config.json",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_sampling_args(args.temperature, args.max_new_tokens, args.top_k, args.top_p)
    folder = Path(args.run_dir)
    if (folder / "config.json").is_file() and not (folder / "config.yaml").is_file():
        loaded = load_model_folder(folder)  # a save_pretrained or Hugging Face folder
    else:
        run_dir = require_run_dir(args.run_dir)
        check_run_files(run_dir)
        loaded = load_run(run_dir)
    adapter = getattr(args, "adapter", None)  # callers building the namespace may omit it
    if adapter is not None:
        loaded.model = add_adapter(loaded.model, Path(adapter)).eval()
    sample_text(
        loaded.model,
        loaded.tokenizer,
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        top_p=args.top_p,
        allow_special=args.allow_special,
        on_text=_print_piece,
    )
    print(flush=True)
    return 0


def _print_piece(text: str) -> None:
    print(text, end="", flush=True)


def check_sampling_args(
    temperature: float, max_new_tokens: int, top_k: int | None, top_p: float | None = None
) -> None:
    """``--temperature`` finite and >= 0, ``--max-new-tokens`` >= 0, ``--top-k`` >= 1,
    ``--top-p`` in (0, 1]."""
    if not math.isfinite(temperature) or temperature < 0:
        raise CliError(f"--temperature must be a finite number >= 0, got {temperature}")
    if max_new_tokens < 0:
        raise CliError(f"--max-new-tokens must be >= 0, got {max_new_tokens}")
    if top_k is not None and top_k < 1:
        raise CliError(f"--top-k must be >= 1, got {top_k}")
    if top_p is not None and not (math.isfinite(top_p) and 0.0 < top_p <= 1.0):
        raise CliError(f"--top-p must be a number in (0, 1], got {top_p}")


def check_run_files(run_dir: Path) -> None:
    """The run's config has a ``model`` section and its tokenizer is the one trained."""
    from hyso.core.config import load_config
    from hyso.core.storage import RunPaths, load_manifest

    paths = RunPaths.for_run_dir(run_dir)
    if paths.config_path.is_file():
        plain = load_config(paths.config_path).to_dict()
        if not isinstance(plain.get("model"), dict):
            raise CliError(
                f"{paths.config_path} has no model section: cannot rebuild the run's model"
            )
    if not (paths.manifest_path.is_file() and paths.tokenizer_path.is_file()):
        return  # load_run names whatever is missing
    manifest = load_manifest(paths.manifest_path)
    tokenizer = manifest.data.get("tokenizer")
    expected = tokenizer.get("sha256") if isinstance(tokenizer, dict) else None
    if not isinstance(expected, str):
        return  # a run written by the library, not hyso train: nothing recorded
    actual = hashlib.sha256(paths.tokenizer_path.read_bytes()).hexdigest()
    if actual != expected:
        raise CliError(
            f"{paths.tokenizer_path} is not the tokenizer this run was trained with: its "
            f"SHA-256 is {actual[:16]}..., the manifest records {expected[:16]}... "
            "(restore the run's own tokenizer file)"
        )
