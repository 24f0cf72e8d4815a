"""Chat fine-tuning end to end: ``hyso train`` on a jsonl of conversations lowers the loss
on the assistant's tokens, a malformed line stops it before any run folder exists, and
``hyso generate --chat`` answers one turn or holds a conversation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from hyso.core.tokenizer import ChatTemplate, HysoBPETokenizer, encode_chat
from hyso.core.train.cli import main
from hyso.core.train.commands import generate
from hyso.core.train.commands._lm_data import prepare_data
from hyso.core.train.commands._model import load_run

WORDS = "apple river stone cloud maple ember frost lantern meadow orbit pebble quartz".split()

CONFIG = """
model: {name: decoder_only, dim: 32, layers: 1, num_heads: 2, max_seq_len: 128, dropout: 0.0}
training:
  seed: 0
  device: cpu
  lr: 0.01
  weight_decay: 0.0
  batch_size: 8
  epochs: 20
  eval_every: 30
  max_steps: 150
  warmup_steps: 2
  progress_bar: false
  num_threads: 1
data:
  name: echo
  format: chat
  paths: DATA
  val_fraction: 0.2
  vocab_size: 300
  cache_dir: CACHE
"""


def _records(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        w = rng.choice(WORDS)
        if i % 3:
            lines.append(json.dumps({"prompt": f"say {w} twice", "completion": f"{w} {w}"}))
        else:
            v = rng.choice(WORDS)
            messages = [
                {"role": "system", "content": "Repeat words."},
                {"role": "user", "content": f"say {w} twice"},
                {"role": "assistant", "content": f"{w} {w}"},
                {"role": "user", "content": f"now {v}"},
                {"role": "assistant", "content": f"{v} {v}"},
            ]
            lines.append(json.dumps({"messages": messages}))
    return lines


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("chat")
    data = tmp / "echo.jsonl"
    data.write_text("\n".join(_records(240, seed=1)) + "\n", encoding="utf-8")
    config = tmp / "chat.yaml"
    text = CONFIG.replace("DATA", str(data)).replace("CACHE", str(tmp / "cache"))
    config.write_text(text, encoding="utf-8")
    return {"tmp": tmp, "data": data, "config": config, "runs": tmp / "runs"}


@pytest.fixture(scope="module")
def trained(workspace: dict[str, Path]) -> Path:
    argv = ["train", str(workspace["config"]), "--runs-root", str(workspace["runs"])]
    assert main(argv) == 0
    (run_dir,) = workspace["runs"].iterdir()
    return run_dir


def _val_losses(run_dir: Path) -> list[float]:
    lines = [x for x in (run_dir / "metrics.csv").read_text().splitlines() if x[:1] != "#"]
    header = lines[0].split(",")
    rows = [dict(zip(header, x.split(","))) for x in lines[1:]]
    return [float(r["loss"]) for r in rows if r["split"] == "val"]


def test_chat_training_lowers_the_assistant_token_loss(trained: Path) -> None:
    losses = _val_losses(trained)
    assert len(losses) >= 3
    assert losses[-1] < 0.5 * losses[0], losses
    manifest = json.loads((trained / "manifest.json").read_text())
    data = manifest["data"]
    assert data["format"] == "chat" and data["chat_template"] == "chatml"
    assert data["train_conversations"] + data["val_conversations"] == 240
    assert manifest["results"]["best_val_loss"] == pytest.approx(min(losses))


def test_the_validation_loss_counts_only_the_assistant_tokens(
    trained: Path, workspace: dict[str, Path]
) -> None:
    """The run's best validation loss is the model's cross-entropy over the assistant's
    tokens of the validation conversations, computed here independently."""
    loaded = load_run(trained)
    plain = loaded.config.to_dict()
    prepared = prepare_data(plain["data"], log=lambda _m: None)
    template = ChatTemplate.chatml()
    total, count = 0.0, 0
    for name in [d.name for d in prepared.corpus.val]:
        path, line = name.rsplit(":", 1)
        record = json.loads(Path(path).read_text().splitlines()[int(line) - 1])
        messages = record.get("messages") or [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["completion"]},
        ]
        enc = encode_chat(loaded.tokenizer, template, messages)
        ids = torch.tensor([enc.ids])
        with torch.no_grad():
            logits = loaded.model(ids[:, :-1])[0]  # (T-1, V)
        targets = torch.tensor(enc.labels[1:])
        keep = targets != -100
        total += float(
            torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="sum")
        )
        count += int(keep.sum())
    assert count == prepared.chat.record()["val_assistant_tokens"]
    best = json.loads((trained / "manifest.json").read_text())["results"]["best_val_loss"]
    assert total / count == pytest.approx(best, rel=1e-4)


def test_a_malformed_line_stops_training_before_a_run_folder(
    workspace: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = workspace["tmp"] / "bad.jsonl"
    lines = _records(30, seed=2)
    lines[17] = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}'
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    root = workspace["tmp"] / "bad-runs"
    argv = ["train", str(workspace["config"]), f"data.paths={bad}", "--runs-root", str(root)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{bad}:18" in err and "messages[1]: content must be a string" in err
    assert not root.exists() or not any(root.iterdir())


def test_generate_chat_answers_one_turn(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["generate", str(trained), "--chat", "--prompt", "say maple twice"]
    assert main([*argv, "--temperature", "0", "--max-new-tokens", "12"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and "<|im_end|>" not in out
    assert "maple" in out  # the tiny model has learnt to echo


class _Scripted(torch.nn.Module):
    """A model that writes ``script`` after any prompt of ``start`` tokens."""

    max_seq_len = 10_000

    def __init__(self, script: list[int], vocab_size: int, start: int) -> None:
        super().__init__()
        self.script, self.vocab_size, self.start = script, vocab_size, start
        self.prompts: list[list[int]] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1] - self.start
        if n == 0:
            self.prompts.append(ids[0].tolist())
        logits = torch.zeros(1, ids.shape[1], self.vocab_size)
        logits[0, -1, self.script[min(n, len(self.script) - 1)]] = 100.0
        return logits


def test_chat_reply_stops_at_the_end_of_turn_text() -> None:
    tok = HysoBPETokenizer()
    template = ChatTemplate.chatml()
    messages = [{"role": "user", "content": "hi"}]
    prompt = tok.encode(template.render(messages, True), allowed_special="all")
    script = tok.encode("Hi <there><|im_end|>more text")
    model = _Scripted(script, tok.vocab_size, len(prompt))
    pieces: list[str] = []
    reply = generate.chat_reply(
        model, tok, template, messages, temperature=0.0, on_text=pieces.append
    )
    assert reply == "Hi <there>" and "".join(pieces) == reply
    assert model.prompts == [prompt]
    cut = len(tok.encode("Hi <there><|im_e"))  # out of tokens in the middle of the marker
    model = _Scripted(script, tok.vocab_size, len(prompt))
    assert generate.chat_reply(model, tok, template, messages, max_new_tokens=cut) == "Hi <there>"
    eos_script = [*tok.encode("ok"), tok.eos_token_id, *tok.encode("never")]
    model = _Scripted(eos_script, tok.vocab_size, len(prompt))
    assert generate.chat_reply(model, tok, template, messages, temperature=0.0) == "ok"


def test_a_terminal_session_keeps_the_conversation(
    trained: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load_run(trained)
    seen: list[list[dict[str, str]]] = []

    def fake_reply(model: object, tok: object, tpl: object, messages: list, **kw: object) -> str:
        seen.append([dict(m) for m in messages])
        return f"reply {len(seen)}"

    monkeypatch.setattr(generate, "chat_reply", fake_reply)
    monkeypatch.setattr(generate, "_stdin_is_terminal", lambda: True)
    turns = iter(["say apple twice", "now frost", ""])
    args = generate.argparse.Namespace(
        chat_template=None,
        system="Repeat words.",
        seed=0,
        prompt=None,
        max_new_tokens=5,
        temperature=0.0,
        top_k=None,
        top_p=None,
    )
    assert generate.run_chat(loaded, args, read=lambda _p: next(turns)) == 0
    assert [m["role"] for m in seen[1]] == ["system", "user", "assistant", "user"]
    assert seen[1][2]["content"] == "reply 1" and seen[1][3]["content"] == "now frost"


def test_the_chat_template_comes_from_the_flag_the_run_or_the_folder(
    trained: Path, tmp_path: Path
) -> None:
    from hyso.core.train.commands._model import LoadedRun

    run = load_run(trained)
    assert generate.chat_template_of(run, None).name == "chatml"  # the run's data.chat_template
    jinja = tmp_path / "t.jinja"
    jinja.write_text("{% for m in messages %}{{ m['content'] }};{% endfor %}", encoding="utf-8")
    assert (
        generate.chat_template_of(run, str(jinja)).render([{"role": "user", "content": "a"}])
        == "a;"
    )
    folder = tmp_path / "model"
    folder.mkdir()
    bare = LoadedRun(folder, None, run.tokenizer, run.model, None)
    assert generate.chat_template_of(bare, None).name == "chatml"  # no tokenizer_config.json
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    assert generate.chat_template_of(bare, None).name == "chatml"  # one without a template
    config = {"chat_template": "{{ messages[0]['content'] }}{{ eos_token }}", "eos_token": "</s>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert (
        generate.chat_template_of(bare, None).render([{"role": "user", "content": "q"}]) == "q</s>"
    )
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{% for %}"}))
    with pytest.raises(generate.CliError, match="syntax error"):
        generate.chat_template_of(bare, None)
