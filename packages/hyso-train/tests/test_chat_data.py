"""Chat fine-tuning data that needs no tokenizer: the embedded instruction set, padded
samples with assistant-only labels, the data.format settings and --chat's held text."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch

from hyso.core.train import TrainingConfigError
from hyso.core.train.commands.generate import _HeldText
from hyso.core.train.data.chat_samples import ChatSamples
from hyso.core.train.data.stdlib_instructions import (
    InstructionPair,
    mine_stdlib_pairs,
    split_by_module,
)
from hyso.core.train.data.windows import IGNORE_INDEX
from hyso.core.train.run_config import DataSettings

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def pairs() -> list[InstructionPair]:
    return mine_stdlib_pairs()


def test_the_instruction_set_is_a_few_thousand_signature_pairs(
    pairs: list[InstructionPair],
) -> None:
    assert len(pairs) >= 2000
    assert len({(p.prompt, p.answer) for p in pairs}) == len(pairs)
    by_name = {(p.module, p.name): p for p in pairs}
    basename = by_name[("posixpath", "basename")]
    assert basename.prompt == (
        "Python signature (module posixpath): Returns the final component of a pathname"
    )
    assert basename.messages() == [
        {"role": "user", "content": basename.prompt},
        {"role": "assistant", "content": "def basename(p):"},
    ]
    for p in pairs:
        assert p.answer.startswith(("def ", "async def ")) and p.answer.endswith(":")
        assert not p.name.split(".")[-1].startswith("_")
        assert not p.module.startswith(("test.", "idlelib"))


def test_the_instruction_set_and_its_split_are_deterministic(
    pairs: list[InstructionPair],
) -> None:
    assert mine_stdlib_pairs(STDLIB) == pairs
    train, val = split_by_module(pairs, 0.1)
    assert (train, val) == split_by_module(list(pairs), 0.1)
    assert len(train) + len(val) == len(pairs)
    assert not {p.module for p in train} & {p.module for p in val}
    assert 0.05 < len(val) / len(pairs) < 0.2


def test_samples_shift_by_one_and_train_only_the_assistant() -> None:
    ids = [5, 6, 7, 8, 9]
    labels = [IGNORE_INDEX, IGNORE_INDEX, 7, 8, IGNORE_INDEX]
    ds = ChatSamples([(ids, labels)], seq_len=8, pad_id=0)
    x, y = ds[0]
    assert x.tolist() == [5, 6, 7, 8]
    assert y.tolist() == [IGNORE_INDEX, 7, 8, IGNORE_INDEX]
    assert ds.num_targets == 2 and ds.dropped == 0


def test_samples_too_long_or_without_an_answer_are_left_out() -> None:
    fits = ([1, 2, 3], [IGNORE_INDEX, 2, 3])
    too_long = (list(range(10)), [IGNORE_INDEX] * 5 + list(range(5, 10)))
    only_first = ([1, 2, 3], [1, IGNORE_INDEX, IGNORE_INDEX])  # nothing after the shift
    ds = ChatSamples([fits, too_long, only_first], seq_len=8, pad_id=0)
    assert len(ds) == 1 and ds.dropped == 2
    with pytest.raises(ValueError, match="same length"):
        ChatSamples([([1, 2], [1])], seq_len=8, pad_id=0)


def test_a_batch_pads_to_its_longest_sample_on_the_right() -> None:
    a = ([1, 2, 3, 4, 5], [IGNORE_INDEX, IGNORE_INDEX, 3, 4, 5])
    b = ([6, 7, 8], [IGNORE_INDEX, 7, 8])
    ds = ChatSamples([a, b], seq_len=16, pad_id=99)
    x, y = ds.collate([ds[0], ds[1]])
    assert x.tolist() == [[1, 2, 3, 4], [6, 7, 99, 99]]
    assert y.tolist() == [[IGNORE_INDEX, 3, 4, 5], [7, 8, IGNORE_INDEX, IGNORE_INDEX]]
    assert x.dtype == y.dtype == torch.long


def test_padding_changes_no_loss_of_a_causal_model() -> None:
    """A right-padded sample gives the real positions the logits it gives alone."""
    from hyso.core.models import build_model

    torch.manual_seed(0)
    model = build_model(
        {"name": "decoder_only", "dim": 16, "layers": 1, "num_heads": 2, "max_seq_len": 16},
        vocab_size=50,
    ).eval()
    a = ([1, 2, 3, 4, 5, 6], [IGNORE_INDEX] * 3 + [4, 5, 6])
    b = ([7, 8, 9], [IGNORE_INDEX, 8, 9])
    ds = ChatSamples([a, b], seq_len=16, pad_id=0)
    x, _ = ds.collate([ds[0], ds[1]])
    with torch.no_grad():
        batched = model(x)
        alone = model(ds[1][0][None, :])
    torch.testing.assert_close(batched[1, :2], alone[0])


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"format": "instructions"}, "data.format must be one of ['text', 'chat']"),
        ({"format": "chat", "chat_template": ""}, "data.chat_template must be"),
    ],
)
def test_bad_chat_settings_name_the_key(values: dict, needle: str) -> None:
    with pytest.raises(TrainingConfigError) as err:
        DataSettings(**values)
    assert needle in str(err.value)


def test_the_held_text_never_passes_on_the_end_of_turn() -> None:
    out: list[str] = []
    held = _HeldText("<|im_end|>", out.append)
    for piece in ["Hel", "lo <", "|im", "_e"]:
        assert not held.feed(piece)
    assert "".join(out) == "Hello "
    assert held.feed("nd|>tail")
    assert held.close() == "Hello " and "".join(out) == "Hello "
    other = _HeldText("<|im_end|>", out.clear() or out.append)
    other.feed("a <b")
    assert other.close() == "a <b" and "".join(out) == "a <b"
