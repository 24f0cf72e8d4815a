"""Behaviour every family shares: gradients, eval mode, save/load, configs, parameters."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from hyso.core.models import (
    DecoderOnlyConfig,
    HysoDecoderOnly,
    HysoEncoderDecoder,
    HysoEncoderOnly,
    ModelConfigError,
    PretrainedFormatError,
    build_model,
    load_pretrained,
)

V = 97


def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    return model(ids, ids) if model.is_encoder_decoder else model(ids)


def test_gradients_reach_every_parameter(family, make_model) -> None:
    model = make_model(family, dropout=0.1, drop_path=0.1, tie_embeddings=False, bias=True)
    ids = torch.randint(0, V, (8, 12))  # 8 samples: some keep every drop-path branch
    logits_of(model, ids).logsumexp(-1).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_dropout_and_drop_path_are_identity_in_eval(family, make_model) -> None:
    noisy = make_model(family, seed=1, dropout=0.3, drop_path=0.3)
    clean = make_model(family, seed=1)
    clean.load_state_dict(noisy.state_dict())
    ids = torch.randint(0, V, (2, 10))
    noisy.eval()
    clean.eval()
    with torch.no_grad():
        assert torch.equal(logits_of(noisy, ids), logits_of(clean, ids))
        noisy.train()
        assert not torch.allclose(logits_of(noisy, ids), logits_of(clean, ids))


def test_save_and_load_back_bit_identical(family, make_model, tmp_path) -> None:
    model = make_model(family, seed=2).eval()
    with torch.no_grad():  # make every weight distinct from a fresh init
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    cls = type(model)
    folder = model.save_pretrained(tmp_path / "saved")
    meta = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert meta["format_version"] == 1 and meta["family"] == family
    assert meta["config"] == model.config.to_dict()
    loaded = cls.from_pretrained(folder).eval()
    assert loaded.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    ids = torch.randint(0, V, (2, 8))
    with torch.no_grad():
        assert torch.equal(logits_of(loaded, ids), logits_of(model, ids))
    # tied weights are stored once and tied again on load
    stored = load_file(str(tmp_path / "saved" / "model.safetensors"))
    assert "lm_head.weight" not in stored
    assert loaded.lm_head.weight is loaded.tok_emb.weight
    assert type(load_pretrained(folder)) is cls
    assert not list(tmp_path.joinpath("saved").glob("*.tmp"))


def test_bfloat16_model_round_trips_in_its_dtype(make_model, tmp_path) -> None:
    model = make_model("decoder_only").to(torch.bfloat16)
    loaded = HysoDecoderOnly.from_pretrained(model.save_pretrained(tmp_path))
    assert loaded.tok_emb.weight.dtype == torch.bfloat16
    assert torch.equal(loaded.tok_emb.weight, model.tok_emb.weight)


def test_loading_checks_family_version_and_files(make_model, tmp_path) -> None:
    make_model("encoder_only").save_pretrained(tmp_path)
    with pytest.raises(PretrainedFormatError, match="encoder_only model, not a HysoDecoderOnly"):
        HysoDecoderOnly.from_pretrained(tmp_path)
    config = tmp_path / "config.json"
    meta = json.loads(config.read_text())
    config.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(PretrainedFormatError, match="format_version 99"):
        HysoEncoderOnly.from_pretrained(tmp_path)
    meta["config"]["dim"] = 64
    config.write_text(json.dumps(meta))
    with pytest.raises(PretrainedFormatError, match="shape"):
        HysoEncoderOnly.from_pretrained(tmp_path)
    with pytest.raises(PretrainedFormatError, match="no such file"):
        HysoEncoderOnly.from_pretrained(tmp_path / "missing")


def test_constructor_keywords_and_from_config_agree(family, make_model) -> None:
    cls = type(make_model(family))
    by_keywords = cls(dim=64, num_layers=1, vocab_size=50, mlp="gelu", norm="layernorm")
    by_mapping = cls.from_config(
        {"dim": 64, "layers": 1, "vocab_size": 50, "mlp": "gelu", "norm": "layernorm"}
    )
    by_dataclass = cls.from_config(by_keywords.config)
    assert by_keywords.config == by_mapping.config == by_dataclass.config
    assert by_keywords.config.num_heads == 1  # dim // 64
    assert by_keywords.max_seq_len == by_keywords.config.max_seq_len
    with pytest.raises(ModelConfigError, match=r"unknown key\(s\).*: widht"):
        cls.from_config({"dim": 64, "layers": 1, "vocab_size": 50, "widht": 3})
    with pytest.raises(ValueError, match="dim 60 is not divisible by num_heads 8"):
        cls(dim=60, num_layers=1, vocab_size=5, num_heads=8)
    with pytest.raises(ValueError, match="unknown mlp 'relu'"):
        cls(dim=64, num_layers=1, vocab_size=5, mlp="relu")


def test_num_parameters_counts_tied_weights_once() -> None:
    tied = HysoDecoderOnly(dim=64, num_layers=1, vocab_size=100)
    untied = HysoDecoderOnly(dim=64, num_layers=1, vocab_size=100, tie_embeddings=False)
    assert untied.num_parameters() - tied.num_parameters() == 64 * 100
    assert tied.num_parameters() == sum(p.numel() for p in tied.parameters())
    tied.tok_emb.weight.requires_grad_(False)
    assert tied.num_parameters(trainable_only=True) == tied.num_parameters() - 64 * 100


def test_build_model_from_a_spec_model_section() -> None:
    section = {
        "name": "encoder_only",
        "dim": 64,
        "layers": 2,
        "num_heads": 2,
        "max_seq_len": 128,
        "dropout": 0.0,
    }
    model = build_model(section, vocab_size=261)
    assert isinstance(model, HysoEncoderOnly) and model.config.num_layers == 2
    assert isinstance(
        build_model(DecoderOnlyConfig(dim=32, num_layers=1, vocab_size=9)), HysoDecoderOnly
    )
    assert isinstance(
        build_model({**section, "name": "encoder-decoder"}, vocab_size=9), HysoEncoderDecoder
    )
    with pytest.raises(ModelConfigError, match="name"):
        build_model({"dim": 64, "layers": 1, "vocab_size": 9})
    with pytest.raises(ModelConfigError, match="unknown model family 'rnn'"):
        build_model({"name": "rnn", "dim": 64, "layers": 1, "vocab_size": 9})


def test_class_attributes_of_the_contract() -> None:
    assert HysoDecoderOnly.is_encoder_decoder is False
    assert HysoEncoderOnly.is_encoder_decoder is False
    assert HysoEncoderDecoder.is_encoder_decoder is True
    import hyso.core.models.decoder_only as dec
    import hyso.core.models.encoder_decoder as encdec

    assert dec.HysoDecoderOnly is HysoDecoderOnly
    assert encdec.HysoEncoderDecoder is HysoEncoderDecoder
