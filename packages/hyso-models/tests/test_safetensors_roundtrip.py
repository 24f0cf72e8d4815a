"""save_pretrained writes every tensor under its state_dict name, bit for bit, in the model's dtype.

Read back through the safetensors reader itself (``load_file`` and ``safe_open``),
then through ``from_pretrained``, for each family and each floating dtype.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from hyso.core.models import HysoDecoderOnly, HysoEncoderDecoder, HysoEncoderOnly, get_config

FAMILIES = {
    "decoder_only": HysoDecoderOnly,
    "encoder_only": HysoEncoderOnly,
    "encoder_decoder": HysoEncoderDecoder,
}
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's raw bits (so -0.0 and 0.0, or two NaNs, are told apart)."""
    if not tensor.is_floating_point():
        return tensor
    return tensor.contiguous().view(SAME_SIZE_INT[tensor.element_size()])


def _model(family: str, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(3)
    model = FAMILIES[family](get_config("debug", family))
    with torch.no_grad():  # distinct from a fresh init, with a negative zero in each
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.01)
            param.view(-1)[0] = -0.0
    return model.to(dtype).eval()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_safetensors_file_holds_each_tensor_by_name(
    family: str, dtype: torch.dtype, tmp_path: Path
) -> None:
    model = _model(family, dtype)
    own = model.state_dict()
    folder = Path(model.save_pretrained(tmp_path / "saved"))
    path = folder / "model.safetensors"

    stored = load_file(str(path))
    assert stored, "no tensors written"
    assert set(stored) <= set(own), sorted(set(stored) - set(own))
    for name, tensor in stored.items():
        assert tensor.dtype == own[name].dtype, name
        assert tensor.shape == own[name].shape, name
        if own[name].is_floating_point():
            assert tensor.dtype == dtype, name
        assert torch.equal(_bits(tensor), _bits(own[name])), name
    # A name left out is a tied weight: it shares its storage with one that is stored.
    stored_ptrs = {own[name].data_ptr() for name in stored}
    for name in set(own) - set(stored):
        assert own[name].data_ptr() in stored_ptrs, f"{name} neither stored nor tied"

    with safe_open(str(path), framework="pt") as handle:
        assert set(handle.keys()) == set(stored)
        assert handle.metadata()["family"] == family
        assert handle.metadata()["format_version"]
        for name in handle.keys():
            assert torch.equal(_bits(handle.get_tensor(name)), _bits(own[name])), name
    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert meta["dtype"] == str(dtype).removeprefix("torch.")

    loaded = type(model).from_pretrained(folder)
    back = loaded.state_dict()
    assert back.keys() == own.keys()
    for name in own:
        assert back[name].dtype == own[name].dtype, name
        assert torch.equal(_bits(back[name]), _bits(own[name])), name
