"""The same guarantees on a CUDA device (skipped where there is none)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

V = 97


@pytest.fixture(autouse=True)
def exact_matmul():
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


def test_cuda_logits_match_cpu(family, make_model) -> None:
    model = make_model(family).eval()
    ids = torch.randint(0, V, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 15:] = 0
    with torch.no_grad():
        if model.is_encoder_decoder:
            cpu = model(ids, ids, src_mask=mask)
            gpu = model.cuda()(ids.cuda(), ids.cuda(), src_mask=mask.cuda())
        else:
            cpu = model(ids, attention_mask=mask)
            gpu = model.cuda()(ids.cuda(), attention_mask=mask.cuda())
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-4)


def test_cuda_generate_matches_full_forward(make_model) -> None:
    model = make_model("decoder_only").eval().cuda()
    ids = torch.randint(0, V, (2, 6), device="cuda")
    tokens, logits = model.generate(ids, 20, return_logits=True)
    expected = ids
    with torch.no_grad():
        for step in range(20):
            last = model(expected)[:, -1]
            assert (last - logits[:, step]).abs().max() < 1e-4
            expected = torch.cat([expected, last.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(tokens, expected)


def test_cuda_training_step_and_bf16(make_model) -> None:
    model = make_model("encoder_decoder", dropout=0.1, drop_path=0.1).cuda()
    ids = torch.randint(0, V, (4, 16), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(ids, ids).float().logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    half = make_model("decoder_only").to("cuda", torch.bfloat16).eval()
    out = half.generate(torch.randint(0, V, (1, 4), device="cuda"), 8)
    assert out.shape == (1, 12) and out.device.type == "cuda"
