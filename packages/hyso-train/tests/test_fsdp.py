"""``training.strategy: fsdp`` on two CPU processes (gloo), launched by torchrun.

The worker trains a tiny decoder-only model for 20 optimizer steps (2 micro-batches
each, gradients clipped) under DDP or FSDP from the same seed and data, then writes its
final weights (gathered whole) and what its rank holds of parameters and optimizer
state, measured from the local shards. Its validation set gives rank 0 one batch more
than rank 1, which a sharded forward (a collective) must survive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hyso.core.models import HysoDecoderOnly, HysoEncoderDecoder, HysoEncoderOnly
from hyso.core.train import TrainingConfigError, resolve_settings
from hyso.core.train.fsdp import block_modules, lockstep_batches

WORKER = textwrap.dedent(
    """
    import faulthandler, gc, json, os, sys
    import torch
    faulthandler.enable(all_threads=True)  # a crash shows where every thread was
    from torch.utils.data import DataLoader, TensorDataset
    from hyso.core.models import HysoDecoderOnly
    from hyso.core.storage import CheckpointConfig, CheckpointManager, set_global_seed
    from hyso.core.train import Callback, Trainer, destroy_distributed, init_distributed
    from hyso.core.train.fsdp import local_state_bytes

    out_dir, strategy, fail_rank, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ckpt_dir, epochs = sys.argv[5], int(sys.argv[6])
    init_distributed("cpu", timeout_s=60)
    rank = int(os.environ.get("RANK", "0"))
    set_global_seed(3)
    model = HysoDecoderOnly(vocab_size=41, dim=32, num_layers=2, num_heads=2, max_seq_len=12)
    if extra == "lora":  # adapters on every projection; the base stays frozen
        from hyso.core.models.lora import LoRASettings, apply_lora
        targets = ("q", "k", "v", "out", "gate", "up", "down")
        apply_lora(model, LoRASettings(r=4, alpha=8, targets=targets))
        torch.manual_seed(4)
        for name, p in model.named_parameters():
            if ".lora_B." in name:  # zero at the start: move them so a mistake shows
                torch.nn.init.normal_(p, std=0.02)
    full_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, 41, (160, 9), generator=g)  # 80 rows a rank: 40 micro-batches of 2
    train = DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=2, shuffle=True)
    val_ids = torch.randint(0, 41, (7, 9), generator=g)  # 4 rows on rank 0, 3 on rank 1
    val = DataLoader(TensorDataset(val_ids[:, :-1], val_ids[:, 1:]), batch_size=1)
    # lr 1e-3: the two strategies sum the gradient norm in different orders, and at
    # 1e-2 AdamW grows that rounding (1e-7) to 1e-3 in 40 clipped steps.
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    class FailAt(Callback):
        def on_step_start(self, trainer):
            if trainer.global_step == 2 and rank == fail_rank:
                raise RuntimeError(f"rank {rank} fails on purpose")

    manager = None
    if ckpt_dir != "none":
        manager = CheckpointManager(CheckpointConfig.from_dir(directory=ckpt_dir))
    trainer = Trainer(model, opt, callbacks=[FailAt()], progress_bar=False, grad_accum_steps=2,
                      max_grad_norm=0.5, log_every=1, seed=9, dist_timeout_s=60,
                      strategy=strategy, mixed_precision=extra if extra == "bf16" else None,
                      checkpoint_manager=manager, save_every=7)
    trainer.fit(train, val, epochs=epochs, resume="latest" if extra == "resume" else None)
    held = local_state_bytes(model, opt)
    state_bytes = held
    if strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions, get_model_state_dict)
        weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    else:
        weights = model.state_dict()
    full_opt = full_bytes * 2  # AdamW: two moments the size of the parameters
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"held": held, "full": full_bytes + full_opt,
                   "val_loss": trainer.history[-1]["val_loss"],
                   "param_dtype": str(next(model.parameters()).dtype)}, f)
    if rank == 0:
        torch.save({k: v.detach().clone() for k, v in weights.items()},
                   os.path.join(out_dir, "final.pt"))
    # Free FSDP's modules, hooks and any collective handles they keep while the process
    # group still exists, rather than during interpreter shutdown after it is gone.
    del trainer, model, opt, weights
    gc.collect()
    destroy_distributed(sync=True)
    """
)


def _said(proc: subprocess.CompletedProcess) -> str:
    """A failed launch's stderr: the workers' own output first (a faulthandler dump
    says where a crashed rank was), then the launcher's summary at its end."""
    err = proc.stderr
    return err if len(err) <= 6000 else f"{err[:4000]}\n[...]\n{err[-2000:]}"


