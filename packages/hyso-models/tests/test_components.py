"""One forward path with an optional cache, position encodings passed in as modules,
the family registry, and out-of-range ids found without a per-call scan."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyso.core.models import (
    HysoDecoderOnly,
    HysoEncoderDecoder,
    HysoEncoderOnly,
    ModelConfigError,
    build_model,
    family_names,
    get_config,
    load_pretrained,
    model_class_for,
)
from hyso.core.models.layers import POSITION_ENCODINGS, PositionEncoding

V = 97


def test_forward_in_cached_chunks_equals_one_full_forward(make_model) -> None:
    model = make_model("decoder_only").eval()
    ids = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(2, 12)
        parts = [model(ids[:, :5], cache=cache)]  # the prompt: causal from position 0
        parts.append(model(ids[:, 5:8], cache=cache))  # a chunk after cached positions
        parts += [model(ids[:, t : t + 1], cache=cache) for t in range(8, 12)]
        assert cache.length == 12
        assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
        cache.reset()
        last = model(ids, cache=cache, last_only=True)
    assert last.shape == (2, 1, V)
    assert torch.allclose(last[:, 0], full[:, -1], atol=1e-5)


def test_cached_forward_remembers_prompt_padding(make_model) -> None:
    model = make_model("decoder_only").eval()
    ids = torch.randint(1, V, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :4] = 0  # row 1 is left-padded
    with torch.no_grad():
        full = model(ids, attention_mask=mask)
        cache = model.new_cache(2, 9)
        first = model(ids[:, :6], attention_mask=mask[:, :6], cache=cache)
        rest = [model(ids[:, t : t + 1], cache=cache) for t in range(6, 9)]  # no mask: real
    assert torch.allclose(torch.cat([first, *rest], dim=1)[1, 4:], full[1, 4:], atol=1e-5)
    assert torch.allclose(torch.cat([first, *rest], dim=1)[0], full[0], atol=1e-5)


def test_encoder_decoder_decode_with_cache_equals_full_decode(make_model) -> None:
    model = make_model("encoder_decoder").eval()
    gen = torch.Generator().manual_seed(2)
    src, tgt = (
        torch.randint(0, V, (2, 7), generator=gen),
        torch.randint(0, V, (2, 6), generator=gen),
    )
    src_mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    with torch.no_grad():
        memory = model.encode(src, src_mask=src_mask)
        full = model.decode(tgt, memory, src_mask=src_mask)
        cache = model.new_cache(2, 6)
        steps = [
            model.decode(tgt[:, t : t + 1], memory, src_mask=src_mask, cache=cache)
            for t in range(6)
        ]
    assert all(layer.memory is not None for layer in cache.layers)  # projected once, kept
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


class LearnedPositions(PositionEncoding):
    """What a new encoding file holds: a learned absolute position table."""

    def __init__(self, max_seq_len: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(max_seq_len, dim) * 0.5)

    @classmethod
    def from_config(cls, config):
        return cls(config.max_seq_len, config.dim)

    def embed(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return x + self.table[offset : offset + x.shape[1]]


def test_a_new_position_encoding_is_one_class_and_one_registration(monkeypatch) -> None:
    monkeypatch.setitem(POSITION_ENCODINGS, "learned", LearnedPositions)
    torch.manual_seed(0)
    model = HysoDecoderOnly(get_config("debug", pos_encoding="learned")).eval()
    assert isinstance(model.pos_encoding, LearnedPositions)
    assert all(block.attn.pos_encoding is model.pos_encoding for block in model.blocks)
    ids = torch.randint(0, V, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(ids)
        swapped = model(ids.flip(1)).flip(1)  # without RoPE only the table sees positions
        tokens, scores = model.generate(ids, 5, return_logits=True)  # offsets reach embed()
        expected = model(tokens[:, :-1])[:, -5:]
    assert not torch.allclose(logits, swapped)
    assert torch.allclose(scores, expected, atol=1e-4)
    model.train()
    model(ids).logsumexp(-1).mean().backward()
    assert model.pos_encoding.table.grad is not None
    assert model.pos_encoding.table.grad.abs().sum() > 0


def test_unknown_position_encoding_names_the_known_ones() -> None:
    with pytest.raises(ModelConfigError, match=r"unknown pos_encoding 'alibi'.*rope"):
        HysoDecoderOnly(get_config("debug", pos_encoding="alibi"))
    with pytest.raises(ModelConfigError, match="pos_encoding"):
        get_config("debug", pos_encoding="")


def test_no_position_encoding_makes_the_encoder_order_blind(make_model) -> None:
    model = make_model("encoder_only", pos_encoding="none").eval()
    ids = torch.randint(0, V, (1, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(model(ids.flip(1)).flip(1), model(ids), atol=1e-5)


def test_one_registry_serves_build_load_and_lookup(tmp_path) -> None:
    assert sorted(family_names()) == ["decoder_only", "encoder_decoder", "encoder_only"]
    for cls in (HysoDecoderOnly, HysoEncoderOnly, HysoEncoderDecoder):
        assert model_class_for(cls.config_class.family) is cls
    assert model_class_for("encoder-decoder") is HysoEncoderDecoder
    with pytest.raises(ModelConfigError, match=r"unknown model family 'rnn'.*decoder_only"):
        model_class_for("rnn")
    model = build_model({"name": "encoder_only", "dim": 32, "layers": 1, "vocab_size": 11})
    assert type(load_pretrained(model.save_pretrained(tmp_path))) is HysoEncoderOnly


def test_valid_ids_take_no_scan_of_their_values(make_model, monkeypatch) -> None:
    # On the CPU the embedding lookup is the range check; ids are read only on failure.
    model = make_model("decoder_only").eval()
    ids = torch.randint(0, V, (2, 6))
    with torch.no_grad():
        expected = model(ids)

    def no_scan(*args, **kwargs):
        raise AssertionError("ids scanned on the hot path")

    monkeypatch.setattr(torch, "aminmax", no_scan)
    with torch.no_grad():
        assert torch.equal(model(ids), expected)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=f"input_ids: token id {V + 5} is out of range"):
        model(torch.tensor([[1, V + 5, 2]]))


def test_a_folder_saved_before_pos_encoding_existed_still_loads(make_model, tmp_path) -> None:
    import json

    model = make_model("decoder_only").eval()
    model.save_pretrained(tmp_path)
    config = tmp_path / "config.json"
    meta = json.loads(config.read_text())
    del meta["config"]["pos_encoding"]  # what format_version 1 files written earlier hold
    config.write_text(json.dumps(meta))
    loaded = load_pretrained(tmp_path).eval()
    assert loaded.config.pos_encoding == "rope"
    ids = torch.randint(0, V, (1, 7))
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))


def test_post_norm_block_normalises_after_each_residual_sum():
    from hyso.core.models.layers import BLOCKS, PostNormBlock

    assert BLOCKS["post_norm"] is PostNormBlock
    torch.manual_seed(0)
    model = HysoEncoderOnly(
        dim=32, num_layers=1, vocab_size=50, block="post_norm", norm="layernorm"
    )
    block = model.blocks[0]
    assert type(block) is PostNormBlock
    assert isinstance(model.norm, torch.nn.Identity)
    x = torch.randn(2, 5, 32)
    h = block.attn_norm(x + block.attn(x))
    expected = block.mlp_norm(h + block.mlp(h))
    assert torch.allclose(block(x), expected)


def test_learned_positions_number_a_left_padded_row_from_its_first_token() -> None:
    torch.manual_seed(0)
    model = HysoDecoderOnly(
        dim=32, num_layers=2, vocab_size=V, pos_encoding="learned", norm="layernorm", mlp="gelu"
    ).eval()
    with torch.no_grad():
        for p in model.pos_encoding.parameters():
            p.mul_(20)  # positions matter a lot, so a shifted numbering would show
    ids = torch.randint(1, V, (1, 6), generator=torch.Generator().manual_seed(5))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], dim=1)
    mask = torch.tensor([[0, 0, 0] + [1] * 6])
    alone = model.generate(ids, 8)[:, 6:]
    batched = model.generate(torch.cat([padded, padded]), 8, attention_mask=mask.repeat(2, 1))
    assert torch.equal(batched[:, 9:], alone.repeat(2, 1))
    with torch.no_grad():
        full = model(padded, attention_mask=mask)[:, 3:]
        assert torch.allclose(full, model(ids), atol=1e-5)
