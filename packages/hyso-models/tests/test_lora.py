"""LoRA adapters: frozen base, exact merge/unmerge, fused projections, settings checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyso.core.models import HysoDecoderOnly, HysoEncoderDecoder, HysoEncoderOnly
from hyso.core.models.lora import (
    LoRALinear,
    LoRASettings,
    apply_lora,
    format_trainable_share,
    has_lora,
    load_lora_state_dict,
    lora_settings_of,
    lora_state_dict,
    merge_lora,
    trainable_share,
    unmerge_lora,
)

VOCAB = 61


def small_lm(**kw) -> HysoDecoderOnly:
    torch.manual_seed(0)
    args = dict(dim=32, num_layers=2, vocab_size=VOCAB, num_heads=4, num_kv_heads=2)
    return HysoDecoderOnly(**{**args, "max_seq_len": 16, **kw})


def randomise_adapters(model: nn.Module, seed: int = 1) -> None:
    """Nonzero B (fresh adapters add nothing), so the adapters change the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(seed))


ALL = ("q", "k", "v", "out", "gate", "up", "down")


def test_fresh_adapters_leave_the_logits_unchanged_and_freeze_the_base() -> None:
    model = small_lm().eval()
    x = ids()
    with torch.no_grad():
        before = model(x)
    apply_lora(model, LoRASettings(r=4, targets=ALL))
    with torch.no_grad():
        assert torch.equal(model(x), before)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    # q, k, v, out, gate, up, down: 7 adapters per layer, each an A and a B.
    assert len(trainable) == 2 * 7 * 2


def test_training_moves_only_the_adapters() -> None:
    model = small_lm()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, LoRASettings(r=2, alpha=4, targets=("q", "v", "down")))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = ids()
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
    state = model.state_dict()
    for name, tensor in base.items():
        assert torch.equal(state[name], tensor), name
    assert any(lora_state_dict(model)[k].abs().sum() > 0 for k in lora_state_dict(model))
    b = lora_state_dict(model)["blocks.0.mlp.down.lora_B.down"]
    assert b.abs().sum() > 0  # B left zero would mean no gradient reached the adapter


def test_a_fused_projection_adapts_only_its_targeted_rows() -> None:
    torch.manual_seed(0)
    base = nn.Linear(8, 6 + 2 + 2, bias=True)
    ref_w, ref_b = base.weight.detach().clone(), base.bias.detach().clone()
    layer = LoRALinear(base, [("q", 6), ("k", 2), ("v", 2)], {"q", "v"}, LoRASettings(r=3))
    randomise_adapters(layer)
    x = torch.randn(4, 5, 8)
    out = layer(x)
    s = layer.scaling
    a_q, b_q = layer.lora_A["q"].detach(), layer.lora_B["q"].detach()
    a_v, b_v = layer.lora_A["v"].detach(), layer.lora_B["v"].detach()
    plain = x @ ref_w.T + ref_b
    torch.testing.assert_close(out[..., :6], plain[..., :6] + s * (x @ a_q.T @ b_q.T))
    assert torch.equal(out[..., 6:8], plain[..., 6:8])  # k: no adapter
    torch.testing.assert_close(out[..., 8:], plain[..., 8:] + s * (x @ a_v.T @ b_v.T))


@pytest.mark.parametrize(
    "make",
    [
        lambda: small_lm(),
        lambda: small_lm(mlp="gelu", pos_encoding="learned", bias=True),
        lambda: HysoEncoderOnly(dim=32, num_layers=2, vocab_size=VOCAB, num_heads=4),
        lambda: HysoEncoderDecoder(dim=32, num_layers=2, vocab_size=VOCAB, num_heads=4),
    ],
    ids=["llama-style", "gpt2-style", "encoder", "encoder-decoder"],
)
def test_merge_matches_unmerged_and_unmerge_restores_exactly(make) -> None:
    model = make().eval()
    targets = [t for t in ("q", "k", "v", "out", "gate", "up", "down", "fc")]
    mlp = model.config.mlp
    targets = [t for t in targets if not (t in ("gate", "up") and mlp == "gelu")]
    targets = [t for t in targets if not (t == "fc" and mlp == "swiglu")]
    original = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, LoRASettings(r=4, alpha=8, targets=tuple(targets)))
    randomise_adapters(model)
    x = ids()
    call = (lambda m: m(x, x)) if isinstance(model, HysoEncoderDecoder) else (lambda m: m(x))
    with torch.no_grad():
        unmerged = call(model)
        merge_lora(model)
        merged = call(model)
    assert (merged - unmerged).abs().max() < 1e-5
    changed = [k for k, v in original.items() if not torch.equal(model.state_dict()[k], v)]
    assert changed  # the merge wrote into the weights
    unmerge_lora(model)
    state = model.state_dict()
    for name, tensor in original.items():
        assert torch.equal(state[name], tensor), name
    with torch.no_grad():
        assert torch.equal(call(model), unmerged)


def test_swiglu_with_wrapped_projections_runs_their_forward_and_backward() -> None:
    model = small_lm()
    apply_lora(model, LoRASettings(r=2, targets=("gate", "up", "down")))
    randomise_adapters(model)
    x = ids()
    loss = model(x).square().mean()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())
    with torch.no_grad():
        unmerged = model(x)
        merge_lora(model)
        assert (model(x) - unmerged).abs().max() < 1e-5


