"""hyso-tokenizer against HF ``tokenizers`` and ``tiktoken``, side by side in one run.

Standard setting (../shared/corpora/README.md): train byte-level BPE with the
GPT-2 split pattern on ``train_mix.txt`` to a vocabulary of 8192; encode
``wt2_valid.txt`` + ``wt2_test.txt``. Every measurement runs in a fresh worker
process (so HF's thread count can be pinned and peak memory read per run);
rounds alternate between the libraries and the best round counts.

Parity comes first: the merges must equal HF's, and the ids on the eval text
must equal HF's and tiktoken's. A tokenizer that disagrees gets no speed figure.

Usage: python benchmarks/bench_tokenizer.py [--corpora DIR] [--rounds N] [--quick]
       [--results FILE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPORA = REPO.parent / "shared" / "corpora"
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>", "<mask>"]
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# ---------------------------------------------------------------- workers (child processes)


def _peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024  # ru_maxrss is KiB on Linux


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _eval_text(corpora: Path) -> str:
    return "".join(
        (corpora / name).read_text(encoding="utf-8") for name in ("wt2_valid.txt", "wt2_test.txt")
    )


def _lines(text: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _best(fn: Any, reps: int, setup: Any = None) -> float:
    best = float("inf")
    for _ in range(reps):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def worker_train_hf(train: Path, vocab: int, out: Path) -> dict[str, Any]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    base = _rss_now_mib()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    t0 = time.perf_counter()
    tok.train([str(train)], trainer)
    seconds = time.perf_counter() - t0
    tok.save(str(out))
    return {"seconds": seconds, "peak_mib": _peak_rss_mib(), "base_mib": base}


def worker_train_ours(train: Path, vocab: int, out: Path, workers: int) -> dict[str, Any]:
    from hyso.core.tokenizer import HysoBPETokenizer

    base = _rss_now_mib()
    tok = HysoBPETokenizer()
    t0 = time.perf_counter()
    tok.train(train, vocab_size=vocab, num_workers=workers)
    seconds = time.perf_counter() - t0
    tok.to_hf(out)
    return {"seconds": seconds, "peak_mib": _peak_rss_mib(), "base_mib": base}


def _hf_without_added_tokens(tok_json: Path) -> Any:
    """The HF tokenizer with its special tokens demoted to plain vocabulary entries,
    so "<unk>" in text is ordinary text (what tiktoken's encode_ordinary does)."""
    from tokenizers import Tokenizer

    doc = json.loads(tok_json.read_text(encoding="utf-8"))
    doc["added_tokens"] = []
    return Tokenizer.from_str(json.dumps(doc))


def worker_encode_hf(
    tok_json: Path, corpora: Path, reps: int, plain: bool = False
) -> dict[str, Any]:
    from tokenizers import Tokenizer

    tok = _hf_without_added_tokens(tok_json) if plain else Tokenizer.from_file(str(tok_json))
    text = _eval_text(corpora)
    lines = _lines(text)
    ids = tok.encode(text).ids
    return {
        "encode_batch": _best(lambda: tok.encode_batch(lines), reps),
        "encode_whole": _best(lambda: tok.encode(text), reps),
        "decode": _best(lambda: tok.decode(ids, skip_special_tokens=False), reps),
    }


def worker_encode_tiktoken(tok_json: Path, corpora: Path, reps: int) -> dict[str, Any]:
    import tiktoken

    from hyso.core.tokenizer import HysoBPETokenizer

    ours = HysoBPETokenizer.from_hf(tok_json)
    enc = tiktoken.Encoding(
        "hyso-bench",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ours.to_tiktoken_ranks(),
        special_tokens=ours.special_token_ids,
    )
    text = _eval_text(corpora)
    return {"encode_ordinary": _best(lambda: enc.encode_ordinary(text), reps)}


def worker_encode_ours(tok_json: Path, corpora: Path, reps: int) -> dict[str, Any]:
    from hyso.core.tokenizer import HysoBPETokenizer

    tok = HysoBPETokenizer.from_hf(tok_json)
    text = _eval_text(corpora)
    lines = _lines(text)
    clear = tok._cache.clear
    ids = tok.encode(text, allowed_special="all")
    out = {
        "cold_whole": _best(lambda: tok.encode(text, allowed_special="all"), reps, clear),
        "cold_batch": _best(lambda: tok.encode_batch(lines, allowed_special="all"), reps, clear),
    }
    tok.encode(text)
    out["warm_whole"] = _best(lambda: tok.encode(text), reps)
    out["warm_batch"] = _best(lambda: tok.encode_batch(lines, allowed_special="all"), reps)
    out["decode"] = _best(lambda: tok.decode(ids), reps)
    return out


def worker_word_hf(vocab_json: Path, corpora: Path, reps: int) -> dict[str, Any]:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = json.loads(vocab_json.read_text(encoding="utf-8"))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    lines = _lines(_eval_text(corpora))
    return {"encode_batch": _best(lambda: tok.encode_batch(lines), reps)}


def worker_word_ours(tok_path: Path, corpora: Path, reps: int) -> dict[str, Any]:
    from hyso.core.tokenizer import HysoSimpleTokenizer

    tok = HysoSimpleTokenizer.load(tok_path)
    lines = _lines(_eval_text(corpora))
    return {"encode_batch": _best(lambda: tok.encode_batch(lines), reps)}


WORKERS = {
    "train_hf": worker_train_hf,
    "train_ours": worker_train_ours,
    "encode_hf": worker_encode_hf,
    "encode_tiktoken": worker_encode_tiktoken,
    "encode_ours": worker_encode_ours,
    "word_hf": worker_word_hf,
    "word_ours": worker_word_ours,
}


def run_worker(name: str, threads: int, **kwargs: Any) -> dict[str, Any]:
    """Run one worker in a fresh interpreter with HF's thread pool pinned to ``threads``."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    args = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()})
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--worker-args", args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker_main(name: str, raw: str) -> None:
    kwargs = json.loads(raw)
    for key in ("train", "out", "tok_json", "corpora", "vocab_json", "tok_path"):
        if key in kwargs:
            kwargs[key] = Path(kwargs[key])
    print(json.dumps(WORKERS[name](**kwargs)))


# ---------------------------------------------------------------- parity


def check_parity(hf_json: Path, ours_json: Path, corpora: Path) -> list[str]:
    """Differences between HF's and our tokenizer (empty when they agree)."""
    import tiktoken
    from tokenizers import Tokenizer

    from hyso.core.tokenizer import HysoBPETokenizer

    problems = []
    hf_model = json.loads(hf_json.read_text(encoding="utf-8"))["model"]
    our_model = json.loads(ours_json.read_text(encoding="utf-8"))["model"]

    def pairs(model: dict[str, Any]) -> list[tuple[str, str]]:
        return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]

    hf_merges, our_merges = pairs(hf_model), pairs(our_model)
    if hf_merges != our_merges:
        first = next(
            (i for i, (a, b) in enumerate(zip(hf_merges, our_merges)) if a != b),
            min(len(hf_merges), len(our_merges)),
        )
        problems.append(
            f"merges differ from #{first} ({len(hf_merges)} HF vs {len(our_merges)} ours)"
        )
    if hf_model["vocab"] != our_model["vocab"]:
        problems.append("vocabularies differ")
    hf = Tokenizer.from_file(str(hf_json))
    ours = HysoBPETokenizer.from_hf(ours_json)
    text = _eval_text(corpora)
    ids = ours.encode(text, allowed_special="all")
    if _hf_without_added_tokens(hf_json).encode(text).ids != ours.encode(text):
        problems.append("ids differ from HF encode without added tokens")
    if hf.encode(text).ids != ids:
        problems.append("ids of the whole eval text differ from HF encode")
    lines = _lines(text)
    if [e.ids for e in hf.encode_batch(lines)] != ours.encode_batch(lines, allowed_special="all"):
        problems.append("ids of the eval lines differ from HF encode_batch")
    if hf.decode(ids, skip_special_tokens=False) != ours.decode(ids):
        problems.append("decoded text differs from HF decode")
    enc = tiktoken.Encoding(
        "hyso-bench",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ours.to_tiktoken_ranks(),
        special_tokens=ours.special_token_ids,
    )
    if enc.encode_ordinary(text) != ours.encode(text):
        problems.append("ids differ from tiktoken encode_ordinary")
    return problems


