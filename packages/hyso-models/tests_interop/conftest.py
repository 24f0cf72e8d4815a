"""Checks shared by the interop tests: transformers and hyso agree on the same weights.

The tests reach them through the ``parity`` fixture (``parity.check_family(config, tmp)``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from hyso.core.models import load_hf

LOGIT_TOL = 1e-5
NEW_TOKENS = 32


def padded_batch(vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two prompts of 12 tokens, the second left-padded by 5: ``(ids, mask)``."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    ids[1, :5] = 0
    return ids, mask


def max_logit_diff(hf_model, model, ids: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest |difference| of the logits at the non-padding positions.

    transformers is given the positions its ``generate`` uses for left-padded rows
    (counted from each row's first token), as hyso numbers them.
    """
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        theirs = hf_model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        ours = model(ids, attention_mask=mask)
    keep = mask.bool()
    return float((theirs[keep] - ours[keep]).abs().max())


def hf_greedy(hf_model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """transformers' greedy continuation of ``NEW_TOKENS`` tokens (no EOS stop)."""
    with torch.no_grad():
        out = hf_model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            pad_token_id=0,
            eos_token_id=None,
        )
    return out[:, ids.shape[1] :]


def check_model(hf_model, folder: Path, vocab: int):
    """Logits and greedy tokens of the hyso model loaded from ``folder`` equal transformers'
    on a left-padded batch."""
    hf_model.eval()
    model = load_hf(folder).eval()
    ids, mask = padded_batch(vocab)
    assert max_logit_diff(hf_model, model, ids, mask) <= LOGIT_TOL
    ours = model.generate(ids, NEW_TOKENS, attention_mask=mask)[:, ids.shape[1] :]
    theirs = hf_greedy(hf_model, ids, mask)
    assert all(len(set(row.tolist())) >= 4 for row in theirs), theirs  # not a degenerate run
    assert torch.equal(ours, theirs)
    return model


def check_family(hf_config, tmp_path: Path, auto=transformers.AutoModelForCausalLM) -> None:
    """The whole proof for one config: load, compare, export, reload, compare, bf16 bit-exact."""
    # Weights large enough that greedy decoding does not settle on one token.
    hf_config.initializer_range = 0.2
    torch.manual_seed(0)
    hf_model = auto.from_config(hf_config).float().eval()
    with torch.no_grad():  # non-trivial norms and biases, so a swapped tensor shows
        for name, p in hf_model.named_parameters():
            if name.endswith("bias") or "norm" in name or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    hf_model.save_pretrained(tmp_path / "hf")
    model = check_model(hf_model, tmp_path / "hf", hf_config.vocab_size)
    model.to_hf(tmp_path / "out")
    back = auto.from_pretrained(tmp_path / "out").eval()
    assert type(back) is type(hf_model)
    check_model(back, tmp_path / "out", hf_config.vocab_size)
    check_bf16_roundtrip(hf_model, tmp_path, auto)


def check_bf16_roundtrip(hf_model, tmp_path: Path, auto, unused: tuple[str, ...] = ()) -> None:
    """bf16 weights come back from hyso's export bit for bit, by transformers' names
    (``unused``: tensors the transformers model stores but never reads)."""
    hf_model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    model = load_hf(tmp_path / "bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
    model.to_hf(tmp_path / "bf16-out")
    original = load_file(str(tmp_path / "bf16" / "model.safetensors"))
    exported = load_file(str(tmp_path / "bf16-out" / "model.safetensors"))
    original = {k: v for k, v in original.items() if k in exported or "inv_freq" not in k}
    tied = getattr(hf_model.config, "tie_word_embeddings", False)
    if tied:
        original.pop("lm_head.weight", None)
    for name in unused:
        original.pop(name)
    assert set(original) == set(exported)
    for name, tensor in original.items():
        assert exported[name].dtype == torch.bfloat16
        assert torch.equal(exported[name].view(torch.int16), tensor.view(torch.int16)), name
    back = auto.from_pretrained(tmp_path / "bf16-out", dtype=torch.bfloat16)
    theirs = dict(back.state_dict())
    for name, tensor in original.items():
        assert torch.equal(theirs[name], tensor), name


@pytest.fixture
def parity():
    """This module: ``parity.check_family(hf_config, tmp_path)`` and the helpers."""
    return sys.modules[__name__]
