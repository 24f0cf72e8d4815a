"""hyso-tokenizer against HF ``tokenizers`` and ``tiktoken``, side by side in one run.

Standard setting (../shared/corpora/README.md): train byte-level BPE with the
GPT-2 split pattern on ``train_mix.txt`` to a vocabulary of 8192; encode
``wt2_valid.txt`` + ``wt2_test.txt``. Every measurement runs in a fresh worker
process (so HF's thread count can be pinned and peak memory read per run);
rounds alternate between the libraries and the best round counts.

Parity comes first: the merges must equal HF's, and the ids on the eval text
must equal HF's and tiktoken's. A tokenizer that disagrees gets no speed figure.

Training compares equal resources: HF on N threads against hyso with N counting
processes, for each N of ``--threads`` (default 1,2), wall and CPU time. The warm
encode figure never warms the cache on the timed text: each half of the eval text
(valid, test) is timed after the cache was cleared and warmed on the other half; a
repeat encode of identical text is reported on its own row, with no goal. Workers on
one thread are timed by process CPU time, HF on several threads by wall time.

Usage: python benchmarks/bench_tokenizer.py [--corpora DIR] [--rounds N] [--quick]
       [--threads 1,2] [--results FILE.md]
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


def _cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its waited-for children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _clock() -> Any:
    """Process CPU time in a one-thread worker (other jobs on the machine do not count),
    wall time where HF runs several threads (its CPU time would sum them)."""
    return time.process_time if os.environ.get("RAYON_NUM_THREADS") == "1" else time.perf_counter


def _best(fn: Any, reps: int, setup: Any = None) -> float:
    clock = _clock()
    best = float("inf")
    for _ in range(reps):
        if setup is not None:
            setup()
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
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
    c0, t0 = _cpu_seconds(), time.perf_counter()
    tok.train([str(train)], trainer)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    tok.save(str(out))
    return {"seconds": seconds, "cpu": cpu, "peak_mib": _peak_rss_mib(), "base_mib": base}


def worker_train_ours(train: Path, vocab: int, out: Path, workers: int) -> dict[str, Any]:
    from hyso.core.tokenizer import HysoBPETokenizer

    base = _rss_now_mib()
    tok = HysoBPETokenizer()
    c0, t0 = _cpu_seconds(), time.perf_counter()
    tok.train(train, vocab_size=vocab, num_workers=workers)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    tok.to_hf(out)
    return {"seconds": seconds, "cpu": cpu, "peak_mib": _peak_rss_mib(), "base_mib": base}


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


def _eval_halves(corpora: Path) -> tuple[str, str]:
    return tuple(  # type: ignore[return-value]
        (corpora / name).read_text(encoding="utf-8") for name in ("wt2_valid.txt", "wt2_test.txt")
    )


def _warm_on_other(tok: Any, encode: Any, reps: int, halves: tuple[Any, Any]) -> float:
    """Seconds to encode both halves of the eval text, each timed after the cache was
    cleared and warmed on the other half only (never on the timed text); best of reps."""
    total = 0.0
    for timed, other in (halves, halves[::-1]):

        def warm(other: Any = other) -> None:
            tok._cache.clear()
            encode(other)

        total += _best(lambda timed=timed: encode(timed), reps, warm)
    return total


def worker_encode_ours(tok_json: Path, corpora: Path, reps: int) -> dict[str, Any]:
    from hyso.core.tokenizer import HysoBPETokenizer

    tok = HysoBPETokenizer.from_hf(tok_json)
    text = _eval_text(corpora)
    lines = _lines(text)
    halves = _eval_halves(corpora)
    clear = tok._cache.clear
    ids = tok.encode(text, allowed_special="all")
    out = {
        "cold_whole": _best(lambda: tok.encode(text, allowed_special="all"), reps, clear),
        "cold_batch": _best(lambda: tok.encode_batch(lines, allowed_special="all"), reps, clear),
        "warm_whole": _warm_on_other(tok, tok.encode, reps, halves),
        "warm_batch": _warm_on_other(
            tok,
            lambda ls: tok.encode_batch(ls, allowed_special="all"),
            reps,
            (_lines(halves[0]), _lines(halves[1])),
        ),
    }
    tok.encode(text)  # a second pass over identical text: every piece is cached
    out["repeat_whole"] = _best(lambda: tok.encode(text), reps)
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


Runs = dict[str, list[dict[str, Any]]]
Row = tuple[str, str, str]
Goal = tuple[str, bool, str]


def _train_rounds(train: Path, vocab: int, threads: list[int], rounds: int, tmp: Path) -> Runs:
    """Training at equal resources: HF on N threads against ours with N counting
    processes, for every N of ``threads``, alternating; the last HF and ours models
    are left in tmp/hf.json and tmp/ours.json."""
    runs: Runs = {}
    for _ in range(rounds):
        for n in threads:
            runs.setdefault(f"hf{n}", []).append(
                run_worker("train_hf", n, train=train, vocab=vocab, out=tmp / "hf.json")
            )
            runs.setdefault(f"ours{n}", []).append(
                run_worker(
                    "train_ours", 1, train=train, vocab=vocab, out=tmp / "ours.json", workers=n
                )
            )
    return runs


def _encode_rounds(tmp: Path, corpora: Path, most: int, rounds: int, reps: int) -> Runs:
    """Encoding and decoding, every library in a fresh worker per round, alternating."""
    hf_json, ours_json = tmp / "hf.json", tmp / "ours.json"
    jobs: dict[str, tuple[str, int, dict[str, Any]]] = {
        "hf1": ("encode_hf", 1, {"tok_json": hf_json}),
        "hf1p": ("encode_hf", 1, {"tok_json": hf_json, "plain": True}),
        "ours": ("encode_ours", 1, {"tok_json": ours_json}),
        "tt": ("encode_tiktoken", 1, {"tok_json": ours_json}),
        "hfN": ("encode_hf", most, {"tok_json": hf_json}),
        "w_hf1": ("word_hf", 1, {"vocab_json": tmp / "word_vocab.json"}),
        "w_hfN": ("word_hf", most, {"vocab_json": tmp / "word_vocab.json"}),
        "w_ours": ("word_ours", 1, {"tok_path": tmp / "simple.json"}),
    }
    enc: Runs = {key: [] for key in jobs}
    for _ in range(rounds):
        for key, (worker, n, kwargs) in jobs.items():
            enc[key].append(run_worker(worker, n, corpora=corpora, reps=reps, **kwargs))
    return enc


def _parity(train: Path, tmp: Path, corpora: Path) -> list[str]:
    """BPE parity with HF and tiktoken, then word-level parity with HF WordLevel."""
    from hyso.core.tokenizer import HysoSimpleTokenizer

    problems = check_parity(tmp / "hf.json", tmp / "ours.json", corpora)
    simple = HysoSimpleTokenizer().build_vocab(
        train.read_text(encoding="utf-8").splitlines(), max_size=30000
    )
    simple.save(tmp / "simple.json")
    (tmp / "word_vocab.json").write_text(json.dumps(simple.vocab), encoding="utf-8")
    return problems + check_word_parity(tmp / "word_vocab.json", tmp / "simple.json", corpora)


def _training_rows(runs: Runs, threads: list[int]) -> tuple[list[Row], list[Goal]]:
    """One row per library and resource level; the goal holds only if every level holds."""

    def best(key: str, field: str) -> float:
        return min(r[field] for r in runs[key])

    rows: list[Row] = []
    ratios = []
    for n in threads:
        hf_s, ours_s = best(f"hf{n}", "seconds"), best(f"ours{n}", "seconds")
        ratios.append((n, ours_s / hf_s, best(f"ours{n}", "cpu") / best(f"hf{n}", "cpu")))
        unit = "thread" if n == 1 else "threads"
        rows.append(
            (
                f"HF tokenizers BPE training, {n} {unit}",
                f"{hf_s:.2f} s wall, {best(f'hf{n}', 'cpu'):.2f} s CPU",
                f"peak RSS {best(f'hf{n}', 'peak_mib'):.0f} MiB",
            )
        )
        kind = "1 process" if n == 1 else f"{n} counting processes"
        rows.append(
            (
                f"hyso BPE training, {kind}",
                f"{ours_s:.2f} s wall ({ours_s / hf_s:.2f}x HF {n} {unit}), "
                f"{best(f'ours{n}', 'cpu'):.2f} s CPU",
                f"peak RSS {best(f'ours{n}', 'peak_mib'):.0f} MiB"
                + (" (parent + largest worker)" if n > 1 else ""),
            )
        )
    figure = "; ".join(f"{r:.2f}x wall, {c:.2f}x CPU at {n} vs {n}" for n, r, c in ratios)
    ok = all(r <= 1.5 and c <= 1.5 for _, r, c in ratios)  # wall and CPU, every level
    goal = ("training <= 1.5x HF at equal threads/processes (wall and CPU)", ok)
    return rows, [(*goal, figure)]


class _Rates:
    """Best-round seconds and MB/s of the encoding workers."""

    def __init__(self, enc: Runs, eval_bytes: int) -> None:
        self.enc, self.eval_bytes = enc, eval_bytes

    def best(self, key: str, field: str) -> float:
        return min(r[field] for r in self.enc[key])

    def mbs(self, key: str, field: str) -> float:
        return self.eval_bytes / self.best(key, field) / 1e6


def _encoding_rows(enc: Runs, eval_bytes: int, most: int) -> tuple[list[Row], list[Goal]]:
    rates = _Rates(enc, eval_bytes)
    best, mbs = rates.best, rates.mbs
    hf_ref = max(mbs("hf1", "encode_batch"), mbs("hf1p", "encode_batch"))
    tt = mbs("tt", "encode_ordinary")
    most_t = f"{most} thread" + ("s" if most > 1 else "")
    rows: list[Row] = [
        ("Encoding", f"wt2 valid+test ({eval_bytes / 1e6:.2f} MB)", ""),
        ("HF encode_batch over lines, 1 thread", f"{mbs('hf1', 'encode_batch'):.2f} MB/s", ""),
        (
            f"HF encode_batch over lines, {most_t}",
            f"{mbs('hfN', 'encode_batch'):.2f} MB/s",
            "wall time" if most > 1 else "",
        ),
        (
            "HF encode_batch over lines, 1 thread, no added tokens",
            f"{mbs('hf1p', 'encode_batch'):.2f} MB/s",
            "specials demoted to plain vocabulary",
        ),
        ("HF encode, whole text, 1 thread", f"{mbs('hf1', 'encode_whole'):.2f} MB/s", ""),
        ("tiktoken encode_ordinary, whole text", f"{tt:.2f} MB/s", ""),
    ]
    for field, what in (("cold_whole", "encode, whole text"), ("cold_batch", "encode_batch")):
        ratio = mbs("ours", field) / hf_ref
        rows.append(
            (
                f"hyso {what}, cold cache",
                f"{mbs('ours', field):.2f} MB/s",
                f"{ratio:.2f}x HF encode_batch 1 thread (faster variant)",
            )
        )
    rows += [
        (
            "hyso encode, whole text, cache warmed on other text",
            f"{mbs('ours', 'warm_whole'):.2f} MB/s",
            f"{mbs('ours', 'warm_whole') / tt:.2f}x tiktoken; each half timed after warming "
            "on the other half",
        ),
        (
            "hyso encode_batch, cache warmed on other text",
            f"{mbs('ours', 'warm_batch'):.2f} MB/s",
            "as above",
        ),
        (
            "hyso encode, whole text, repeated (identical text)",
            f"{mbs('ours', 'repeat_whole'):.2f} MB/s",
            f"{mbs('ours', 'repeat_whole') / tt:.2f}x tiktoken; every piece cached: no goal",
        ),
        ("Decoding", "the eval text's ids", ""),
        ("HF decode", f"{best('hf1', 'decode') * 1e3:.0f} ms", ""),
        (
            "hyso decode",
            f"{best('ours', 'decode') * 1e3:.0f} ms",
            f"{best('hf1', 'decode') / best('ours', 'decode'):.2f}x faster",
        ),
        ("Word level", "eval lines, 30k-word vocabulary", ""),
        ("HF WordLevel encode_batch, 1 thread", f"{mbs('w_hf1', 'encode_batch'):.2f} MB/s", ""),
        (
            f"HF WordLevel encode_batch, {most_t}",
            f"{mbs('w_hfN', 'encode_batch'):.2f} MB/s",
            "wall time" if most > 1 else "",
        ),
        (
            "hyso HysoSimpleTokenizer encode_batch, 1 process",
            f"{mbs('w_ours', 'encode_batch'):.2f} MB/s",
            f"{mbs('w_ours', 'encode_batch') / mbs('w_hf1', 'encode_batch'):.2f}x HF 1 thread",
        ),
    ]
    return rows, _encoding_goals(rates, hf_ref)


def _encoding_goals(rates: _Rates, hf_ref: float) -> list[Goal]:
    best, mbs = rates.best, rates.mbs
    tt = mbs("tt", "encode_ordinary")
    cold = mbs("ours", "cold_whole") / hf_ref
    warm = mbs("ours", "warm_whole") / tt
    word = mbs("w_ours", "encode_batch") / mbs("w_hf1", "encode_batch")
    goals: list[Goal] = [
        (
            "cold encode >= 2.0x HF encode_batch 1 thread",
            cold >= 2.0,
            f"{cold:.2f}x (whole text); {mbs('ours', 'cold_batch') / hf_ref:.2f}x (encode_batch)",
        ),
        ("encode, cache warmed on other text, >= 0.7x tiktoken", warm >= 0.7, f"{warm:.2f}x"),
        (
            "decode faster than HF",
            best("ours", "decode") < best("hf1", "decode"),
            f"{best('hf1', 'decode') / best('ours', 'decode'):.2f}x",
        ),
        ("word level >= HF WordLevel encode_batch (1 thread)", word >= 1.0, f"{word:.2f}x"),
    ]
    return goals


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _threads(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",")})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"--threads wants counts >= 1 like 1,2; got {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best counts")
    ap.add_argument(
        "--threads",
        type=_threads,
        default=[1, 2],
        help="thread counts to train at, HF threads against as many hyso processes (1,2)",
    )
    ap.add_argument("--quick", action="store_true", help="1 round, train on the first 2 MB")
    ap.add_argument("--results", type=Path, default=None, help="write a markdown section here")
    ap.add_argument(
        "--backend",
        choices=("python", "auto"),
        default="python",
        help="hyso's encoder: pure Python (default), or auto (tiktoken when it can)",
    )
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-args", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker_main(args.worker, args.worker_args)
        return 0
    # Workers inherit the choice through the environment.
    if args.backend == "python":
        os.environ["HYSO_TOKENIZER_BACKEND"] = "python"
    else:
        os.environ.pop("HYSO_TOKENIZER_BACKEND", None)

    corpora: Path = args.corpora
    train = corpora / "train_mix.txt"
    if not train.is_file():
        print(f"corpus {train} not found; pass --corpora DIR", file=sys.stderr)
        return 2
    rounds = 1 if args.quick else args.rounds
    eval_bytes = len(_eval_text(corpora).encode("utf-8"))
    load_start = _load()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.quick:
            data = train.read_bytes()[: 2 << 20]
            train = tmp / "train_head.txt"
            train.write_bytes(data[: data.rfind(b"\n") + 1])
        train_mb = train.stat().st_size / 1e6
        runs = _train_rounds(train, args.vocab_size, args.threads, rounds, tmp)
        problems = _parity(train, tmp, corpora)
        if problems:
            print("PARITY FAILED, no speed reported:\n  " + "\n  ".join(problems))
            return 1
        print(
            f"parity: merges, vocabulary and ids identical to HF tokenizers and tiktoken "
            f"({args.vocab_size} ids)"
        )
        enc = _encode_rounds(tmp, corpora, max(args.threads), rounds, reps=2)
    train_rows, goals = _training_rows(runs, args.threads)
    enc_rows, enc_goals = _encoding_rows(enc, eval_bytes, max(args.threads))
    rows = [("Training", f"train_mix.txt ({train_mb:.1f} MB), vocab {args.vocab_size}", "")]
    rows += train_rows + enc_rows
    table = ["| measurement | figure | note |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" if b or c else f"| **{a}** | *{b}* | |" for a, b, c in rows]
    goal_lines = [
        f"- {name}: **{'met' if ok else 'NOT met'}** ({fig})" for name, ok, fig in goals + enc_goals
    ]
    report = (
        "\n".join(table)
        + f"\n\nLoad average at the start {load_start}, at the end {_load()}.\n\nGoals:\n"
        + "\n".join(goal_lines)
    )
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
