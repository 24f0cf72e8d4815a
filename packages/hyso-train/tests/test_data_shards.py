"""Sharded token files: round trip, dtype, resume after SIGKILL, windows and rank shares."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from train_helpers import TinyLM, load_byte_tokenizer, params_equal

from hyso.core.storage import CheckpointConfig, CheckpointManager, RunPaths
from hyso.core.train import Callback, Trainer
from hyso.core.train.data.shards import (
    ShardedTokens,
    ShardWriteReport,
    load_shards,
    shard_dtype,
    write_shards,
)
from hyso.core.train.data.stream import SplitDecider
from hyso.core.train.data.windows import MaskedLMWindows, NextTokenWindows
from hyso.core.train.distributed import DistContext, shard_loader

HERE = Path(__file__).resolve().parent


def _docs(n: int = 120, seed: int = 0) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    decider = SplitDecider(0.2)
    out = []
    for i in range(n):
        text = f"doc {i} " + "".join(
            rng.choice("abcdé xyz\n") for _ in range(rng.randrange(20, 300))
        )
        size = len(text.encode())
        out.append((decider.decide(size), text, size))
    return out


def _write(
    tmp: Path,
    docs: list[tuple[str, str, int]],
    *,
    offset: int = 0,
    name: str = "shards",
    workers: int = 1,
    log: Any = None,
) -> ShardWriteReport:
    tok = tmp / f"tok{offset}.txt"
    tok.write_text(str(offset), encoding="utf-8")
    return write_shards(
        tmp / name,
        iter(docs),
        tokenizer_path=tok,
        tokenizer_loader=load_byte_tokenizer,
        vocab_size=offset + 257,
        eos_id=offset + 256,
        header={"corpus": {"sha256": "test"}},
        shard_bytes=2000,
        workers=workers,
        log=log,
    )


def _expected(docs: list[tuple[str, str, int]], split: str, offset: int = 0) -> list[int]:
    ids: list[int] = []
    for s, text, _ in docs:
        if s == split:
            ids.extend(b + offset for b in text.encode())
            ids.append(offset + 256)
    return ids


def _bins(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.bin"))}


def test_round_trip_equals_direct_encoding(tmp_path: Path) -> None:
    docs = _docs()
    report = _write(tmp_path, docs)
    assert report.written == len(report.index["splits"]["train"]["shards"]) + len(
        report.index["splits"]["val"]["shards"]
    )
    assert len(report.index["splits"]["train"]["shards"]) > 3  # several shards per split
    loaded = load_shards(tmp_path / "shards")
    assert loaded is not None and loaded["dtype"] == "uint16"
    for split in ("train", "val"):
        tokens = loaded["tokens"][split]
        expected = _expected(docs, split)
        assert tokens.to_numpy().tolist() == expected
        assert tokens.dtype == np.uint16 and len(tokens) == len(expected)
        lengths = [len(t.encode()) + 1 for s, t, _ in docs if s == split]
        assert tokens.doc_ends().tolist() == np.cumsum(lengths).tolist()
        assert [d.tolist() for d in tokens.documents()][:2] == [
            expected[: lengths[0]],
            expected[lengths[0] : lengths[0] + lengths[1]],
        ]
        rng = random.Random(1)
        for _ in range(50):  # slices across shard boundaries
            a = rng.randrange(len(expected))
            b = rng.randrange(a, len(expected) + 1)
            assert tokens[a:b].tolist() == expected[a:b]
        assert int(tokens[-1]) == 256
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert index["format_version"] == 1 and index["corpus"] == {"sha256": "test"}
    assert index["splits"]["val"]["tokens"] == len(_expected(docs, "val"))


def test_worker_processes_write_the_same_shards(tmp_path: Path) -> None:
    docs = _docs(seed=4)
    _write(tmp_path, docs, name="one", workers=1)
    _write(tmp_path, docs, name="two", workers=2)
    assert _bins(tmp_path / "one") == _bins(tmp_path / "two")


def test_dtype_is_uint16_while_the_vocabulary_fits() -> None:
    assert shard_dtype(300) == "uint16"
    assert shard_dtype(65536) == "uint16"
    assert shard_dtype(65537) == "uint32"


def test_wide_ids_round_trip_in_uint32(tmp_path: Path) -> None:
    docs = _docs(30, seed=2)
    _write(tmp_path, docs, offset=65536)
    loaded = load_shards(tmp_path / "shards")
    assert loaded is not None and loaded["dtype"] == "uint32"
    tokens = loaded["tokens"]["train"]
    assert tokens.to_numpy().tolist() == _expected(docs, "train", offset=65536)
    assert max(tokens.to_numpy().tolist()) > 65535
    first = tmp_path / "shards" / "train" / "shard-00000.bin"
    meta = json.loads(first.with_suffix(".json").read_text())
    assert first.stat().st_size == 4 * meta["tokens"]


_KILLER = """
import json, os, signal, sys
from pathlib import Path
from train_helpers import load_byte_tokenizer
from hyso.core.train.data.shards import write_shards
tmp = Path(sys.argv[1])
docs = [tuple(d) for d in json.loads((tmp / "docs.json").read_text())]
written = []
def log(message):
    written.append(message)
    if len(written) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
