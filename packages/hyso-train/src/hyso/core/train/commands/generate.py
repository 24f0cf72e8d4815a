"""``hyso generate RUN_DIR --prompt TEXT``: sample text from a run's best checkpoint,
or from a ``save_pretrained`` or Hugging Face model folder holding a ``tokenizer.json``;
``--adapter DIR`` puts LoRA adapters (hyso's or PEFT's) on that model first.

``--chat`` renders a conversation with the chat template (the run's
``data.chat_template``, a folder's ``tokenizer_config.json``, else ChatML) and generates
the assistant's turn until EOS or the template's end-of-turn text: one turn for
``--prompt`` (or piped stdin), a conversation when stdin is a terminal.

Before anything is loaded, the run's tokenizer is checked against the SHA-256 its
manifest recorded (a swapped tokenizer would decode garbage without a word), its
config.yaml must hold a ``model`` section, and the sampling arguments must be finite.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyso.core.train.commands._common import CliError, require_run_dir, require_tokenizer
from hyso.core.train.commands._model import (
    LoadedRun,
    add_adapter,
    banned_special_ids,
    load_model_folder,
    load_run,
    sample_text,
)

__all__ = [
    "chat_reply",
    "chat_template_of",
    "check_run_files",
    "check_sampling_args",
    "register",
    "run",
    "run_chat",
]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="sample text from a trained run",
        description="Load RUN_DIR's best checkpoint and tokenizer (or a model folder's "
        "weights and tokenizer.json) and print the prompt "
        "continued by the model, token by token as it is produced. Special tokens other "
        "than EOS are never drawn unless --allow-special.",
        epilog='example: hyso generate runs/<run-id> --prompt "def " --max-new-tokens 100',
    )
    p.add_argument(
        "run_dir",
        help="the run folder written by hyso train, or a model folder (save_pretrained "
        "or Hugging Face) holding a tokenizer.json",
    )
    p.add_argument(
        "--prompt",
        default=None,
        help='text to continue (default "def "); with --chat, the user\'s message',
    )
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to add (default 200)")
    p.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature; 0 is greedy"
    )
    p.add_argument("--top-k", type=int, default=50, help="sample from the k likeliest tokens")
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="nucleus sampling: draw from the likeliest tokens whose probabilities "
        "reach P, 0 < P <= 1 (default: off)",
    )
    p.add_argument(
        "--allow-special",
        action="store_true",
        help="let the model draw special tokens such as <mask> (by default only EOS, "
        "which ends the text)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    p.add_argument(
        "--adapter",
        metavar="DIR",
        default=None,
        help="LoRA adapters to put on the model: a folder with lora.json (a LoRA run's "
        "artifacts/adapter) or PEFT's adapter_config.json",
    )
    p.add_argument(
        "--chat",
        action="store_true",
        help="chat: the prompt is a user message rendered with the chat template and the "
        "model writes the assistant's turn; a conversation when stdin is a terminal and "
        "no --prompt is given (an empty line or Ctrl-D ends it), else one turn from "
        "--prompt or stdin",
    )
    p.add_argument(
        "--chat-template",
        default=None,
        help="with --chat: chatml, a tokenizer_config.json or a .jinja file (default: the "
        "run's data.chat_template, a model folder's tokenizer_config.json, else chatml)",
    )
    p.add_argument("--system", default=None, help="with --chat: a system message first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_sampling_args(args.temperature, args.max_new_tokens, args.top_k, args.top_p)
    folder = Path(args.run_dir)
    if (folder / "config.json").is_file() and not (folder / "config.yaml").is_file():
        loaded = load_model_folder(folder)  # a save_pretrained or Hugging Face folder
    else:
        run_dir = require_run_dir(args.run_dir)
        check_run_files(run_dir)
        loaded = load_run(run_dir)
    adapter = getattr(args, "adapter", None)  # callers building the namespace may omit it
    if adapter is not None:
        loaded.model = add_adapter(loaded.model, Path(adapter)).eval()
    if getattr(args, "chat", False):  # a Namespace built by a caller may lack it
        return run_chat(loaded, args)
    sample_text(
        loaded.model,
        loaded.tokenizer,
        args.prompt if args.prompt is not None else "def ",
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        top_p=args.top_p,
        allow_special=args.allow_special,
        on_text=_print_piece,
    )
    print(flush=True)
    return 0


def _print_piece(text: str) -> None:
    print(text, end="", flush=True)


def run_chat(
    loaded: LoadedRun, args: argparse.Namespace, read: Callable[[str], str] = input
) -> int:
    """``--chat``: one assistant turn for ``--prompt`` (or piped stdin), or a conversation
    read line by line with ``read`` when stdin is a terminal."""
    import torch

    template = chat_template_of(loaded, args.chat_template)
    messages = [{"role": "system", "content": args.system}] if args.system else []
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None

    def turn(text: str) -> None:
        messages.append({"role": "user", "content": text})
        reply = chat_reply(
            loaded.model,
            loaded.tokenizer,
            template,
            messages,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            generator=generator,
            on_text=_print_piece,
        )
        print(flush=True)
        messages.append({"role": "assistant", "content": reply})

    if args.prompt is not None or not _stdin_is_terminal():
        text = args.prompt if args.prompt is not None else sys.stdin.read()
        if not text.strip():
            raise CliError("--chat: give the user's message with --prompt or on stdin")
        turn(text)
        return 0
    while True:
        try:
            line = read("you> ")
        except EOFError:
            print()
            return 0
        if not line.strip():
            return 0
        turn(line)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def chat_template_of(loaded: LoadedRun, spec: str | None) -> Any:
    """The template ``spec`` names, else the run's ``data.chat_template``, else a model
    folder's ``tokenizer_config.json`` (when it holds a chat template), else ChatML."""
    tok_mod = require_tokenizer()
    if spec is None and loaded.config is not None:
        plain = loaded.config.to_dict() if hasattr(loaded.config, "to_dict") else {}
        data = plain.get("data") if isinstance(plain.get("data"), dict) else {}
        spec = data.get("chat_template") if data.get("format") == "chat" else None
    if spec is None and loaded.config is None and _folder_has_chat_template(loaded.run_dir):
        spec = str(loaded.run_dir / "tokenizer_config.json")
    try:
        return tok_mod.load_chat_template(spec or "chatml")
    except ValueError as exc:
        raise CliError(f"--chat-template: {exc}") from None


