"""Batching: pad variable-length sequences and keep their lengths; optional length buckets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Sampler

IGNORE_INDEX = -100  # per-step targets at padded steps; torch's CrossEntropyLoss default


def pad_sequences(seqs: Sequence[Tensor], value: float | int = 0) -> tuple[Tensor, Tensor]:
    """Stack ``T_i``-long tensors ``(T_i, ...)`` into ``(B, T_max, ...)`` plus ``lengths (B,)``.

    One ``pad_sequence`` call: half the time of a copy per sequence, on every batch of the
    main process.
    """
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(list(seqs), batch_first=True, padding_value=value), lengths


class PadCollate:
    """Collate ``(x, y)`` examples into ``(x, lengths, y)``, batch-first and padded.

    Args:
        pad_index: value for padded input steps (token id of ``<pad>``, or 0.0 for features).
        per_step_targets: ``y`` is one label per step (padded with ``IGNORE_INDEX``) rather
            than one per sequence (stacked).

    Shape:
        x (B, T, F) or (B, T); lengths (B,) CPU long; y (B,), (B, 1) or (B, T).
    """

    def __init__(self, pad_index: int = 0, per_step_targets: bool = False) -> None:
        self.pad_index = pad_index
        self.per_step_targets = per_step_targets

    def __call__(self, batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        xs, ys = zip(*batch, strict=True)
        pad = self.pad_index if not xs[0].is_floating_point() else 0.0
        x, lengths = pad_sequences(xs, pad)
        if self.per_step_targets:
            y, _ = pad_sequences(ys, IGNORE_INDEX)
        else:
            y = torch.stack(ys)
        return x, lengths, y


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar lengths: shuffle, sort within pools of ``pool`` batches, shuffle batches.

    Less padding per batch, the same examples per epoch. Seeded by ``seed + epoch``.
    Not combined with DDP's sampler (use it on one device).
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, pool: int = 50, seed: int = 0
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.pool = pool
        self.seed = seed
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.lengths), generator=g).tolist()
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            chunk = sorted(order[start : start + size], key=lambda i: self.lengths[i])
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        for k in torch.randperm(len(batches), generator=g).tolist():
            yield batches[k]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size
