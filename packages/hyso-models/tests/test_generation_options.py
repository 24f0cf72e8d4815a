"""``generate(banned_ids=..., on_token=...)``: ids that are never chosen and tokens handed
over as they are produced, with the KV cache, for both families that generate."""

from __future__ import annotations

import pytest
import torch

from hyso.core.models import HysoDecoderOnly
from hyso.core.models.generation import GenerationArgs, select_next_token

V = 97  # vocab size of the debug config


@pytest.fixture(scope="module")
def model(make_model) -> HysoDecoderOnly:
    return make_model("decoder_only").eval()


def _prompt(seed: int, batch: int = 1, length: int = 5) -> torch.Tensor:
    return torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(seed))


def _favoured(model: HysoDecoderOnly, ids: torch.Tensor, count: int = 3) -> list[int]:
    """The ids greedy decoding picks first after ``ids``, which banning must push aside."""
    return sorted(set(model.generate(ids, count)[0, ids.shape[1] :].tolist()))


@pytest.mark.parametrize("seed", range(3))
def test_greedy_with_banned_ids_is_the_argmax_of_the_rest(model, seed: int) -> None:
    ids = _prompt(seed)
    banned = _favoured(model, ids)
    out, logits = model.generate(ids, 12, banned_ids=banned, return_logits=True)
    new = out[0, 5:]
    assert not set(new.tolist()) & set(banned)
    # each token is the argmax of the full-forward logits with the banned ids removed
    with torch.no_grad():
        full = model(out)[0, 4:-1].clone()  # (12, V): the logits each new token follows
    full[:, banned] = float("-inf")
    assert torch.equal(full.argmax(-1), new)
    assert (logits[0, :, banned] != float("-inf")).all()  # returned logits stay as computed


def test_sampling_never_draws_a_banned_id(model) -> None:
    ids = _prompt(7, batch=2)
    banned = list(range(0, V, 2))  # every even id
    for seed in range(10):
        out = model.generate(
            ids,
            15,
            do_sample=True,
            temperature=3.0,
            banned_ids=banned,
            generator=torch.Generator().manual_seed(seed),
        )
        assert (out[:, 5:] % 2 == 1).all()


def test_a_tiny_top_p_with_banned_ids_is_banned_greedy(model) -> None:
    ids = _prompt(3)
    banned = _favoured(model, ids)
    greedy = model.generate(ids, 10, banned_ids=banned)
    nucleus = model.generate(
        ids,
        10,
        do_sample=True,
        temperature=2.0,
        top_p=1e-9,
        banned_ids=banned,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(nucleus, greedy)


def test_on_token_sees_each_token_as_it_is_produced(model) -> None:
    ids = _prompt(11, batch=2)
    calls: list[int] = []
    model_calls = [0]
    hook = model.register_forward_hook(lambda *_: model_calls.__setitem__(0, model_calls[0] + 1))
    seen: list[torch.Tensor] = []

    def on_token(tokens: torch.Tensor) -> None:
        seen.append(tokens)
        calls.append(model_calls[0])

    try:
        out = model.generate(ids, 9, on_token=on_token)
    finally:
        hook.remove()
    assert torch.equal(torch.stack(seen, dim=1), out[:, 5:])
    # token i is handed over after the prompt pass and i cached steps, before step i + 1
    assert calls == list(range(1, 10))


def test_on_token_shows_padding_after_a_rows_eos(model) -> None:
    ids = _prompt(2, batch=3)
    eos = int(model.generate(ids, 1)[0, -1])  # row 0 ends at once
    seen: list[torch.Tensor] = []
    out = model.generate(ids, 8, eos_token_id=eos, pad_token_id=-1, on_token=seen.append)
    assert torch.equal(torch.stack(seen, dim=1), out[:, 5:])
    assert int(out[0, 5]) == eos and (out[0, 6:] == -1).all()


def test_encoder_decoder_generate_takes_the_same_options(make_model) -> None:
    model = make_model("encoder_decoder").eval()
    src = _prompt(5, batch=2, length=6)
    free = model.generate(src, 6, decoder_start_token_id=0)
    banned = sorted(set(free[:, 1:].flatten().tolist()))
    seen: list[torch.Tensor] = []
    out = model.generate(src, 6, decoder_start_token_id=0, banned_ids=banned, on_token=seen.append)
    assert not set(out[:, 1:].flatten().tolist()) & set(banned)
    assert torch.equal(torch.stack(seen, dim=1), out[:, 1:])


@pytest.mark.parametrize(
    ("banned", "message"),
    [
        ([V], f"id {V} is outside the vocabulary of {V}"),
        (list(range(V)), f"bans all {V} ids"),
        ([-1], "integers >= 0"),
        ([1.5], "integers >= 0"),
        ([True], "integers >= 0"),
        ("abc", "sequence of token ids"),
    ],
)
def test_bad_banned_ids_are_refused_by_name(model, banned: object, message: str) -> None:
    with pytest.raises(ValueError, match="banned_ids") as info:
        model.generate(_prompt(0), 3, banned_ids=banned)
    assert message in str(info.value)


def test_select_next_token_bans_before_top_k() -> None:
    logits = torch.tensor([[5.0, 4.0, 3.0, 0.0]])
    args = GenerationArgs(1, 1.0, 1, None, None, True, torch.Generator().manual_seed(0),
                          banned_ids=[0, 1])  # fmt: skip
    assert int(select_next_token(logits, args)) == 2  # the best id left, not nothing
