"""``model.compile()``: in place, the same state dict keys, the same outputs."""

from __future__ import annotations

import torch

from .conftest import build

V = 97


def test_compile_in_place_keeps_keys_and_outputs(family) -> None:
    graphs: list[int] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(1)
        return gm.forward

    torch._dynamo.reset()
    eager = build(family, seed=1).eval()
    model = build(family, seed=1).eval()
    keys = list(model.state_dict())
    model.compile(backend=backend)
    assert list(model.state_dict()) == keys
    ids = torch.randint(0, V, (2, 8))
    with torch.no_grad():
        args = (ids, ids) if model.is_encoder_decoder else (ids,)
        torch.testing.assert_close(model(*args), eager(*args), rtol=0, atol=1e-6)
    assert graphs  # the compiled body ran


def test_cached_generation_runs_compiled_and_gives_the_eager_tokens() -> None:
    graphs: list[int] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(1)
        return gm.forward

    torch._dynamo.reset()
    for family in ("decoder_only", "encoder_decoder"):
        eager = build(family, seed=2).eval()
        model = build(family, seed=2).eval()
        model.compile(backend=backend)
        prompt = torch.randint(0, V, (2, 5))
        before = len(graphs)
        with torch.no_grad():
            got = model.generate(prompt, max_new_tokens=12, do_sample=False)
            want = eager.generate(prompt, max_new_tokens=12, do_sample=False)
        assert torch.equal(got, want), family
        # A few graphs (prefill, first steps), not one per generated token.
        assert 1 <= len(graphs) - before < 12, (family, len(graphs) - before)