def _folder_has_chat_template(folder: Path) -> bool:
    """Whether a model folder's ``tokenizer_config.json`` holds a chat template (or a
    ``chat_template.jinja`` lies beside it)."""
    import json

    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return False
    if (folder / "chat_template.jinja").is_file():
        return True
    try:
        return "chat_template" in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return True  # let the template reader name what is wrong with the file


def chat_reply(
    model: Any,
    tokenizer: Any,
    template: Any,
    messages: list[dict[str, str]],
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 50,
    top_p: float | None = None,
    generator: Any = None,
    on_text: Callable[[str], None] | None = None,
) -> str:
    """The assistant's next message: ``messages`` rendered with the generation prompt,
    then tokens sampled until EOS, the end-of-turn token or text, or
    ``max_new_tokens``. Other special tokens are never drawn; ``on_text`` receives the
    reply piece by piece (the end-of-turn text itself is never passed on)."""
    import torch

    from hyso.core.models.generation import GenerationArgs, select_next_token

    try:
        ids = tokenizer.encode(
            template.render(messages, add_generation_prompt=True), allowed_special="all"
        )
        marker = template.end_of_turn
    except ValueError as exc:
        raise CliError(f"--chat: {exc}") from None
    specials = getattr(tokenizer, "special_token_ids", {}) or {}
    stop = {tokenizer.eos_token_id} | ({specials[marker]} if marker in specials else set())
    banned = [i for i in banned_special_ids(tokenizer) if i not in stop]
    args = GenerationArgs(
        1, temperature if temperature > 0 else 1.0, top_k, top_p, None, temperature > 0, generator
    )
    decoder = tokenizer.stream_decoder()
    held = _HeldText(marker, on_text)
    model.eval()
    for _ in range(max_new_tokens):
        context = torch.tensor([ids[-int(model.max_seq_len) :]], dtype=torch.long)  # (1, T)
        with torch.no_grad():
            logits = model(context)[0, -1].float()  # (V,)
        if banned:
            logits[banned] = float("-inf")
        logits[tokenizer.vocab_size :] = float("-inf")  # a padded vocabulary's spare ids
        token = int(select_next_token(logits[None, :], args))
        if token in stop:
            held.feed(decoder.flush())
            return held.close()
        ids.append(token)
        if held.feed(decoder.feed(token)):
            return held.close()
    held.feed(decoder.flush())
    return held.close(drop_partial_marker=True)  # cut off mid end-of-turn: not the reply's


