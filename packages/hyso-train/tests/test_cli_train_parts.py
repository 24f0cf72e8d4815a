"""Pieces of ``hyso train`` that need no tokenizer: schedule, optimizer groups, model
building and sliding-window sampling."""

from __future__ import annotations

import io
import math
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from hyso.core.train.commands._common import CliError
from hyso.core.train.commands._model import (
    _check_finite,
    _generate_sliding,
    build_model,
    model_family,
)
from hyso.core.train.commands.train import (
    TrainOutcome,
    iter_predicted_bytes,
    make_optimizer,
    make_scheduler,
    print_outcome,
)
from hyso.core.train.data.windows import NextTokenWindows

TINY = {"name": "decoder_only", "dim": 16, "layers": 1, "num_heads": 2, "max_seq_len": 8}


def _lrs(training: dict, epochs: int, steps_per_epoch: int, n: int) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.SGD([p], lr=training["lr"])
    sched = make_scheduler(opt, training, epochs, steps_per_epoch)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_schedule_warms_up_then_decays_to_the_floor() -> None:
    training = {
        "lr": 1.0,
        "scheduler_interval": "step",
        "max_steps": 100,
        "warmup_steps": 10,
        "min_lr_ratio": 0.1,
    }
    lrs = _lrs(training, 1, 1000, 120)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in pairwise(lrs[:10]))
    assert all(a >= b for a, b in pairwise(lrs[9:100]))
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-9)
    assert min(lrs) == pytest.approx(0.1)
    assert lrs[119] == pytest.approx(0.1)


def test_step_schedule_without_max_steps_spans_every_epoch() -> None:
    training = {"lr": 2.0, "scheduler_interval": "step", "min_lr_ratio": 0.0}
    lrs = _lrs(training, epochs=2, steps_per_epoch=50, n=101)
    assert lrs[0] == pytest.approx(2.0)
    assert lrs[50] == pytest.approx(1.0)
    assert lrs[100] == pytest.approx(0.0, abs=1e-12)


def test_epoch_schedule_has_no_warmup() -> None:
    training = {"lr": 1.0, "scheduler_interval": "epoch", "warmup_steps": 5, "min_lr_ratio": 0.0}
    lrs = _lrs(training, epochs=4, steps_per_epoch=10, n=5)
    expected = [0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(5)]
    assert lrs == pytest.approx(expected)


def test_weight_decay_skips_vectors() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = make_optimizer(model, {"lr": 0.01, "weight_decay": 0.1})
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_model_family_refuses_encoder_decoder() -> None:
    with pytest.raises(CliError, match="encoder_decoder"):
        model_family({"name": "encoder_decoder"})
    assert model_family({}) == "decoder_only"


def test_build_model_takes_the_tokenizer_vocab() -> None:
    model = build_model(dict(TINY), vocab_size=77)
    assert model.vocab_size == 77
    enc = build_model({**TINY, "name": "encoder_only"}, vocab_size=50)
    assert enc.vocab_size == 50
    assert not hasattr(enc, "generate")


def test_sliding_generation_goes_past_the_context_and_stops_at_eos() -> None:
    torch.manual_seed(0)
    model = build_model(dict(TINY), vocab_size=40).eval()
    new = _generate_sliding(model, [1, 2, 3], 30, 1.0, None, eos_id=-1, generator=None)
    assert len(new) == 30  # well past max_seq_len 8
    assert all(0 <= t < 40 for t in new)
    g = torch.Generator().manual_seed(3)
    again = _generate_sliding(model, [1, 2, 3], 30, 1.0, None, -1, g)
    g = torch.Generator().manual_seed(3)
    assert _generate_sliding(model, [1, 2, 3], 30, 1.0, None, -1, g) == again
    # greedy (temperature 0): stop where the model first emits the eos id
    greedy = _generate_sliding(model, [1, 2, 3], 30, 0.0, None, eos_id=-1, generator=None)
    eos = greedy[4]
    stopped = _generate_sliding(model, [1, 2, 3], 30, 0.0, None, eos_id=eos, generator=None)
    assert stopped == greedy[: greedy.index(eos)]


