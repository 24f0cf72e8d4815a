"""LoRA adapters in PEFT's layout: peft loads hyso's, hyso loads peft's, same logits."""

from __future__ import annotations

import json

import peft
import pytest
import torch
import transformers
from safetensors import safe_open

from hyso.core.models import load_hf
from hyso.core.models.hf import HFExportError, HFFormatError, load_peft_adapter, save_peft_adapter
from hyso.core.models.lora import LoRASettings, apply_lora, merge_lora

TOL = 1e-5

CONFIGS = {
    "llama-gqa": lambda: transformers.LlamaConfig(
        vocab_size=71,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    ),
    "mistral": lambda: transformers.MistralConfig(
        vocab_size=67,
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=64,
        sliding_window=None,
    ),
    "qwen2-bias": lambda: transformers.Qwen2Config(
        vocab_size=73,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    ),
    "gpt2": lambda: transformers.GPT2Config(
        vocab_size=79, n_embd=32, n_layer=2, n_head=4, n_positions=64
    ),
}
# GPT-2 fuses q, k and v in c_attn: only its other projections take PEFT adapters.
TARGETS = {"gpt2": ("out", "fc")}  # attn.c_proj, not mlp.c_proj
HF_TARGETS = {"gpt2": ["attn.c_proj", "mlp.c_fc"]}
LLAMA_ALL = ("q", "k", "v", "out", "gate", "up", "down")
LLAMA_HF_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def base_folder(name: str, tmp_path):
    """A random transformers model of config ``name`` saved to ``tmp_path / "base"``."""
    torch.manual_seed(0)
    config = CONFIGS[name]()
    config.initializer_range = 0.2
    model = transformers.AutoModelForCausalLM.from_config(config).float().eval()
    model.save_pretrained(tmp_path / "base")
    return tmp_path / "base", config.vocab_size


def hf_logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_peft_loads_hysos_adapters_to_the_same_logits(name, tmp_path):
    folder, vocab = base_folder(name, tmp_path)
    model = load_hf(folder).eval()
    apply_lora(model, LoRASettings(r=4, alpha=8, targets=TARGETS.get(name, LLAMA_ALL)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    save_peft_adapter(model, tmp_path / "adapter", base_model_name_or_path=str(folder))
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "pt") as f:
        assert f.metadata()["hyso_adapter_format_version"] == "1"
    assert sorted(config["target_modules"]) == sorted(HF_TARGETS.get(name, LLAMA_HF_ALL))
    base = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    theirs = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    ids = torch.randint(0, vocab, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours = model(ids)
        no_adapters = load_hf(folder)(ids)
    expected = hf_logits(theirs, ids)
    assert (ours - expected).abs().max() <= TOL
    assert (no_adapters - expected).abs().max() > 1e-3  # the adapters matter
    merge_lora(model)
    with torch.no_grad():
        assert (model(ids) - expected).abs().max() <= TOL
    # hyso reads its own PEFT folder back to the same adapters.
    again = load_peft_adapter(load_hf(folder).eval(), tmp_path / "adapter")
    with torch.no_grad():
        assert (again(ids) - expected).abs().max() <= TOL


@pytest.mark.parametrize("name", ["llama-gqa", "qwen2-bias"])
def test_hyso_loads_peft_adapters_and_names_tensors_like_peft(name, tmp_path):
    folder, vocab = base_folder(name, tmp_path)
    base = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    lora = peft.LoraConfig(
        r=3,
        lora_alpha=5,
        target_modules=["q_proj", "v_proj", "down_proj"],
        task_type="CAUSAL_LM",
        init_lora_weights=False,  # random B: the adapters change the logits
    )
    torch.manual_seed(2)
    theirs = peft.get_peft_model(base, lora).eval()
    theirs.save_pretrained(tmp_path / "peft")
    ids = torch.randint(0, vocab, (2, 10), generator=torch.Generator().manual_seed(3))
    expected = hf_logits(theirs, ids)
    model = load_peft_adapter(load_hf(folder).eval(), tmp_path / "peft")
    with torch.no_grad():
        assert (model(ids) - expected).abs().max() <= TOL
        assert (load_hf(folder)(ids) - expected).abs().max() > 1e-3  # the adapters matter
    save_peft_adapter(model, tmp_path / "ours")
    names = []
    for sub in ("peft", "ours"):
        with safe_open(str(tmp_path / sub / "adapter_model.safetensors"), "pt") as f:
            names.append(sorted(f.keys()))
    assert names[0] == names[1]


def test_unsupported_adapters_are_refused(tmp_path):
    folder, _ = base_folder("gpt2", tmp_path)
    model = apply_lora(load_hf(folder), LoRASettings(targets=("q", "v")))
    with pytest.raises(HFExportError, match="fuses the projections of targets q, v"):
        save_peft_adapter(model, tmp_path / "a")
    folder, _ = base_folder("llama-gqa", tmp_path / "llama")
    base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    dora = peft.LoraConfig(r=2, target_modules=["q_proj"], use_dora=True)
    peft.get_peft_model(base, dora).save_pretrained(tmp_path / "dora")
    with pytest.raises(HFFormatError, match="use_dora True is not supported"):
        load_peft_adapter(load_hf(folder), tmp_path / "dora")
