"""A torch dataset of tokenized conversations for chat fine-tuning, one sample each.

Samples are never packed: a batch pads each sample to the batch's longest with the pad
id (inputs) and -100 (labels), on the right. With causal attention a real token never
sees the padding after it, so no attention mask is needed and no sample sees another;
the loss counts only the assistant's tokens (labels -100 elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from hyso.core.train.data.windows import IGNORE_INDEX

__all__ = ["ChatSamples"]


class ChatSamples(Dataset):
    """Item ``i`` is ``(x, y)``: ``x = ids[:-1]`` and ``y = labels[1:]`` of sample ``i``.

    ``labels`` hold the id where the assistant writes and -100 elsewhere. A sample longer
    than ``seq_len + 1`` tokens, or with no assistant token to predict, is left out
    (``dropped`` counts them): a cut answer would teach the model to stop mid-answer.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Sequence[int], Sequence[int]]],
        seq_len: int,
        pad_id: int,
    ) -> None:
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if len(samples) and not all(len(ids) == len(lab) for ids, lab in samples):
            raise ValueError("each sample's ids and labels must have the same length")
        self.seq_len = seq_len
        self.pad_id = int(pad_id)
        self.items: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.dropped = 0
        for ids, labels in samples:
            target = list(labels[1:])
            if len(ids) > seq_len + 1 or all(t == IGNORE_INDEX for t in target):
                self.dropped += 1
                continue
            x = torch.tensor(list(ids[:-1]), dtype=torch.long)
            self.items.append((x, torch.tensor(target, dtype=torch.long)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]

    @property
    def num_targets(self) -> int:
        """Assistant tokens the samples predict in total."""
        return sum(int((y != IGNORE_INDEX).sum()) for _, y in self.items)

    def collate(
        self, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of shape ``(B, T)``, T the longest sample, padded on the right."""
        width = max(len(x) for x, _ in batch)
        xs = torch.full((len(batch), width), self.pad_id, dtype=torch.long)  # (B, T)
        ys = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
        for row, (x, y) in enumerate(batch):
            xs[row, : len(x)] = x
            ys[row, : len(y)] = y
        return xs, ys
