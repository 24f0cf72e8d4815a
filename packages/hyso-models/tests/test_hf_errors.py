"""Hugging Face folders that cannot be loaded exactly are refused, naming the file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hyso.core.models import (
    HFExportError,
    HFFormatError,
    HysoDecoderOnly,
    HysoEncoderOnly,
    load_hf,
    to_hf,
)


def llama_folder(tmp_path: Path, **overrides) -> Path:
    """A Llama folder written by ``to_hf`` from a small hyso model."""
    torch.manual_seed(0)
    values = dict(dim=32, num_layers=2, vocab_size=50, num_heads=4, num_kv_heads=2)
    model = HysoDecoderOnly(**{**values, **overrides})
    return to_hf(model, tmp_path / "hf")


def edit_config(folder: Path, **changes) -> Path:
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    return path


def test_round_trip_is_bit_identical(tmp_path):
    torch.manual_seed(1)
    model = HysoDecoderOnly(dim=32, num_layers=2, vocab_size=50, tie_embeddings=False)
    back = load_hf(to_hf(model, tmp_path / "hf"))
    assert back.hf_architecture == "LlamaForCausalLM"
    for (name, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), name
    ids = torch.randint(0, 50, (2, 9))
    assert torch.equal(model(ids), back(ids))


def test_dtype_is_kept_unless_asked(tmp_path):
    model = HysoDecoderOnly(dim=32, num_layers=1, vocab_size=50).to(torch.bfloat16)
    folder = to_hf(model, tmp_path / "hf")
    assert next(load_hf(folder).parameters()).dtype == torch.bfloat16
    assert next(load_hf(folder, dtype=torch.float32).parameters()).dtype == torch.float32


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}, "'yarn'"),
        ({"architectures": ["FalconForCausalLM"]}, "FalconForCausalLM"),
        ({"num_hidden_layers": 1_000_000}, "declares 1000000 layers"),
        ({"vocab_size": 10**9}, "declares vocab_size 1000000000"),
        ({"hidden_size": 10**6}, "hidden size 1000000"),
        ({"intermediate_size": 100}, "mlp.gate_proj.weight has shape"),
        ({"rms_norm_eps": float("nan")}, "rms_norm_eps"),
        ({"num_attention_heads": "4"}, "num_attention_heads must be a positive integer"),
        ({"layer_types": ["sliding_attention", "full_attention"]}, "layer_types"),
    ],
)
def test_config_fields_that_change_the_math_are_refused(tmp_path, changes, fragment):
    path = edit_config(llama_folder(tmp_path), **changes)
    with pytest.raises(HFFormatError, match=r"config\.json|model\.safetensors") as info:
        load_hf(path.parent)
    assert fragment in str(info.value)


def test_qwen2_sliding_window_in_force_is_refused(tmp_path):
    folder = llama_folder(tmp_path, qkv_bias=True)
    edit_config(folder, use_sliding_window=True)
    with pytest.raises(HFFormatError, match="use_sliding_window"):
        load_hf(folder)


def test_mistral_sliding_window_caps_the_length(tmp_path):
    folder = llama_folder(tmp_path)
    edit_config(
        folder, architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=16
    )
    model = load_hf(folder)
    assert model.max_seq_len == 16
    with pytest.raises(ValueError, match="exceeds max_seq_len 16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def rewrite_weights(folder: Path, edit) -> None:
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_missing_extra_and_misshapen_tensors_are_named(tmp_path):
    folder = llama_folder(tmp_path)
    rewrite_weights(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(HFFormatError, match=r"missing tensor\(s\): model.layers.1.mlp.up_proj"):
        load_hf(folder)
    folder = llama_folder(tmp_path / "b")
    rewrite_weights(folder, lambda t: t.update(extra=torch.zeros(2)))
    with pytest.raises(HFFormatError, match=r"model.safetensors: unexpected tensor\(s\).*extra"):
        load_hf(folder)
    folder = llama_folder(tmp_path / "c")
    rewrite_weights(folder, lambda t: t.update({"model.norm.weight": torch.ones(31)}))
    with pytest.raises(HFFormatError, match=r"model.norm.weight has shape \(31,\).*\(32,\)"):
        load_hf(folder)


def test_damaged_files_are_named(tmp_path):
    folder = llama_folder(tmp_path)
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(HFFormatError, match=r"model\.safetensors: damaged"):
        load_hf(folder)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(HFFormatError, match=r"model\.safetensors: damaged"):
        load_hf(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(HFFormatError, match=r"config\.json: not valid JSON"):
        load_hf(folder)


def test_sharded_and_bin_folders_load_the_same(tmp_path):
    folder = llama_folder(tmp_path)
    reference = load_hf(folder)
    tensors = load_file(str(folder / "model.safetensors"))
    names = sorted(tensors)
    shards = {"a.safetensors": names[: len(names) // 2], "b.safetensors": names[len(names) // 2 :]}
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text((folder / "config.json").read_text())
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(sharded / shard), metadata={"format": "pt"})
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    index = {"metadata": {}, "weight_map": weight_map}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "config.json").write_text((folder / "config.json").read_text())
    torch.save(tensors, binary / "pytorch_model.bin")
    for other in (load_hf(sharded), load_hf(binary)):
        for (name, a), (_, b) in zip(reference.state_dict().items(), other.state_dict().items()):
            assert torch.equal(a, b), name
    weight_map[names[0]] = "../escape.safetensors"
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(HFFormatError, match=r"index.json: shard '\.\./escape"):
        load_hf(sharded)


def test_a_model_no_transformers_class_expresses_is_refused_by_name(tmp_path):
    with pytest.raises(HFExportError, match="family 'encoder_only'"):
        HysoEncoderOnly(dim=32, num_layers=1, vocab_size=50).to_hf(tmp_path / "x")
    gelu = HysoDecoderOnly(dim=32, num_layers=1, vocab_size=50, mlp="gelu")
    with pytest.raises(HFExportError, match="mlp 'gelu'"):
        gelu.to_hf(tmp_path / "y")
    assert not (tmp_path / "x").exists()


def test_gpt2_shaped_model_round_trips_and_gqa_is_refused(tmp_path):
    values = dict(
        dim=32, num_layers=2, vocab_size=50, pos_encoding="learned", norm="layernorm",
        mlp="gelu", bias=True,
    )  # fmt: skip
    torch.manual_seed(2)
    model = HysoDecoderOnly(**values)
    back = load_hf(to_hf(model, tmp_path / "gpt2"))
    assert back.hf_architecture == "GPT2LMHeadModel"
    ids = torch.randint(0, 50, (2, 9))
    assert torch.equal(model(ids), back(ids))
    gqa = HysoDecoderOnly(**values, num_heads=4, num_kv_heads=2)
    with pytest.raises(HFExportError, match=r"GPT2LMHeadModel: num_kv_heads 2 \(needs 4\)"):
        gqa.to_hf(tmp_path / "gqa")


def test_bert_shaped_encoder_round_trips_with_token_types(tmp_path):
    values = dict(
        dim=32, num_layers=2, vocab_size=50, pos_encoding="learned", norm="layernorm",
        mlp="gelu_erf", bias=True, block="post_norm", embed_norm=True, type_vocab_size=2,
        head_transform=True,
    )  # fmt: skip
    torch.manual_seed(3)
    model = HysoEncoderOnly(**values).eval()
    back = load_hf(to_hf(model, tmp_path / "bert")).eval()
    assert back.hf_architecture == "BertForMaskedLM"
    ids = torch.randint(0, 50, (2, 9))
    types = torch.zeros_like(ids)
    types[:, 4:] = 1
    assert torch.equal(model(ids, token_type_ids=types), back(ids, token_type_ids=types))
    assert not torch.equal(model(ids, token_type_ids=types), model(ids))
    with pytest.raises(ValueError, match=r"token_type_ids: a type id is out of range \[0, 2\)"):
        model(ids, token_type_ids=types + 1)
    with pytest.raises(HFExportError, match="BertForMaskedLM: block 'pre_norm'"):
        HysoEncoderOnly(**{**values, "block": "pre_norm"}).to_hf(tmp_path / "pre")


def test_t5_shaped_model_round_trips_and_an_untied_head_is_refused(tmp_path):
    from hyso.core.models import HysoEncoderDecoder

    values = dict(
        dim=32, num_layers=2, vocab_size=50, num_heads=4, head_size=6, mlp="geglu",
        pos_encoding="relative", rel_buckets=8, rel_max_distance=16, attn_scale=1.0,
    )  # fmt: skip
    torch.manual_seed(4)
    model = HysoEncoderDecoder(**values).eval()
    back = load_hf(to_hf(model, tmp_path / "t5")).eval()
    assert back.hf_architecture == "T5ForConditionalGeneration"
    src, tgt = torch.randint(0, 50, (2, 9)), torch.randint(0, 50, (2, 5))
    assert torch.equal(model(src, tgt), back(src, tgt))
    # The decoder's bias looks back only: a later target token cannot change earlier logits.
    changed = tgt.clone()
    changed[:, -1] = (tgt[:, -1] + 1) % 50
    assert torch.equal(model(src, changed)[:, :-1], model(src, tgt)[:, :-1])
    untied = HysoEncoderDecoder(**values, tie_embeddings=False)
    with pytest.raises(HFExportError, match="untied output head"):
        untied.to_hf(tmp_path / "untied")
