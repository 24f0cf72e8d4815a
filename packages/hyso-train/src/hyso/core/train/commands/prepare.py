"""``hyso prepare CONFIG [key=value ...]``: tokenize a config's data into the cache.

``hyso train`` runs the same step when the cache lacks the data, so preparing first only
moves the work (to a machine with more cores, say). A user corpus (``data.paths``) is
streamed into token shards by worker processes, memory flat whatever its size; an
interrupted prepare resumes, keeping the shards it completed. The embedded corpus goes
to the single-file token cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from hyso.core.train.commands._lm_data import prepare_data
from hyso.core.train.data.pipeline import PreparedShards, default_workers
from hyso.core.train.run_config import load_run_config

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "prepare",
        help="tokenize a config's data into the cache (hyso train does it when missing)",
        description="Train (or load) the tokenizer of CONFIG's data section and write its "
        "tokens to the cache: data.paths corpora (.txt, .jsonl, .parquet; globs and "
        "folders) are streamed into sharded token files, resuming an interrupted run; "
        "the embedded corpus goes to the token cache. Prints the shards written and the "
        "throughput in MB/s.",
        epilog="example: hyso prepare configs/lm.yaml \"data.paths=['texts/*.jsonl']\"",
    )
    p.add_argument("config", help="path to a YAML or JSON config (e.g. configs/lm.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"processes that count and encode (default: {default_workers()}, up to 2 CPUs)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hyso.core.train.commands.train import load_cli_config

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    cfg = load_cli_config(args.config, args.overrides)
    settings = load_run_config(cfg)
    tokenizer = origin = None
    if settings.init_from is not None:  # the tokenizer hyso train will take from the source
        from hyso.core.train.commands._init_from import apply_init_from, load_init_source

        source = load_init_source(settings.init_from)
        settings = load_run_config(apply_init_from(cfg, source))
        tokenizer, origin = source.tokenizer, str(source.path)
    data = settings.data.to_dict()
    start = time.perf_counter()
    prepared = prepare_data(
        data, log=_to_stderr, tokenizer=tokenizer, tokenizer_origin=origin, workers=args.workers
    )
    if prepared.shards is not None:
        print_shards(prepared.shards)
        return 0
    seconds = time.perf_counter() - start
    state = "from cache" if prepared.tokens_cached else f"cached now in {seconds:.1f}s"
    print(
        f"{len(prepared.train_tokens):,} train / {len(prepared.val_tokens):,} val tokens "
        f"of the {prepared.corpus.name} corpus ({state}) under {prepared.cache_dir}"
    )
    return 0


def print_shards(shards: PreparedShards, file: Any = None) -> None:
    """The summary of a streamed prepare: shards, tokens and throughput."""
    out = file or sys.stdout
    fp = shards.corpus.fingerprint()
    n = {s: len(shards.corpus.index["splits"][s]["shards"]) for s in ("train", "val")}
    report = shards.report
    if report is None:
        state = "all from cache"
    else:
        rate = report.text_bytes / 1e6 / max(report.seconds, 1e-9)
        state = (
            f"{report.written} written, {report.kept} kept from an earlier run; "
            f"{report.text_bytes / 1e6:.1f} MB encoded at {rate:.2f} MB/s, "
            f"{shards.seconds:.1f}s in all"
        )
    print(
        f"{n['train']} train + {n['val']} val shards ({state}) in {shards.directory}\n"
        f"{len(shards.train_tokens):,} train / {len(shards.val_tokens):,} val tokens from "
        f"{fp['train_docs']:,} + {fp['val_docs']:,} documents, {fp['bytes'] / 1e6:.1f} MB "
        f"in {len(fp['files'])} file(s); tokenizer {shards.tokenizer_path}"
        f"{' (cached)' if shards.tokenizer_cached else ''}",
        file=out,
    )


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
