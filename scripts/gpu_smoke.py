"""Device check on a CUDA machine: the models, the Trainer and checkpoints on the GPU.

Run from the repository root with the five ``src`` folders on ``PYTHONPATH`` (see
``scripts/gpu_check.sh``). Each check prints one line; any failure exits non-zero.

1. decoder logits on CUDA match the CPU model within 1e-4 (fp32);
2. greedy ``generate`` with the KV cache equals step-by-step argmax without it;
3. the Trainer runs bf16 autocast steps on CUDA and the loss falls;
4. a checkpoint saved on CUDA restores the CUDA RNG stream and loads on the CPU;
5. ``forward(ids, targets=)`` (the chunked head loss) on CUDA equals the loss and
   gradients of the logits in fp32, stays near them under bf16 autocast, and allocates
   less at its peak than the logits loss.
"""

from __future__ import annotations

import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from hyso.core.models import HysoDecoderOnly
from hyso.core.storage import CheckpointConfig, CheckpointManager, set_global_seed
from hyso.core.train import Trainer


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    results = []

    set_global_seed(0)
    cpu_model = HysoDecoderOnly(dim=256, num_layers=4, vocab_size=1000, max_seq_len=256).eval()
    gpu_model = HysoDecoderOnly.from_config(cpu_model.config).to(dev).eval()
    gpu_model.load_state_dict(cpu_model.state_dict())
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    x = torch.randint(0, 1000, (2, 64))
    with torch.no_grad():
        diff = (cpu_model(x) - gpu_model(x.to(dev)).cpu()).abs().max().item()
    results.append(check("cuda logits == cpu logits", diff < 1e-4, f"max |diff| {diff:.2e}"))

    prompt = torch.randint(0, 1000, (1, 16), device=dev)
    with torch.no_grad():
        cached = gpu_model.generate(prompt, max_new_tokens=32)
        seq = prompt
        for _ in range(32):
            nxt = gpu_model(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    same = torch.equal(cached, seq)
    results.append(check("greedy generate (KV cache) == full recompute", same, "32 new tokens"))

    n = 200
    t0 = time.perf_counter()
    with torch.no_grad():
        gpu_model.generate(prompt, max_new_tokens=n)
    torch.cuda.synchronize()
    rate = n / (time.perf_counter() - t0)
    results.append(check("generation speed", rate > 0, f"{rate:.0f} tokens/s, batch 1"))

    set_global_seed(1)
    model = HysoDecoderOnly(dim=128, num_layers=2, vocab_size=64, max_seq_len=64)
    data = torch.arange(64).repeat(64, 2)[:, :33] % 64  # a learnable cyclic pattern
    loader = DataLoader(TensorDataset(data[:, :-1], data[:, 1:]), batch_size=16, shuffle=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    trainer = Trainer(model, opt, device="cuda", precision="bf16", progress_bar=False)
    history = trainer.fit(loader, val_loader=loader, epochs=6)
    first, last = history[0]["train_loss"], history[-1]["train_loss"]
    on_gpu = next(model.parameters()).is_cuda
    results.append(
        check("Trainer bf16 on cuda", on_gpu and last < first, f"loss {first:.3f} -> {last:.3f}")
    )

    with tempfile.TemporaryDirectory() as tmp:
        mgr = CheckpointManager(CheckpointConfig.from_dir(directory=tmp))
        mgr.save(0, model, opt, step=trainer.global_step)
        expected = torch.rand(4, device=dev)
        ckpt = mgr.load_latest(map_location="cpu")
        fresh = HysoDecoderOnly.from_config(model.config)
        mgr.restore_objects(ckpt, fresh)
        again = torch.rand(4, device=dev)
        same_rng = torch.equal(expected, again)
        same_w = all(
            torch.equal(a.cpu(), b)
            for a, b in zip(model.state_dict().values(), fresh.state_dict().values())
        )
        results.append(
            check("checkpoint: CUDA RNG restored, weights load on cpu", same_rng and same_w, tmp)
        )
    results.append(check_chunked_loss(dev))
    return 0 if all(results) else 1


def check_chunked_loss(dev: torch.device) -> bool:
    """The chunked head loss against the logits loss: value, gradients, bf16, peak."""
    set_global_seed(2)
    vocab = 32000
    model = HysoDecoderOnly(dim=256, num_layers=2, vocab_size=vocab, max_seq_len=512).to(dev)
    ids = torch.randint(0, vocab, (8, 513), device=dev)
    x, y = ids[:, :-1], ids[:, 1:].contiguous()
    params = list(model.parameters())

    def run(chunked: bool, bf16: bool) -> tuple[float, list[torch.Tensor], int]:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            if chunked:
                loss = model(x, targets=y)
            else:
                loss = F.cross_entropy(model(x).float().flatten(0, 1), y.flatten())
        grads = torch.autograd.grad(loss, params)
        torch.cuda.synchronize()
        return loss.item(), grads, torch.cuda.max_memory_allocated()

    ok = True
    for bf16, tol in ((False, 1e-4), (True, 3e-2)):
        a, ga, peak_a = run(True, bf16)
        b, gb, peak_b = run(False, bf16)
        gdiff = max((p - q).abs().max().item() for p, q in zip(ga, gb))
        good = abs(a - b) < tol and gdiff < tol and peak_a < peak_b
        name = f"chunked head loss on cuda ({'bf16' if bf16 else 'fp32'})"
        detail = f"loss {a:.5f} vs {b:.5f}, grad diff {gdiff:.1e}, peak {peak_a / peak_b:.2f}x"
        ok = check(name, good, detail) and ok
    return ok


if __name__ == "__main__":
    sys.exit(main())
