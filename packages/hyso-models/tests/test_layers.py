"""Layers: RoPE is relative, GQA equals repeated K/V, norms, DropPath, KV cache, MLPs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hyso.core.models.layers import (
    DropPath,
    KVCache,
    RMSNorm,
    RotaryEmbedding,
    SelfAttention,
    build_mlp,
    build_norm,
    drop_path_rates,
)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(0, 40),
    n=st.integers(0, 40),
    shift=st.integers(0, 60),
    seed=st.integers(0, 2**16),
)
def test_rope_scores_depend_only_on_relative_position(m: int, n: int, shift: int, seed: int):
    rope = RotaryEmbedding(head_dim=16, max_seq_len=128)
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 1, 1, 16, generator=gen, dtype=torch.float32)  # (B, T, H, hs)
    k = torch.randn(1, 1, 1, 16, generator=gen, dtype=torch.float32)
    score = (rope(q, m) * rope(k, n)).sum()
    shifted = (rope(q, m + shift) * rope(k, n + shift)).sum()
    assert torch.allclose(score, shifted, atol=1e-4, rtol=1e-4)


def test_rope_rotates_unless_position_zero_and_keeps_norms() -> None:
    rope = RotaryEmbedding(head_dim=8, max_seq_len=16)
    x = torch.randn(2, 16, 3, 8)
    y = rope(x)
    assert torch.equal(y[:, 0], x[:, 0])  # angle 0 at position 0
    assert not torch.allclose(y[:, 1:], x[:, 1:])
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    # the scores do change with the distance between positions
    q, k = x[:1, :1], x[:1, 1:2]
    assert not torch.allclose((rope(q, 0) * rope(k, 1)).sum(), (rope(q, 0) * rope(k, 5)).sum())


def test_rope_rejects_positions_past_its_table() -> None:
    rope = RotaryEmbedding(head_dim=8, max_seq_len=16)
    with pytest.raises(ValueError, match="exceed max_seq_len 16"):
        rope(torch.randn(1, 4, 1, 8), offset=13)


def reference_attention(attn: SelfAttention, rope: RotaryEmbedding, x: torch.Tensor):
    """Causal attention written out with K/V heads repeated (the plain multi-head formula)."""
    B, T, C = x.shape
    H, G, hs = attn.num_heads, attn.num_kv_heads, attn.head_dim
    wq, wk, wv = attn.qkv.weight.split((H * hs, G * hs, G * hs))
    q = rope((x @ wq.T).view(B, T, H, hs)).transpose(1, 2)  # (B, H, T, hs)
    k = rope((x @ wk.T).view(B, T, G, hs)).transpose(1, 2)  # (B, G, T, hs)
    v = (x @ wv.T).view(B, T, G, hs).transpose(1, 2)
    k = k.repeat_interleave(H // G, dim=1)  # (B, H, T, hs)
    v = v.repeat_interleave(H // G, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)  # (B, H, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    y = (weights @ v).transpose(1, 2).reshape(B, T, C)
    return y @ attn.out.weight.T


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 1), (4, 2), (4, 4), (6, 3)])
def test_grouped_query_attention_equals_repeated_kv(heads: int, kv_heads: int) -> None:
    torch.manual_seed(0)
    dim = heads * 8
    rope = RotaryEmbedding(8, 32)
    attn = SelfAttention(dim, heads, kv_heads, pos_encoding=rope)
    x = torch.randn(2, 10, dim)
    expected = reference_attention(attn, rope, x)
    got = attn(x, is_causal=True)
    assert torch.allclose(got, expected, atol=1e-5)
    assert attn.qkv.out_features == (heads + 2 * kv_heads) * 8  # fewer K/V weights with GQA


def test_attention_with_kv_cache_matches_full_pass() -> None:
    torch.manual_seed(1)
    rope = RotaryEmbedding(8, 32)
    attn = SelfAttention(32, 4, 2, pos_encoding=rope)
    x = torch.randn(1, 9, 32)
    full = attn(x, is_causal=True)
    cache = KVCache(1, 2, 9, 8)
    steps = [attn(x[:, :5], is_causal=True, cache=cache)]
    for t in range(5, 9):
        steps.append(attn(x[:, t : t + 1], cache=cache))  # position t: the cache's length
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    assert cache.length == 9


def test_kv_cache_is_written_in_place_and_bounded() -> None:
    cache = KVCache(2, 1, 4, 3)
    storage = cache.k.data_ptr()
    k, v = cache.update(torch.ones(2, 1, 3, 3), torch.full((2, 1, 3, 3), 2.0))
    assert k.shape == (2, 1, 3, 3) and k.data_ptr() == storage
    assert torch.equal(v, torch.full((2, 1, 3, 3), 2.0))
    with pytest.raises(ValueError, match="holds 4 positions; 5 were requested"):
        cache.update(torch.ones(2, 1, 2, 3), torch.ones(2, 1, 2, 3))
    cache.reset()
    assert cache.length == 0


def test_attention_rejects_bad_head_counts() -> None:
    with pytest.raises(ValueError, match="dim 30 is not divisible by num_heads 4"):
        SelfAttention(30, 4)
    with pytest.raises(ValueError, match="num_heads 4 is not divisible by num_kv_heads 3"):
        SelfAttention(32, 4, 3)


def test_rmsnorm_matches_its_formula() -> None:
    norm = RMSNorm(6, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(3, 5, 6)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-5)


def test_layernorm_and_unknown_norm() -> None:
    x = torch.randn(4, 8)
    ln = build_norm("layernorm", 8, bias=False)
    assert ln.bias is None
    assert torch.allclose(ln(x), F.layer_norm(x, (8,)), atol=1e-6)
    with pytest.raises(ValueError, match="unknown norm 'batch'"):
        build_norm("batch", 8)


def test_mlps_match_their_formulas() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 3, 8)
    swiglu = build_mlp("swiglu", 8, 12)
    gate, up = swiglu.gate_up.weight.split(12)
    expected = (F.silu(x @ gate.T) * (x @ up.T)) @ swiglu.down.weight.T
    assert torch.allclose(swiglu(x), expected, atol=1e-6)
    gelu = build_mlp("gelu", 8, 12)
    expected = F.gelu(x @ gelu.fc.weight.T, approximate="tanh") @ gelu.down.weight.T
    assert torch.allclose(gelu(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="unknown mlp 'relu'"):
        build_mlp("relu", 8, 12)


def test_drop_path_is_identity_in_eval_and_unbiased_in_training() -> None:
    layer = DropPath(0.25)
    x = torch.ones(4000, 3)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    torch.manual_seed(0)
    y = layer(x)
    rows = y[:, 0]
    # whole samples are dropped or kept (scaled by 1 / keep)
    kept = rows != 0
    assert torch.allclose(rows[kept], torch.tensor(1 / 0.75))
    assert torch.equal(y, rows[:, None].expand_as(y))
    assert abs(rows.mean().item() - 1.0) < 0.05
    assert abs((rows == 0).float().mean().item() - 0.25) < 0.03
    with pytest.raises(ValueError, match="drop_path rate"):
        DropPath(1.0)


def test_drop_path_rates_increase_linearly() -> None:
    assert drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert drop_path_rates(0.2, 1) == [0.2]


def test_fused_autograd_functions_have_exact_gradients() -> None:
    from torch.autograd import gradcheck

    from hyso.core.models.layers.mlp import swiglu_linear
    from hyso.core.models.layers.norms import _RMSNormFunction
    from hyso.core.models.layers.rope import rotate_qkv

    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    weight, bias = rand(4, 5), rand(4)
    assert gradcheck(swiglu_linear, (rand(2, 3, 10), weight, bias))
    assert gradcheck(lambda g, w: swiglu_linear(g, w), (rand(2, 3, 10), weight))
    norm_weight = (torch.rand(6, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    assert gradcheck(
        lambda x, nw: _RMSNormFunction.apply(x, nw, 1e-5),
        (rand(2, 3, 6), norm_weight),
    )
    rope = RotaryEmbedding(8, 16)
    cos, sin = rope.cos[:5, None].double(), rope.sin[:5, None].double()
    assert gradcheck(lambda x: rotate_qkv(x, 4, cos, sin), (rand(2, 5, 7, 8),))


def test_fused_paths_equal_the_plain_layers() -> None:
    from hyso.core.models.layers import SwiGLU
    from hyso.core.models.layers.mlp import swiglu

    torch.manual_seed(3)
    norm, mlp = RMSNorm(8), SwiGLU(8, 12)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 5, 8, requires_grad=True)
    plain_norm = F.rms_norm(x, (8,), norm.weight, norm.eps)
    plain_mlp = mlp.down(swiglu(mlp.gate_up(x)))
    assert torch.allclose(norm(x), plain_norm, atol=1e-6)
    assert torch.allclose(mlp(x), plain_mlp, atol=1e-6)
    with torch.no_grad():  # the inference path skips the autograd functions
        assert torch.allclose(norm(x), plain_norm, atol=1e-6)
        assert torch.allclose(mlp(x), plain_mlp, atol=1e-6)


class CountingLinear(torch.nn.Linear):
    """A subclass standing in for a LoRA or FSDP wrapper: counts its forward calls."""

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingLinear.calls += 1
        return super().forward(x) * 2.0  # a visible change, as an adapter would make


class WrappedLinear(torch.nn.Module):
    """A wrapper that holds the original layer (LoRA style)."""

    def __init__(self, inner: torch.nn.Linear) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x) + 1.0


@pytest.mark.parametrize("grad", [True, False])
def test_a_replaced_projection_is_called_through_its_forward(grad: bool) -> None:
    from hyso.core.models import HysoDecoderOnly

    torch.manual_seed(4)
    model = HysoDecoderOnly(dim=32, num_layers=2, vocab_size=50, num_heads=4)
    ids = torch.randint(0, 50, (2, 6))
    mlp, attn = model.blocks[0].mlp, model.blocks[0].attn
    with torch.set_grad_enabled(grad):
        before = model(ids)
        counting = CountingLinear(mlp.down.in_features, mlp.down.out_features, bias=False)
        counting.weight = mlp.down.weight
        mlp.down = counting
        wrapped = WrappedLinear(attn.qkv)
        attn.qkv = wrapped
        CountingLinear.calls = 0
        after = model(ids)
    assert CountingLinear.calls == 1 and wrapped.calls == 1
    assert not torch.allclose(after, before)
    # what the wrappers do is what the block computes
    block, x = model.blocks[0], torch.randn(2, 6, 32)
    with torch.no_grad():
        h = x + block.attn(block.attn_norm(x), is_causal=True)
        gate, up = block.mlp.gate_up(block.mlp_norm(h)).chunk(2, dim=-1)
        expected = h + 2.0 * F.linear(F.silu(gate) * up, counting.weight)
        assert torch.allclose(block(x, is_causal=True), expected, atol=1e-5)
