"""Shared fixtures: tiny models of each family built from the ``debug`` config."""

from __future__ import annotations

import pytest
import torch

from hyso.core.models import (
    HysoDecoderOnly,
    HysoEncoderDecoder,
    HysoEncoderOnly,
    get_config,
)

FAMILIES = {
    "decoder_only": HysoDecoderOnly,
    "encoder_only": HysoEncoderOnly,
    "encoder_decoder": HysoEncoderDecoder,
}


def build(family: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """A ``debug``-sized model of ``family`` with deterministic weights."""
    torch.manual_seed(seed)
    return FAMILIES[family](get_config("debug", family, **overrides))


@pytest.fixture(scope="session")
def make_model():
    """The factory ``make_model(family, seed=0, **config_overrides)``."""
    return build


@pytest.fixture(params=list(FAMILIES))
def family(request) -> str:
    return request.param
