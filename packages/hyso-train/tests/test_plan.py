"""``hyso plan``: the estimate against the measured peak of small CPU runs, and the command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hyso.core.train.cli import main
from hyso.core.train.plan import count_model, plan_memory

MODEL = {"name": "decoder_only", "dim": 64, "num_layers": 4, "num_heads": 4, "max_seq_len": 128}
VOCAB, BATCH, SEQ = 2048, 8, 128

# One training step in a fresh process: the peak RSS of the second step over the RSS
# just before it (parameters and AdamW state are allocated by then), with a fixed glibc
# mmap threshold so freed buffers leave RSS at once.
WORKER = textwrap.dedent(
    """
    import json, sys, torch
    from hyso.core.models import build_model
    from hyso.core.train.loss import default_loss_for

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    cfg, vocab, batch, seq = json.loads(sys.argv[1]), *map(int, sys.argv[2:5])
    torch.manual_seed(0)
    model = build_model(cfg, vocab_size=vocab).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, vocab, (batch, seq + 1))

    loss = default_loss_for(model)  # the trainer's loss

    def step():
        loss(model, (ids[:, :-1], ids[:, 1:])).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak starts again from here
    before = status("VmRSS")
    step()
    print(status("VmHWM") - before)
    """
)


def _measured_step_peak(tmp_path: Path, cfg: dict) -> int:
    import json

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    args = [json.dumps(cfg), str(VOCAB), str(BATCH), str(SEQ)]
    proc = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split()[-1])


@pytest.mark.timeout(300)
def test_estimate_is_within_20_percent_of_the_measured_step_peak(tmp_path) -> None:
    counts = count_model(MODEL, VOCAB, BATCH, SEQ)
    plain, _, checkpointed = plan_memory(counts, gpus=1)
    for plan, cfg in ((plain, MODEL), (checkpointed, {**MODEL, "activation_checkpointing": True})):
        # What a step allocates on top of the parameters and the optimizer state.
        estimate = plan.grads + plan.activations + plan.transient
        measured = _measured_step_peak(tmp_path, cfg)
        print(f"{plan.strategy}: measured {measured} B, estimated {estimate} B")
        assert 0.8 <= measured / estimate <= 1.2, (plan.strategy, measured, estimate)
    assert checkpointed.activations < 0.6 * plain.activations
    assert counts.parameters == 4 * counts.largest_block + counts.root_parameters


def test_fsdp_shards_the_states_and_ddp_adds_its_buckets() -> None:
    counts = count_model(MODEL, VOCAB, BATCH, SEQ)
    one = {p.strategy: p for p in plan_memory(counts, gpus=1)}
    eight = {p.strategy: p for p in plan_memory(counts, gpus=8)}
    assert one["ddp"].total == one["fsdp"].total  # one process: nothing is wrapped
    assert eight["fsdp"].params == -(-4 * counts.parameters // 8)
    assert eight["fsdp"].optimizer == -(-8 * counts.parameters // 8)
    assert eight["ddp"].transient == one["ddp"].transient + 4 * counts.parameters
    assert eight["fsdp"].total < eight["ddp"].total
    with pytest.raises(ValueError, match="--gpus"):
        plan_memory(counts, gpus=0)


def test_plan_command_prints_each_strategy(tmp_path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "model: {name: decoder_only, dim: 64, layers: 2, num_heads: 4, max_seq_len: 64}\n"
        "training: {batch_size: 2}\ndata: {vocab_size: 512}\n",
        encoding="utf-8",
    )
    assert (
        main(["plan", str(config), "training.batch_size=4", "--gpus", "2", "--gpu-mem", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "micro-batch 4 x 64 tokens" in out and "2 GPU(s) of 1 GB" in out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["ddp", "fsdp", "fsdp+ac"]
    assert all(r[-1] == "no" for r in rows)  # the 1 GiB overhead alone fills 1 GB
    assert main(["plan", str(config), "--gpus", "2", "--gpu-mem", "-3"]) == 2
    assert "--gpu-mem must be a number above 0, got -3.0" in capsys.readouterr().err