class _CharTokenizer:
    """Ids 0-4 are specials; the rest spell one string each, some starting with a space."""

    pad_token_id, bos_token_id, eos_token_id, unk_token_id, mask_token_id = range(5)
    pieces = ("", "", "", "", "", "a", "b", " a", " b", "def", "  ", "x")

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        out, i = [], 0
        while i < len(text):
            for tid in sorted(range(5, len(self.pieces)), key=lambda t: -len(self.pieces[t])):
                if text.startswith(self.pieces[tid], i):
                    out.append(tid)
                    i += len(self.pieces[tid])
                    break
            else:
                raise ValueError(text)
        return out

    def decode(self, ids: list[int]) -> str:
        return "".join(self.pieces[i] for i in ids)


@pytest.mark.parametrize("seed", range(5))
def test_sample_keeps_a_trailing_space_prompt_through_token_healing(seed: int) -> None:
    from hyso.core.train.commands._model import _first_token_with_prefix, sample_text

    tok = _CharTokenizer()
    torch.manual_seed(seed)
    model = build_model(dict(TINY), vocab_size=tok.vocab_size).eval()
    g = torch.Generator().manual_seed(seed)
    first = _first_token_with_prefix(model, tok.encode("def"), " ", tok, 1.0, None, g)
    assert tok.pieces[first].startswith(" ")
    text = sample_text(model, tok, "def ", max_new_tokens=5, temperature=1.0, seed=seed)
    assert text.startswith("def ")
    greedy = sample_text(model, tok, "def ", max_new_tokens=5, temperature=0.0)
    assert greedy.startswith("def ")


class _ByteTokenizer:
    """Ids 0-255 are single bytes, 256 is a two-byte token, 257 the end of a document."""

    eos_token_id = 257

    def id_to_token(self, i: int) -> bytes | str:
        return b"ab" if i == 256 else "<eos>" if i == 257 else bytes([i])


def test_predicted_bytes_are_the_targets_text_with_eos_as_newline() -> None:
    ids = [ord("x"), 256, ord("c"), 257, ord("d"), 256, ord("e"), ord("f")]
    windows = NextTokenWindows(torch.tensor(ids), 3)  # targets: ids[1:7]; "f" is the tail
    assert windows.num_targets == 6
    assert b"".join(iter_predicted_bytes(windows, _ByteTokenizer())) == b"abc\ndabe"


def test_weights_that_diverged_are_refused_by_name(tmp_path) -> None:
    model = build_model({"name": "decoder_only", "dim": 16, "layers": 1, "num_heads": 2}, 50)
    _check_finite(model, tmp_path)  # a healthy model passes
    name, tensor = next((n, t) for n, t in model.state_dict().items() if "mlp" in n)
    with torch.no_grad():
        tensor.view(-1)[3] = float("nan")
    with pytest.raises(CliError, match=f"non-finite values in '{name}'"):
        _check_finite(model, tmp_path)


def _bpb_line(val_bpb: float, **refs: float) -> str:
    outcome = TrainOutcome(Path("r"), "r", 3.0, val_bpb, refs.pop("gzip"), 5, 10, 1.0, None)
    for name, value in refs.items():
        setattr(outcome, name, value)
    out = io.StringIO()
    print_outcome(outcome, file=out)
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith("val bits/byte")]
    return line


def test_bits_per_byte_line_names_each_compressor_beaten_or_not() -> None:
    line = _bpb_line(1.713, gzip=1.781, xz_bpb=1.522, bzip2_bpb=1.481)
    assert line == (
        "val bits/byte: 1.713 (gzip -9: 1.781, xz -9e: 1.522, bzip2 -9: 1.481; "
        "better than gzip, not better than xz or bzip2)"
    )
    line = _bpb_line(1.9, gzip=1.781, xz_bpb=1.522, bzip2_bpb=1.481)
    assert line.endswith("; not better than gzip, xz or bzip2)")
    line = _bpb_line(1.4, gzip=1.781, xz_bpb=1.522, bzip2_bpb=1.481)
    assert line.endswith("bzip2 -9: 1.481; better than gzip, xz and bzip2)")
    line = _bpb_line(1.5, gzip=1.781, xz_bpb=1.522, bzip2_bpb=1.481)
    assert line.endswith("; better than gzip and xz, not better than bzip2)")
    # an outcome built without the newer references (their default NaN) shows gzip alone
    assert _bpb_line(2.0, gzip=1.9) == "val bits/byte: 2.000 (gzip -9: 1.900; not better than gzip)"