write_shards(tmp / "shards", iter(docs), tokenizer_path=tmp / "tok0.txt",
             tokenizer_loader=load_byte_tokenizer, vocab_size=257, eos_id=256,
             header={"corpus": {"sha256": "test"}}, shard_bytes=2000, workers=2, log=log)
"""


def test_prepare_killed_between_shards_resumes_with_the_same_result(tmp_path: Path) -> None:
    docs = _docs(seed=7)
    (tmp_path / "docs.json").write_text(json.dumps(docs), encoding="utf-8")
    (tmp_path / "tok0.txt").write_text("0", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    with (tmp_path / "err.txt").open("wb") as err:  # a file: no pipe to wait on
        proc = subprocess.Popen([sys.executable, "-c", _KILLER, str(tmp_path)], env=env, stderr=err)
        assert proc.wait(timeout=120) == -9, (tmp_path / "err.txt").read_text()
    assert _gone(str(tmp_path), seconds=10)  # the encoding workers exit with their writer
    folder = tmp_path / "shards"
    assert not (folder / "index.json").exists()
    assert len(list(folder.rglob("shard-*.json"))) == 3
    assert load_shards(folder) is None
    # a temp file of the dead writer, as a kill in mid-write leaves it
    stale = folder / "train" / f".shard-00009.bin.{proc.pid}.0123abcd.tmp"
    stale.write_bytes(b"partial")
    report = _write(tmp_path, docs)
    assert report.kept == 3
    assert report.written > 0
    assert not stale.exists()
    _write(tmp_path, docs, name="whole")
    assert _bins(folder) == _bins(tmp_path / "whole")
    resumed = json.loads((folder / "index.json").read_text())
    whole = json.loads((tmp_path / "whole" / "index.json").read_text())
    assert resumed == whole
    assert _write(tmp_path, docs).written == 0  # complete: nothing left to write


def test_killed_worker_is_an_error_and_the_rerun_resumes(tmp_path: Path) -> None:
    docs = _docs(seed=9)
    shards_seen = []

    def kill_a_worker(message: str) -> None:
        shards_seen.append(message)
        if len(shards_seen) == 2:
            os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
            time.sleep(0.5)

    with pytest.raises(ChildProcessError, match=r"worker process died.*run again to resume"):
        _write(tmp_path, docs, workers=2, log=kill_a_worker)
    report = _write(tmp_path, docs, workers=2)
    assert report.kept >= 2
    _write(tmp_path, docs, name="whole")
    assert _bins(tmp_path / "shards") == _bins(tmp_path / "whole")


def _gone(marker: str, seconds: float) -> bool:
    """No process's command line names ``marker`` (Linux /proc), within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = []
        for entry in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                alive.append(marker.encode() in entry.read_bytes())
            except OSError:
                continue
        if not any(alive):
            return True
        time.sleep(0.2)
    return False


def test_damaged_shard_is_detected_and_rewritten(tmp_path: Path) -> None:
    docs = _docs(seed=3)
    _write(tmp_path, docs)
    folder = tmp_path / "shards"
    target = folder / "train" / "shard-00001.bin"
    good = target.read_bytes()
    damaged = bytearray(good)
    damaged[5] ^= 0xFF
    target.write_bytes(bytes(damaged))
    assert load_shards(folder, verify=False) is not None  # same size: only the hash tells
    assert load_shards(folder) is None
    report = _write(tmp_path, docs)
    assert report.written == 1
    assert target.read_bytes() == good
    target.write_bytes(good[:-2])
    assert load_shards(folder, verify=False) is None