def check_word_parity(vocab_json: Path, simple_path: Path, corpora: Path) -> list[str]:
    from tokenizers import Tokenizer, models, pre_tokenizers

    from hyso.core.tokenizer import HysoSimpleTokenizer

    hf = Tokenizer(
        models.WordLevel(json.loads(vocab_json.read_text(encoding="utf-8")), unk_token="<unk>")
    )
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    ours = HysoSimpleTokenizer.load(simple_path)
    lines = _lines(_eval_text(corpora))
    if [e.ids for e in hf.encode_batch(lines)] != ours.encode_batch(lines):
        return ["word-level ids differ from HF WordLevel"]
    return []


# ---------------------------------------------------------------- main


def _machine() -> str:
    import platform
    from importlib.metadata import version

    with open("/proc/meminfo") as fh:
        mem_gib = int(fh.readline().split()[1]) / 2**20
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}; tokenizers {version('tokenizers')}, "
        f"tiktoken {version('tiktoken')}; load average at the end {load}."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best counts")
    ap.add_argument("--quick", action="store_true", help="1 round, train on the first 2 MB")
    ap.add_argument("--results", type=Path, default=None, help="write a markdown section here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker_main(args.worker, args.worker_args)
        return 0

    corpora: Path = args.corpora
    train = corpora / "train_mix.txt"
    if not train.is_file():
        print(f"corpus {train} not found; pass --corpora DIR", file=sys.stderr)
        return 2
    rounds = 1 if args.quick else args.rounds
    eval_bytes = len(_eval_text(corpora).encode("utf-8"))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.quick:
            data = train.read_bytes()[: 2 << 20]
            train = tmp / "train_head.txt"
            train.write_bytes(data[: data.rfind(b"\n") + 1])
        train_mb = train.stat().st_size / 1e6
        hf_json, ours_json = tmp / "hf.json", tmp / "ours.json"

        # Training, alternating HF(1 thread), HF(2 threads), ours(2 workers), ours(1).
        runs: dict[str, list[dict[str, Any]]] = {"hf1": [], "hf2": [], "ours2": [], "ours1": []}
        for _ in range(rounds):
            runs["hf1"].append(
                run_worker("train_hf", 1, train=train, vocab=args.vocab_size, out=hf_json)
            )
            runs["hf2"].append(
                run_worker("train_hf", 2, train=train, vocab=args.vocab_size, out=hf_json)
            )
            runs["ours2"].append(
                run_worker(
                    "train_ours", 1, train=train, vocab=args.vocab_size, out=ours_json, workers=2
                )
            )
            runs["ours1"].append(
                run_worker(
                    "train_ours", 1, train=train, vocab=args.vocab_size, out=ours_json, workers=1
                )
            )

        problems = check_parity(hf_json, ours_json, corpora)
        simple_path, vocab_json = tmp / "simple.json", tmp / "word_vocab.json"
        from hyso.core.tokenizer import HysoSimpleTokenizer

        simple = HysoSimpleTokenizer().build_vocab(
            train.read_text(encoding="utf-8").splitlines(), max_size=30000
        )
        simple.save(simple_path)
        vocab_json.write_text(json.dumps(simple.vocab), encoding="utf-8")
        problems += check_word_parity(vocab_json, simple_path, corpora)
        if problems:
            print("PARITY FAILED, no speed reported:\n  " + "\n  ".join(problems))
            return 1
        print(
            f"parity: merges, vocabulary and ids identical to HF tokenizers and tiktoken "
            f"({args.vocab_size} ids)"
        )

        enc: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("hf1", "hf2", "hf1p", "tt", "ours", "w_hf2", "w_ours")
        }
        reps = 2
        for _ in range(rounds):
            enc["hf1"].append(
                run_worker("encode_hf", 1, tok_json=hf_json, corpora=corpora, reps=reps)
            )
            enc["hf1p"].append(
                run_worker("encode_hf", 1, tok_json=hf_json, corpora=corpora, reps=reps, plain=True)
            )
            enc["ours"].append(
                run_worker("encode_ours", 1, tok_json=ours_json, corpora=corpora, reps=reps)
            )
            enc["tt"].append(
                run_worker("encode_tiktoken", 1, tok_json=ours_json, corpora=corpora, reps=reps)
            )
            enc["hf2"].append(
                run_worker("encode_hf", 2, tok_json=hf_json, corpora=corpora, reps=reps)
            )
            enc["w_hf2"].append(
                run_worker("word_hf", 2, vocab_json=vocab_json, corpora=corpora, reps=reps)
            )
            enc["w_ours"].append(
                run_worker("word_ours", 1, tok_path=simple_path, corpora=corpora, reps=reps)
            )

    def best(key: str, field: str, table: dict[str, list[dict[str, Any]]]) -> float:
        return min(r[field] for r in table[key])

    def mbs(key: str, field: str) -> float:
        return eval_bytes / best(key, field, enc) / 1e6

    hf_ref = max(mbs("hf1", "encode_batch"), mbs("hf1p", "encode_batch"))

    t_hf1, t_hf2 = best("hf1", "seconds", runs), best("hf2", "seconds", runs)
    t_o2, t_o1 = best("ours2", "seconds", runs), best("ours1", "seconds", runs)
    mem = {
        k: (min(r["peak_mib"] for r in v), min(r["base_mib"] for r in v)) for k, v in runs.items()
    }
    rows = [
        ("Training", f"train_mix.txt ({train_mb:.1f} MB), vocab {args.vocab_size}", ""),
        (
            "HF tokenizers BPE training, 1 thread",
            f"{t_hf1:.2f} s",
            f"peak RSS {mem['hf1'][0]:.0f} MiB",
        ),
        (
            "HF tokenizers BPE training, 2 threads",
            f"{t_hf2:.2f} s",
            f"peak RSS {mem['hf2'][0]:.0f} MiB",
        ),
        (
            "hyso BPE training, 2 counting processes",
            f"{t_o2:.2f} s ({t_o2 / t_hf1:.2f}x HF 1 thread)",
            f"peak RSS {mem['ours2'][0]:.0f} MiB (parent + largest worker)",
        ),
        (
            "hyso BPE training, 1 process",
            f"{t_o1:.2f} s ({t_o1 / t_hf1:.2f}x HF 1 thread)",
            f"peak RSS {mem['ours1'][0]:.0f} MiB",
        ),
        ("Encoding", f"wt2 valid+test ({eval_bytes / 1e6:.2f} MB)", ""),
        ("HF encode_batch over lines, 1 thread", f"{mbs('hf1', 'encode_batch'):.2f} MB/s", ""),
        ("HF encode_batch over lines, 2 threads", f"{mbs('hf2', 'encode_batch'):.2f} MB/s", ""),
        (
            "HF encode_batch over lines, 1 thread, no added tokens",
            f"{mbs('hf1p', 'encode_batch'):.2f} MB/s",
            "specials demoted to plain vocabulary",
        ),
        ("HF encode, whole text, 1 thread", f"{mbs('hf1', 'encode_whole'):.2f} MB/s", ""),
        ("tiktoken encode_ordinary, whole text", f"{mbs('tt', 'encode_ordinary'):.2f} MB/s", ""),
        (
            "hyso encode, whole text, cold cache",
            f"{mbs('ours', 'cold_whole'):.2f} MB/s",
            f"{mbs('ours', 'cold_whole') / hf_ref:.2f}x HF encode_batch 1 thread (faster variant)",
        ),
        (
            "hyso encode_batch over lines, cold cache",
            f"{mbs('ours', 'cold_batch'):.2f} MB/s",
            f"{mbs('ours', 'cold_batch') / hf_ref:.2f}x HF encode_batch 1 thread (faster variant)",
        ),
        (
            "hyso encode, whole text, warm cache",
            f"{mbs('ours', 'warm_whole'):.2f} MB/s",
            f"{mbs('ours', 'warm_whole') / mbs('tt', 'encode_ordinary'):.2f}x tiktoken",
        ),
        ("hyso encode_batch over lines, warm cache", f"{mbs('ours', 'warm_batch'):.2f} MB/s", ""),
        ("Decoding", "the eval text's ids", ""),
        ("HF decode", f"{best('hf1', 'decode', enc) * 1e3:.0f} ms", ""),
        (
            "hyso decode",
            f"{best('ours', 'decode', enc) * 1e3:.0f} ms",
            f"{best('hf1', 'decode', enc) / best('ours', 'decode', enc):.2f}x faster",
        ),
        ("Word level", "eval lines, 30k-word vocabulary", ""),
        ("HF WordLevel encode_batch, 2 threads", f"{mbs('w_hf2', 'encode_batch'):.2f} MB/s", ""),
        (
            "hyso HysoSimpleTokenizer encode_batch, 1 process",
            f"{mbs('w_ours', 'encode_batch'):.2f} MB/s",
            f"{mbs('w_ours', 'encode_batch') / mbs('w_hf2', 'encode_batch'):.2f}x HF",
        ),
    ]
    table = ["| measurement | figure | note |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" if b or c else f"| **{a}** | *{b}* | |" for a, b, c in rows]
    goals = [
        ("training <= 1.5x HF 1-thread time", t_o2 <= 1.5 * t_hf1, f"{t_o2 / t_hf1:.2f}x"),
        (
            "cold encode >= 2.0x HF encode_batch 1 thread",
            mbs("ours", "cold_whole") >= 2.0 * hf_ref,
            f"{mbs('ours', 'cold_whole') / hf_ref:.2f}x (whole text); "
            f"{mbs('ours', 'cold_batch') / hf_ref:.2f}x (encode_batch over lines)",
        ),
        (
            "warm encode >= 0.7x tiktoken",
            mbs("ours", "warm_whole") >= 0.7 * mbs("tt", "encode_ordinary"),
            f"{mbs('ours', 'warm_whole') / mbs('tt', 'encode_ordinary'):.2f}x",
        ),
        (
            "decode faster than HF",
            best("ours", "decode", enc) < best("hf1", "decode", enc),
            f"{best('hf1', 'decode', enc) / best('ours', 'decode', enc):.2f}x",
        ),
        (
            "word level >= HF WordLevel encode_batch (2 threads)",
            mbs("w_ours", "encode_batch") >= mbs("w_hf2", "encode_batch"),
            f"{mbs('w_ours', 'encode_batch') / mbs('w_hf2', 'encode_batch'):.2f}x",
        ),
    ]
    goal_lines = [f"- {name}: **{'met' if ok else 'NOT met'}** ({fig})" for name, ok, fig in goals]
    report = "\n".join(table) + "\n\nGoals:\n" + "\n".join(goal_lines)
    print(report)
    if args.results is not None:
        command = "python benchmarks/bench_tokenizer.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        args.results.write_text(
            f"## Tokenizer\n\nCommand: `{command.strip()}` "
            f"(best of {rounds} alternating rounds)\n\n{_machine()}\n\n" + report + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
