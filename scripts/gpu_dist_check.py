"""Distributed device check: DDP and FSDP2 over NCCL (gloo on CPU), bf16 mixed
precision, a sharded checkpoint, and compiled generation.

Launch with torchrun, one process per GPU (a single GPU runs a world of one, which
still goes through NCCL, ``fully_shard`` and the sharded checkpoint code):

    torchrun --standalone --nproc_per_node=1 scripts/gpu_dist_check.py
    torchrun --standalone --nproc_per_node=2 scripts/gpu_dist_check.py --device cpu

Each check prints one line on rank 0; any failure exits non-zero.

1. FSDP (fp32) gives DDP's weights after 10 clipped AdamW steps (within 1e-4);
2. FSDP with bf16 mixed precision keeps fp32 shards and lowers the loss;
3. a sharded checkpoint of the FSDP model loads into a whole model on rank 0;
4. compiled greedy generation gives the eager tokens (rank 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import torch
import torch.distributed as dist

from hyso.core.models import HysoDecoderOnly
from hyso.core.storage import CheckpointConfig, CheckpointManager
from hyso.core.train.fsdp import clip_grad_norm, shard_model

SHAPE = {"vocab_size": 97, "dim": 64, "num_layers": 2, "num_heads": 4, "max_seq_len": 64}


def _train(strategy: str, device: torch.device, mixed: str | None) -> tuple[torch.nn.Module, list]:
    """10 AdamW steps on each rank's own batch; returns the model and the losses."""
    torch.manual_seed(0)
    model = HysoDecoderOnly(**SHAPE).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    if strategy == "fsdp":
        shard_model(model, opt, mixed_precision=mixed)
        wrapped = model
    else:
        ids = [device.index] if device.type == "cuda" else None
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    g = torch.Generator().manual_seed(1 + dist.get_rank())
    ids = torch.randint(0, SHAPE["vocab_size"], (4, 33), generator=g).to(device)
    losses = []
    for _ in range(10):  # the same batch: the loss must fall
        logits = wrapped(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        clip_grad_norm(list(model.parameters()), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return model, losses


def _whole(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True)  # gathered on every rank
    return {k: v.detach().cpu() for k, v in get_model_state_dict(model, options=options).items()}


def _report(name: str, ok: bool, detail: str) -> bool:
    if dist.get_rank() == 0:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def _checks(device: torch.device) -> list[bool]:
    results = []
    ddp, _ = _train("ddp", device, None)
    fsdp, _ = _train("fsdp", device, None)
    a = {k: v.detach().cpu() for k, v in ddp.state_dict().items()}
    b = _whole(fsdp)
    diff = max((a[k] - b[k].float()).abs().max().item() for k in a)
    results.append(_report("fsdp == ddp (fp32, 10 steps)", diff < 1e-4, f"max |diff| {diff:.2e}"))

    mixed, losses = _train("fsdp", device, "bf16")
    fp32 = all(p.dtype == torch.float32 for p in mixed.parameters())
    detail = f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, shards fp32: {fp32}"
    results.append(_report("fsdp bf16 mixed precision", fp32 and losses[-1] < losses[0], detail))

    folder = [tempfile.mkdtemp(prefix="hyso-dcp-") if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(folder)
    manager = CheckpointManager(CheckpointConfig.from_dir(directory=folder[0]))
    manager.save_sharded(0, fsdp, None, step=10)
    dist.barrier()
    if dist.get_rank() == 0:
        whole = HysoDecoderOnly(**SHAPE)
        manager.restore_objects(manager.load_latest(map_location="cpu"), whole)
        same = all(torch.equal(whole.state_dict()[k], b[k]) for k in b)
        results.append(_report("sharded checkpoint -> whole model", same, folder[0]))

        torch.manual_seed(2)
        model = HysoDecoderOnly(**SHAPE).to(device).eval()
        prompt = torch.randint(0, SHAPE["vocab_size"], (2, 8), device=device)
        with torch.no_grad():
            eager = model.generate(prompt, max_new_tokens=24)
            model.compile()
            compiled = model.generate(prompt, max_new_tokens=24)
        same = torch.equal(eager, compiled)
        results.append(_report("compiled generation == eager", same, "24 greedy tokens, batch 2"))
        shutil.rmtree(folder[0], ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        results = _checks(device)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
