"""``hyso generate``'s sampling: special tokens kept out, nucleus sampling, streamed output."""

from __future__ import annotations

import argparse

import pytest
import torch

import hyso.core.tokenizer as tokenizer_mod
from hyso.core.train.cli import main
from hyso.core.train.commands import generate
from hyso.core.train.commands._common import CliError
from hyso.core.train.commands._model import (
    _generate_sliding,
    banned_special_ids,
    build_model,
    sample_text,
)

TINY = {"name": "decoder_only", "dim": 16, "layers": 1, "num_heads": 2, "max_seq_len": 8}


def _tokenizer() -> object:
    return tokenizer_mod.HysoBPETokenizer()


def _model(vocab_size: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(dict(TINY), vocab_size=vocab_size).eval()


def _favour(model: torch.nn.Module, bonus: dict[int, float]) -> None:
    """Add ``bonus`` to the logits of the given ids (the model's output head bias)."""
    shift = torch.zeros(model.vocab_size)
    for tid, value in bonus.items():
        shift[tid] = value
    model.register_forward_hook(lambda _m, _i, out: out + shift)


def test_special_tokens_other_than_eos_are_never_drawn() -> None:
    tok = _tokenizer()
    mask, eos = tok.special_token_ids["<mask>"], tok.eos_token_id
    assert banned_special_ids(tok) == sorted(set(tok.special_token_ids.values()) - {eos})
    model = _model(tok.vocab_size)
    _favour(model, {mask: 100.0})
    for seed in range(3):
        text = sample_text(model, tok, "ab", max_new_tokens=12, temperature=1.0, seed=seed)
        assert "<mask>" not in text and len(text) > 2
    ids = _generate_sliding(model, [5, 6], 12, 1.0, None, eos, None, banned=banned_special_ids(tok))
    assert len(ids) == 12 and not set(ids) & set(tok.special_token_ids.values())
    # asked for, the favoured mask token comes out every time
    allowed = sample_text(model, tok, "ab", max_new_tokens=3, temperature=0.0, allow_special=True)
    assert allowed == "ab" + "<mask>" * 3


def test_eos_still_ends_the_text_when_a_special_token_is_favoured() -> None:
    tok = _tokenizer()
    mask, eos = tok.special_token_ids["<mask>"], tok.eos_token_id
    model = _model(tok.vocab_size)
    _favour(model, {mask: 100.0, eos: 50.0})
    assert sample_text(model, tok, "ab", max_new_tokens=20, temperature=0.0) == "ab"
    for seed in range(3):
        text = sample_text(model, tok, "ab", max_new_tokens=20, temperature=1.0, seed=seed)
        assert text == "ab"
    # token healing (trailing space) keeps specials out too
    healed = sample_text(model, tok, "ab ", max_new_tokens=20, temperature=0.0)
    assert healed.startswith("ab ") and "<" not in healed


@pytest.mark.parametrize("seed", range(4))
def test_a_tiny_top_p_is_greedy(seed: int) -> None:
    tok = _tokenizer()
    model = _model(tok.vocab_size, seed)
    greedy = sample_text(model, tok, "def ", max_new_tokens=15, temperature=0.0)
    nucleus = sample_text(
        model, tok, "def ", max_new_tokens=15, temperature=1.5, top_k=None, top_p=1e-9, seed=seed
    )
    assert nucleus == greedy
    sampled = [
        sample_text(model, tok, "def", max_new_tokens=15, temperature=1.5, top_k=None, seed=s)
        for s in range(4)
    ]
    assert any(s != greedy for s in sampled)  # plain sampling does differ from greedy


@pytest.mark.parametrize("value", ["0", "-0.5", "1.01", "nan", "inf"])
def test_top_p_outside_zero_one_is_refused(
    value: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert main(["generate", str(tmp_path), "--top-p", value]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--top-p" in lines[0] and "Traceback" not in lines[0]
    with pytest.raises(CliError, match="--top-p"):
        generate.check_sampling_args(0.8, 10, None, float(value))


def test_top_p_in_range_is_accepted() -> None:
    for value in (1e-9, 0.5, 1.0):
        generate.check_sampling_args(0.8, 10, None, value)


class _Loaded:
    def __init__(self, model: torch.nn.Module, tokenizer: object) -> None:
        self.model, self.tokenizer = model, tokenizer


@pytest.mark.parametrize("seed", range(3))
def test_streamed_output_equals_the_whole_text(
    seed: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    tok = _tokenizer()
    model = _model(tok.vocab_size, seed)
    monkeypatch.setattr(generate, "require_run_dir", lambda path: tmp_path)
    monkeypatch.setattr(generate, "check_run_files", lambda path: None)
    monkeypatch.setattr(generate, "load_run", lambda path: _Loaded(model, tok))
    pieces: list[str] = []
    expected = sample_text(
        model, tok, "é ", max_new_tokens=40, temperature=1.0, seed=seed, on_text=pieces.append
    )
    assert "".join(pieces) == expected
    assert len(pieces) > 2  # text came out as it was produced, not at the end
    args = argparse.Namespace(
        run_dir=str(tmp_path),
        prompt="é ",
        max_new_tokens=40,
        temperature=1.0,
        top_k=50,
        top_p=None,
        seed=seed,
        allow_special=False,
    )
    assert generate.run(args) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_generate_help_lists_the_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--top-p" in out and "--allow-special" in out


@pytest.mark.parametrize("kind", ["pretrained", "hf-model-hyso-tokenizer", "hf"])
def test_generate_runs_on_a_model_folder(
    kind: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hyso.core.models import to_hf

    tok = _tokenizer()
    model = _model(tok.vocab_size, seed=4)
    folder = tmp_path / "model"
    if kind == "pretrained":
        model.save_pretrained(folder)
    else:
        to_hf(model, folder)
    if kind == "hf":
        tok.to_hf(folder / "tokenizer.json")
    else:
        tok.save(folder / "tokenizer.json")
    expected = sample_text(model, tok, "ab", max_new_tokens=10, temperature=0.0)
    argv = ["generate", str(folder), "--prompt", "ab", "--max-new-tokens", "10"]
    code = main([*argv, "--temperature", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == expected + "\n"
    assert len(expected) > 2


def test_a_model_folder_without_a_tokenizer_is_one_line(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _model(_tokenizer().vocab_size)
    model.save_pretrained(tmp_path / "m")
    assert main(["generate", str(tmp_path / "m")]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "tokenizer.json" in lines[0]


@pytest.mark.parametrize("prompt", ["ab", "ab "])
def test_ids_past_the_tokenizer_in_a_padded_vocabulary_are_never_drawn(prompt: str) -> None:
    tok = _tokenizer()
    torch.manual_seed(0)
    model = build_model(dict(TINY), vocab_size=tok.vocab_size + 40).eval()
    _favour(model, {tok.vocab_size + 5: 100.0})
    for seed in range(3):
        for allow in (False, True):
            text = sample_text(
                model, tok, prompt, max_new_tokens=12, temperature=1.0, seed=seed,
                allow_special=allow,
            )  # fmt: skip
            assert text.startswith(prompt) and len(text) > len(prompt)
    greedy = sample_text(model, tok, prompt, max_new_tokens=12, temperature=0.0)
    assert len(tok.encode(greedy)) > len(tok.encode(prompt))