def test_windows_from_shards_equal_windows_from_memory(tmp_path: Path) -> None:
    docs = _docs(seed=5)
    _write(tmp_path, docs)
    loaded = load_shards(tmp_path / "shards")
    assert loaded is not None
    sharded = loaded["tokens"]["train"]
    memory = torch.tensor(_expected(docs, "train"))
    for seq_len in (7, 64, 333):
        a, b = NextTokenWindows(sharded, seq_len), NextTokenWindows(memory, seq_len)
        assert len(a) == len(b) > 0 and a.num_targets == b.num_targets
        for i in range(len(a)):
            assert all(torch.equal(u, v) for u, v in zip(a[i], b[i]))
            assert a[i][0].dtype == torch.int64
    ma = MaskedLMWindows(sharded, 32, mask_id=3, vocab_size=257, seed=2)
    mb = MaskedLMWindows(memory, 32, mask_id=3, vocab_size=257, seed=2)
    for i in range(len(ma)):
        assert all(torch.equal(u, v) for u, v in zip(ma[i], mb[i]))
    clone = pickle.loads(pickle.dumps(sharded))  # as DataLoader workers receive it
    assert clone[100:200].tolist() == sharded[100:200].tolist()


class _Recording(ShardedTokens):
    """Sharded tokens that note every range read."""

    reads: list[tuple[int, int]]

    def _read(self, start: int, stop: int) -> Any:
        self.reads.append((start, stop))
        return super()._read(start, stop)


def test_each_rank_reads_only_its_share(tmp_path: Path) -> None:
    docs = _docs(seed=6)
    _write(tmp_path, docs)
    base = load_shards(tmp_path / "shards")["tokens"]["train"]  # type: ignore[index]
    seq_len, world = 16, 3
    shares = []
    for rank in range(world):
        tokens = _Recording(base.files, "uint16")
        tokens.reads = []
        windows = NextTokenWindows(tokens, seq_len)
        loader = DataLoader(windows, batch_size=2, shuffle=True, drop_last=True)
        ranked = shard_loader(loader, DistContext(rank=rank, world_size=world), seed=1, train=True)
        for _ in ranked:
            pass
        starts = {a for a, _ in tokens.reads}
        assert all(b - a == seq_len + 1 and a % seq_len == 0 for a, b in tokens.reads)
        shares.append({a // seq_len for a in starts})
    n = len(NextTokenWindows(base, seq_len))
    assert sum(len(s) for s in shares) == len(set().union(*shares))  # disjoint
    per_rank = n // world
    assert all(len(s) >= per_rank - 2 for s in shares)  # batches of 2, the last dropped
    assert len(set().union(*shares)) >= n - world * 2
    assert set().union(*shares) <= set(range(n))


class _Interrupt(Exception):
    pass


class _StopAt(Callback):
    """Raise at the start of optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_start(self, trainer: Trainer) -> None:
        if trainer.global_step + 1 == self.step:
            raise _Interrupt


def _fit_windows(tokens: Any, run_dir: Path, stop_at: int | None = None, resume: Any = None):
    torch.manual_seed(0)
    model = TinyLM(vocab=257)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    paths = RunPaths.for_run_dir(run_dir).ensure_dirs()
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=paths.checkpoints_dir))
    loader = DataLoader(NextTokenWindows(tokens, 16), batch_size=4, shuffle=True, drop_last=True)
    callbacks = [] if stop_at is None else [_StopAt(stop_at)]
    trainer = Trainer(
        model, opt, run_paths=paths, checkpoint_manager=manager, callbacks=callbacks,
        save_every=1, progress_bar=False, seed=3,
    )  # fmt: skip
    trainer.fit(loader, epochs=1, resume=resume)
    return trainer


def test_mid_epoch_resume_on_shards_is_exact(tmp_path: Path) -> None:
    docs = _docs(seed=8)
    _write(tmp_path, docs)
    sharded = load_shards(tmp_path / "shards")["tokens"]["train"]  # type: ignore[index]
    memory = torch.tensor(_expected(docs, "train"))
    full = _fit_windows(sharded, tmp_path / "full")
    assert full.global_step > 6
    in_memory = _fit_windows(memory, tmp_path / "memory")
    assert params_equal(full.model, in_memory.model)  # shards train as memory does
    with pytest.raises(_Interrupt):
        _fit_windows(sharded, tmp_path / "cut", stop_at=5)
    resumed = _fit_windows(sharded, tmp_path / "cut", resume="latest")
    assert resumed.global_step == full.global_step
    assert params_equal(full.model, resumed.model)
