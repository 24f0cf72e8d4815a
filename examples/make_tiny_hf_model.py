"""Write a small, randomly initialised Llama model and its tokenizer as a Hugging Face folder.

It stands in for a published model where none can be downloaded: the folder has the
files a Hub model has (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json), written by transformers and tokenizers themselves. The
tokenizer is a byte-level BPE trained by tokenizers on some of Python's own standard
library. Needs transformers and tokenizers (test-only tools here, never a hyso
dependency).

usage: python examples/make_tiny_hf_model.py OUT_DIR [--vocab-size 512] [--seed 0]
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

EOS = "<|endoftext|>"
MODULES = ("argparse", "json/__init__", "pathlib", "textwrap", "string", "shutil")


def stdlib_text() -> list[str]:
    """The source of a few standard-library modules (the tokenizer's training text)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return [(root / f"{name}.py").read_text(encoding="utf-8") for name in MODULES]


def make_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE whose only special token, ``<|endoftext|>``, is EOS."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(stdlib_text(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS)


def make_model(vocab_size: int, eos_id: int, seed: int) -> LlamaForCausalLM:
    """A two-layer Llama (grouped-query attention, untied output head), random weights."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    return LlamaForCausalLM(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    tokenizer = make_tokenizer(args.vocab_size)
    model = make_model(len(tokenizer), tokenizer.eos_token_id, args.seed)
    model.save_pretrained(args.out_dir)
    tokenizer.save_pretrained(args.out_dir)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out_dir}: Llama, {params:,} parameters, vocabulary {len(tokenizer)}")


if __name__ == "__main__":
    main()
