"""``hyso convert``: a transformers folder to hyso and back, tokenizer files carried along."""

from __future__ import annotations

import json

import torch
import transformers

from hyso.core.models import HysoDecoderOnly
from hyso.core.train.cli import main


def test_convert_both_ways_keeps_the_model_and_the_tokenizer_files(tmp_path, capsys):
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    hf_model = transformers.LlamaForCausalLM(config).eval()
    hf_model.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "tokenizer.json").write_text('{"version": "1.0"}')
    (tmp_path / "hf" / "tokenizer_config.json").write_text('{"bos_token": "<s>"}')

    assert main(["convert", str(tmp_path / "hf"), str(tmp_path / "hyso")]) == 0
    assert "(hf -> hyso)" in capsys.readouterr().out
    model = HysoDecoderOnly.from_pretrained(tmp_path / "hyso")
    assert json.loads((tmp_path / "hyso" / "config.json").read_text())["family"] == "decoder_only"

    assert main(["convert", str(tmp_path / "hyso"), str(tmp_path / "back"), "--dtype", "bf16"]) == 0
    assert "(hyso -> hf)" in capsys.readouterr().out
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "back")
    assert back.dtype == torch.bfloat16
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "back" / name).read_text() == (tmp_path / "hf" / name).read_text()
    ids = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        assert (model(ids) - hf_model(ids).logits).abs().max() <= 1e-5
        theirs = back.float()(ids).logits
    assert (theirs - hf_model(ids).logits).abs().max() < 0.1  # bf16 weights, fp32 math


def test_convert_refuses_a_non_empty_destination_in_one_line(tmp_path, capsys):
    torch.manual_seed(0)
    HysoDecoderOnly(dim=32, num_layers=1, vocab_size=50).save_pretrained(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("mine")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "dst")]) == 2
    err = capsys.readouterr().err
    assert "already exists and is not an empty folder" in err
    assert (tmp_path / "dst" / "keep.txt").read_text() == "mine"
    assert main(["convert", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
    assert "no config.json" in capsys.readouterr().err
