"""``hyso generate RUN_DIR --prompt TEXT``: sample text from a run's best checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from hyso.core.train.commands._common import require_run_dir
from hyso.core.train.commands._model import load_run, sample_text

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="sample text from a trained run",
        description="Load RUN_DIR's best checkpoint and tokenizer and print the prompt "
        "continued by the model.",
        epilog='example: hyso generate runs/<run-id> --prompt "def " --max-new-tokens 100',
    )
    p.add_argument("run_dir", help="the run folder written by hyso train")
    p.add_argument("--prompt", default="def ", help='text to continue (default "def ")')
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to add (default 200)")
    p.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature; 0 is greedy"
    )
    p.add_argument("--top-k", type=int, default=50, help="sample from the k likeliest tokens")
    p.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_run(require_run_dir(args.run_dir))
    text = sample_text(
        loaded.model,
        loaded.tokenizer,
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    print(text)
    return 0
