"""Small models and data shared by the trainer tests."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB = 23


class TinyLM(nn.Module):
    """Embedding -> dropout -> linear: logits (B, T, V) for token ids (B, T)."""

    def __init__(self, vocab: int = VOCAB, dim: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        h = self.drop(self.emb(ids))  # (B, T, D)
        if attention_mask is not None:
            h = h * attention_mask.unsqueeze(-1)
        return self.out(h)  # (B, T, V)


class TinySeq2Seq(nn.Module):
    """Logits for tgt positions from the mean of the source embedding plus tgt embedding."""

    is_encoder_decoder = True

    def __init__(self, vocab: int = VOCAB, dim: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, vocab)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None):
        ctx = self.emb(src).mean(dim=1, keepdim=True)  # (B, 1, D)
        return self.out(self.emb(tgt) + ctx)  # (B, T_tgt, V)


def token_data(n: int = 48, t: int = 6, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, VOCAB, (n, t), generator=g)
    y = torch.randint(0, VOCAB, (n, t), generator=g)
    return TensorDataset(x, y)


def loader(ds: TensorDataset, batch_size: int = 8, shuffle: bool = False) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle)


def clone_params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def params_equal(a: nn.Module | list[torch.Tensor], b: nn.Module | list[torch.Tensor]) -> bool:
    pa = list(a.parameters()) if isinstance(a, nn.Module) else a
    pb = list(b.parameters()) if isinstance(b, nn.Module) else b
    return len(pa) == len(pb) and all(torch.equal(x, y) for x, y in zip(pa, pb))


class ByteTokenizer:
    """A stand-in tokenizer for the shard tests: one id per UTF-8 byte, plus ``offset``
    (ids past 65535 with ``offset=65536``); EOS is ``offset + 256``."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self.vocab_size = offset + 257
        self.eos_token_id = offset + 256

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [[b + self.offset for b in t.encode("utf-8")] for t in texts]


def load_byte_tokenizer(path: str) -> ByteTokenizer:
    """The loader ``write_shards`` calls in each process: ``path`` holds the offset."""
    with open(path, encoding="utf-8") as fh:
        return ByteTokenizer(int(fh.read()))
