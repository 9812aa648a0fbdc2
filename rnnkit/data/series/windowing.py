"""Windows cut from the transformed series, and the batches they make.

A window is ``window + horizon`` consecutive rows of one series, ``W`` rows of context (the
known past) then ``H`` rows to forecast; it belongs to the split of its forecast rows. Training
windows lie wholly in training rows (nothing of validation or test reaches training, not even
as context); evaluation windows may take their context from any earlier rows. Windows never
cross from one series into another, and never start on a row the differences lost.

An evaluation *span* is a maximal run of one split's rows in a series with ``W`` rows before
it: the origin (free-run) and one-step evaluations run over it whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler


class ForecastBatch(NamedTuple):
    """A batch of ``B`` windows of ``T`` rows (the first four fields as before issue 12).

    Attributes:
        x: ``(B, T, I)`` covariates, scaled.
        lengths: ``(B,)`` all ``T``.
        y: ``(B, T, O)`` targets as the model sees them (transformed and scaled).
        window_ids: ``(B,)`` index of each window in its dataset.
        series: ``(B,)`` index of each window's series.
        raw: ``(B, T, O)`` the targets in the data's units (truth and inversion).
        shift, scale: ``(B, 1, O)`` the series' target scaler: ``v = y * scale + shift``.
    """

    x: Tensor
    lengths: Tensor
    y: Tensor
    window_ids: Tensor
    series: Tensor
    raw: Tensor
    shift: Tensor
    scale: Tensor


def window_starts(
    split: Sequence[str], stage: str, window: int, horizon: int, first: int = 0, stride: int = 1
) -> list[int]:
    """Start rows of the windows of one series that belong to ``stage``.

    A window covers rows ``[s, s + window + horizon)`` with ``s >= first``; it belongs to
    ``stage`` when its forecast rows all do (and, for ``train``, all its rows).
    """
    starts = []
    for s in range(first, len(split) - window - horizon + 1):
        rows = (
            split[s : s + window + horizon]
            if stage == "train"
            else split[s + window : s + window + horizon]
        )
        if all(r == stage for r in rows):
            starts.append(s)
    return starts[::stride] if stage == "train" else starts


class SeriesTensors:
    """Per-series tensors the datasets slice: inputs, model targets, raw targets, scalers."""

    def __init__(
        self, x: list[Tensor], y: list[Tensor], raw: list[Tensor], shift: Tensor, scale: Tensor
    ) -> None:
        self.x, self.y, self.raw, self.shift, self.scale = x, y, raw, shift, scale

    def item(self, k: int, a: int, b: int, i: int):
        return self.x[k][a:b], self.y[k][a:b], self.raw[k][a:b], k, i


class WindowDataset(Dataset):
    """Rows ``[a, b)`` of series ``k`` for each ``(k, a, b)`` item."""

    def __init__(self, tensors: SeriesTensors, items: list[tuple[int, int, int]]) -> None:
        self.tensors, self.items = tensors, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        k, a, b = self.items[i]
        return self.tensors.item(k, a, b, i)


class EqualLengthBatches(Sampler[list[int]]):
    """Batches of items of equal length (spans differ in length), in order."""

    def __init__(self, items: list[tuple[int, int, int]], batch_size: int) -> None:
        self.batches: list[list[int]] = []
        by_length: dict[int, list[int]] = {}
        for i, (_, a, b) in enumerate(items):
            by_length.setdefault(b - a, []).append(i)
        for group in by_length.values():
            for j in range(0, len(group), batch_size):
                self.batches.append(group[j : j + batch_size])

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class CollateWindows:
    """Stack the windows of ``tensors`` into a :class:`ForecastBatch` (picklable for workers).

    ``past``: the ``x`` columns of past-only covariates, zeroed after the ``context`` rows (their
    values after the forecast origin are unknown).
    """

    def __init__(self, tensors: SeriesTensors, context: int, past: Sequence[int] = ()) -> None:
        self.tensors, self.context, self.past = tensors, context, list(past)

    def __call__(self, items) -> ForecastBatch:
        x = torch.stack([it[0] for it in items])  # (B, T, I)
        if self.past:
            x[:, self.context :, self.past] = 0.0
        series = torch.tensor([it[3] for it in items], dtype=torch.long)
        return ForecastBatch(
            x=x,
            lengths=torch.full((len(items),), x.shape[1], dtype=torch.long),
            y=torch.stack([it[1] for it in items]),
            window_ids=torch.tensor([it[4] for it in items], dtype=torch.long),
            series=series,
            raw=torch.stack([it[2] for it in items]),
            shift=self.tensors.shift[series][:, None],
            scale=self.tensors.scale[series][:, None],
        )