def _launch(
    tmp: Path,
    strategy: str,
    fail_rank: int = -1,
    extra: str = "none",
    ckpt_dir: Path | None = None,
    epochs: int = 1,
):
    out = tmp / strategy / f"{extra}-{epochs}"
    out.mkdir(parents=True)
    script = tmp / "worker.py"
    script.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [str(out), strategy, str(fail_rank), extra, str(ckpt_dir or "none"), str(epochs)]
    proc = subprocess.run(
        [*cmd, str(script), *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    return proc, out


@pytest.mark.timeout(600)
def test_fsdp_equals_ddp_and_each_rank_holds_half(tmp_path) -> None:
    ddp, ddp_out = _launch(tmp_path, "ddp")
    assert ddp.returncode == 0, _said(ddp)
    fsdp, fsdp_out = _launch(tmp_path, "fsdp")
    assert fsdp.returncode == 0, _said(fsdp)
    a = torch.load(ddp_out / "final.pt", weights_only=True)
    b = torch.load(fsdp_out / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
    ranks = [json.loads((fsdp_out / f"rank{r}.json").read_text()) for r in (0, 1)]
    replicas = [json.loads((ddp_out / f"rank{r}.json").read_text()) for r in (0, 1)]
    full = ranks[0]["full"]
    for held in (r["held"] for r in ranks):
        assert 0.45 * full <= held <= 0.56 * full, (held, full)
    for held in (r["held"] for r in replicas):  # a replica holds it all (+ AdamW's steps)
        assert full <= held <= 1.01 * full
    assert abs(ranks[0]["val_loss"] - replicas[0]["val_loss"]) < 1e-5


@pytest.mark.timeout(600)
def test_lora_adapters_under_fsdp_equal_ddp_and_the_base_stays_frozen(tmp_path) -> None:
    runs = {}
    for strategy in ("ddp", "fsdp"):
        proc, out = _launch(tmp_path, strategy, extra="lora", ckpt_dir=tmp_path / strategy / "c")
        assert proc.returncode == 0, _said(proc)
        runs[strategy] = torch.load(out / "final.pt", weights_only=True)
    a, b = runs["ddp"], runs["fsdp"]
    assert a.keys() == b.keys()
    assert any(".lora_A." in key for key in a)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)
    torch.manual_seed(3)
    base = HysoDecoderOnly(vocab_size=41, dim=32, num_layers=2, num_heads=2, max_seq_len=12)
    for name, weight in base.state_dict().items():  # the frozen base, bit for bit
        assert torch.equal(b[name], weight), name
    assert list((tmp_path / "fsdp" / "c").glob("*.dcp")), "no sharded checkpoint was saved"


@pytest.mark.timeout(300)
def test_a_failing_rank_fails_the_fsdp_launch(tmp_path) -> None:
    proc, out = _launch(tmp_path, "fsdp", fail_rank=1)
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr
    assert not (out / "final.pt").exists()


@pytest.mark.timeout(300)
def test_bf16_mixed_precision_keeps_fp32_shards_and_stays_near_fp32(tmp_path) -> None:
    fp32, fp32_out = _launch(tmp_path, "fsdp")
    assert fp32.returncode == 0, _said(fp32)
    bf16, bf16_out = _launch(tmp_path, "fsdp", extra="bf16")
    assert bf16.returncode == 0, _said(bf16)
    ranks = [json.loads((out / "rank0.json").read_text()) for out in (fp32_out, bf16_out)]
    assert [r["param_dtype"] for r in ranks] == ["torch.float32"] * 2
    assert abs(ranks[0]["val_loss"] - ranks[1]["val_loss"]) < 2e-2
    a = torch.load(fp32_out / "final.pt", weights_only=True)
    b = torch.load(bf16_out / "final.pt", weights_only=True)
    diffs = [float((a[k] - b[k]).abs().max()) for k in a]
    assert 0 < max(diffs) < 5e-3  # computed in bf16 (not bit-equal), yet close


@pytest.mark.timeout(600)
def test_sharded_checkpoints_resume_and_export_to_one_folder(tmp_path) -> None:
    ckpts = tmp_path / "ckpts"
    first, _ = _launch(tmp_path, "fsdp", extra="ckpt", ckpt_dir=ckpts)
    assert first.returncode == 0, _said(first)
    names = sorted(n for n in os.listdir(ckpts) if n.endswith(".dcp"))
    assert names[-1].endswith("-e0-s20.dcp") and (ckpts / f"{names[-1]}.json").is_file()
    assert len(list((ckpts / names[-1]).glob("*.distcp"))) == 2  # one shard a rank
    resumed, resumed_out = _launch(tmp_path, "fsdp", extra="resume", ckpt_dir=ckpts, epochs=2)
    assert resumed.returncode == 0, _said(resumed)
    whole, whole_out = _launch(tmp_path, "fsdp", epochs=2)
    assert whole.returncode == 0, _said(whole)
    final = torch.load(whole_out / "final.pt", weights_only=True)
    again = torch.load(resumed_out / "final.pt", weights_only=True)
    for key in final:  # an interrupted run continues to the same weights
        torch.testing.assert_close(again[key], final[key], rtol=0, atol=0, msg=key)
    # 2 -> 1: the latest sharded checkpoint loads in this process, into a whole model,
    # and leaves as one save_pretrained folder.
    from hyso.core.storage import CheckpointConfig, CheckpointManager

    model = HysoDecoderOnly(vocab_size=41, dim=32, num_layers=2, num_heads=2, max_seq_len=12)
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=ckpts))
    latest = manager.load_latest()
    assert latest.step == 40 and latest.sharded
    manager.restore_objects(latest, model, restore_rng=False)
    for key, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, final[key], rtol=0, atol=0, msg=key)
    exported = HysoDecoderOnly.from_pretrained(model.save_pretrained(tmp_path / "export"))
    for key, tensor in exported.state_dict().items():
        assert torch.equal(tensor, final[key]), key