class _HeldText:
    """Passes text on as it comes, holding back what could be the start of ``marker``;
    ``feed`` says True once ``marker`` has appeared (the text before it is passed on)."""

    def __init__(self, marker: str, on_text: Callable[[str], None] | None) -> None:
        self.marker = marker
        self.on_text = on_text
        self.text = ""
        self.sent = 0

    def feed(self, piece: str) -> bool:
        self.text += piece
        if self.marker and self.marker in self.text:
            self.text = self.text[: self.text.index(self.marker)]
            self._send(len(self.text))
            return True
        self._send(self._marker_start())
        return False

    def close(self, drop_partial_marker: bool = False) -> str:
        """Pass on what is held (or, with ``drop_partial_marker``, drop it: the start
        of a marker that was never finished) and return the whole text."""
        if drop_partial_marker:
            self.text = self.text[: max(self.sent, self._marker_start())]
        self._send(len(self.text))
        return self.text

    def _marker_start(self) -> int:
        """Where a tail of the text that could start ``marker`` begins (the end: none)."""
        for n in range(min(len(self.marker) - 1, len(self.text)), 0, -1):
            if self.marker.startswith(self.text[-n:]):
                return len(self.text) - n
        return len(self.text)

    def _send(self, upto: int) -> None:
        if upto > self.sent and self.on_text is not None:
            self.on_text(self.text[self.sent : upto])
        self.sent = max(self.sent, upto)


def check_sampling_args(
    temperature: float, max_new_tokens: int, top_k: int | None, top_p: float | None = None
) -> None:
    """``--temperature`` finite and >= 0, ``--max-new-tokens`` >= 0, ``--top-k`` >= 1,
    ``--top-p`` in (0, 1]."""
    if not math.isfinite(temperature) or temperature < 0:
        raise CliError(f"--temperature must be a finite number >= 0, got {temperature}")
    if max_new_tokens < 0:
        raise CliError(f"--max-new-tokens must be >= 0, got {max_new_tokens}")
    if top_k is not None and top_k < 1:
        raise CliError(f"--top-k must be >= 1, got {top_k}")
    if top_p is not None and not (math.isfinite(top_p) and 0.0 < top_p <= 1.0):
        raise CliError(f"--top-p must be a number in (0, 1], got {top_p}")


def check_run_files(run_dir: Path) -> None:
    """The run's config has a ``model`` section and its tokenizer is the one trained."""
    from hyso.core.config import load_config
    from hyso.core.storage import RunPaths, load_manifest

    paths = RunPaths.for_run_dir(run_dir)
    if paths.config_path.is_file():
        plain = load_config(paths.config_path).to_dict()
        if not isinstance(plain.get("model"), dict):
            raise CliError(
                f"{paths.config_path} has no model section: cannot rebuild the run's model"
            )
    if not (paths.manifest_path.is_file() and paths.tokenizer_path.is_file()):
        return  # load_run names whatever is missing
    manifest = load_manifest(paths.manifest_path)
    tokenizer = manifest.data.get("tokenizer")
    expected = tokenizer.get("sha256") if isinstance(tokenizer, dict) else None
    if not isinstance(expected, str):
        return  # a run written by the library, not hyso train: nothing recorded
    actual = hashlib.sha256(paths.tokenizer_path.read_bytes()).hexdigest()
    if actual != expected:
        raise CliError(
            f"{paths.tokenizer_path} is not the tokenizer this run was trained with: its "
            f"SHA-256 is {actual[:16]}..., the manifest records {expected[:16]}... "
            "(restore the run's own tokenizer file)"
        )