def test_adapter_state_round_trip_and_mismatches() -> None:
    settings = LoRASettings(r=4, targets=("q", "v"))
    a = apply_lora(small_lm(), settings)
    randomise_adapters(a)
    b = apply_lora(small_lm(), settings)
    load_lora_state_dict(b, lora_state_dict(a))
    x = ids()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    other = apply_lora(small_lm(), LoRASettings(r=2, targets=("q", "v")))
    with pytest.raises(ValueError, match=r"has shape \(4, 32\), the model.s is \(2, 32\)"):
        load_lora_state_dict(other, lora_state_dict(a))
    fewer = apply_lora(small_lm(), LoRASettings(r=4, targets=("q",)))
    with pytest.raises(ValueError, match=r"unexpected.*lora_A\.v"):
        load_lora_state_dict(fewer, lora_state_dict(a))
    with pytest.raises(ValueError, match="no LoRA adapters"):
        load_lora_state_dict(small_lm(), lora_state_dict(a))
    merge_lora(b)
    with pytest.raises(ValueError, match="unmerge_lora"):
        load_lora_state_dict(b, lora_state_dict(a))


def test_settings_are_checked_and_named() -> None:
    with pytest.raises(ValueError, match=r"unknown target 'q_proj'; valid: q, k, v, out"):
        LoRASettings(targets=("q_proj",))
    with pytest.raises(ValueError, match=r"lora.r must be an integer >= 1, got 0"):
        LoRASettings(r=0)
    with pytest.raises(ValueError, match=r"lora.alpha"):
        LoRASettings(alpha=-1)
    with pytest.raises(ValueError, match=r"lora.dropout .*got 1.5"):
        LoRASettings(dropout=1.5)
    with pytest.raises(ValueError, match=r"finetune.lora: unknown key 'rank'; known: r, alpha"):
        LoRASettings.from_dict({"rank": 4}, where="finetune.lora")
    with pytest.raises(ValueError, match=r"finetune.lora.r must"):
        LoRASettings.from_dict({"r": "8"}, where="finetune.lora")
    s = LoRASettings.from_dict({"r": 4, "targets": ["v", "q"]})
    assert s.targets == ("q", "v") and s.scaling == 4.0
    assert LoRASettings.from_dict(s.to_dict()) == s


def test_targets_the_model_lacks_and_double_application_are_refused() -> None:
    gelu = small_lm(mlp="gelu")
    with pytest.raises(
        ValueError, match=r"gate match no projection .*it has q, k, v, out, down, fc"
    ):
        apply_lora(gelu, LoRASettings(targets=("q", "gate")))
    assert not has_lora(gelu)  # nothing was changed by the refused call
    model = apply_lora(small_lm(), LoRASettings(targets=("q",)))
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        apply_lora(model, LoRASettings(targets=("v",)))


def test_settings_of_share_and_save_pretrained_without_adapters(tmp_path) -> None:
    settings = LoRASettings(r=2, alpha=3, dropout=0.1, targets=("v", "out"))
    model = apply_lora(small_lm().eval(), settings)
    assert lora_settings_of(model) == settings
    assert not any(m.training for m in model.modules())  # the adapters' dropout is off too
    assert lora_settings_of(small_lm()) is None
    trainable, total = trainable_share(model)
    # v: A (2, 32) + B (16, 2); out: A (2, 32) + B (32, 2); two layers.
    assert trainable == 2 * (2 * 32 + 16 * 2 + 2 * 32 + 32 * 2)
    assert total == small_lm().num_parameters() + trainable
    share = 100 * trainable / total
    assert format_trainable_share(model) == (
        f"trainable {share:.3g} % ({trainable:,} of {total:,} parameters)"
    )
    randomise_adapters(model)
    model.save_pretrained(tmp_path / "base")
    plain = HysoDecoderOnly.from_pretrained(tmp_path / "base")
    base = small_lm()
    for name, tensor in base.state_dict().items():
        assert torch.equal(plain.state_dict()[name], tensor), name


def test_adapter_folder_round_trip_and_damage(tmp_path) -> None:
    from hyso.core.models.lora_files import is_adapter_folder, load_adapter, save_lora

    settings = LoRASettings(r=3, alpha=6, targets=("q", "k", "down"))
    model = apply_lora(small_lm(), settings)
    randomise_adapters(model)
    save_lora(model, tmp_path / "ad")
    assert is_adapter_folder(tmp_path / "ad") and not is_adapter_folder(tmp_path)
    again = load_adapter(small_lm(), tmp_path / "ad")
    assert lora_settings_of(again) == settings
    x = ids()
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    weights = tmp_path / "ad" / "lora.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 1
    weights.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"lora.safetensors: SHA-256 .* differs"):
        load_adapter(small_lm(), tmp_path / "ad")
    with pytest.raises(ValueError, match=r"neither lora\.json"):
        load_adapter(small_lm(), tmp_path)
    with pytest.raises(ValueError, match="no LoRA adapters to save"):
        save_lora(small_lm(), tmp_path / "none")