# The encoder (learned positions) and the encoder-decoder (relative position bias)
# share position parameters between every block and the root: FSDP must still give
# DDP's weights. Each rank reads its own batches; 3 clipped AdamW steps.
FAMILIES_WORKER = """
import faulthandler, gc, sys, torch, torch.distributed as dist
faulthandler.enable(all_threads=True)
from hyso.core.models import HysoEncoderOnly, HysoEncoderDecoder
from hyso.core.train.fsdp import shard_model, clip_grad_norm
from torch.distributed.checkpoint.state_dict import get_model_state_dict, StateDictOptions
dist.init_process_group("gloo")
rank = dist.get_rank()
out = {}
FAMILIES = (
    ("enc", HysoEncoderOnly, {"pos_encoding": "learned"}),
    ("encdec", HysoEncoderDecoder, {"pos_encoding": "relative"}),
)
for name, cls, extra in FAMILIES:
    for strategy in ("ddp", "fsdp"):
        torch.manual_seed(0)
        m = cls(vocab_size=31, dim=32, num_layers=2, num_heads=2, max_seq_len=16, **extra)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        if strategy == "fsdp":
            shard_model(m, opt); model = m
        else:
            model = torch.nn.parallel.DistributedDataParallel(m)
        g = torch.Generator().manual_seed(rank)
        for _ in range(3):
            ids = torch.randint(0, 31, (2, 8), generator=g)
            logits = model(ids, ids) if name == "encdec" else model(ids)
            logits.logsumexp(-1).mean().backward()
            clip_grad_norm(list(m.parameters()), 0.5)
            opt.step()
            opt.zero_grad()
        whole = StateDictOptions(full_state_dict=True)
        sd = get_model_state_dict(m, options=whole) if strategy == "fsdp" else m.state_dict()
        out[(name, strategy)] = {k: v.detach().clone() for k, v in sd.items()}
    a, b = out[(name, "ddp")], out[(name, "fsdp")]
    if rank == 0:
        print(name, max((a[k] - b[k]).abs().max().item() for k in a))
del m, model, opt  # freed while the process group still exists
gc.collect()
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.timeout(300)
def test_encoder_families_with_shared_positions_equal_ddp(tmp_path) -> None:
    script = tmp_path / "families.py"
    script.write_text(FAMILIES_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, str(script)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, _said(proc)
    diffs = dict(line.split() for line in proc.stdout.splitlines() if line.startswith("enc"))
    assert set(diffs) == {"enc", "encdec"}
    assert all(float(d) < 1e-6 for d in diffs.values()), diffs


def test_blocks_of_every_family_are_the_sharded_units() -> None:
    common = {"vocab_size": 31, "dim": 16, "num_layers": 2, "num_heads": 2, "max_seq_len": 8}
    dec = HysoDecoderOnly(**common)
    assert block_modules(dec) == list(dec.blocks)
    enc = HysoEncoderOnly(**common, pos_encoding="learned")
    assert block_modules(enc) == list(enc.blocks)
    encdec = HysoEncoderDecoder(**common, pos_encoding="relative")
    assert block_modules(encdec) == [*encdec.encoder_blocks, *encdec.decoder_blocks]


def test_lockstep_without_a_group_counts_every_batch() -> None:
    assert list(lockstep_batches([1, 2], None)) == [(1, True), (2, True)]


def test_mixed_precision_needs_fsdp_and_a_known_dtype() -> None:
    with pytest.raises(TrainingConfigError, match=r"training\.mixed_precision"):
        resolve_settings({"training": {"mixed_precision": "bf16"}})
    with pytest.raises(TrainingConfigError, match=r"training\.mixed_precision.*'fp8'"):
        resolve_settings({"training": {"strategy": "fsdp", "mixed_precision": "fp8"}})
    assert resolve_settings(strategy="fsdp", mixed_precision="bf16").mixed_precision == "bf16"
