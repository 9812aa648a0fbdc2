"""CSV/TSV sequence classification or regression: one row per sequence, or one row per step."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import SequenceDataModule, unknown_label
from rnnkit.data.readers import RawExample, read_csv_sequences
from rnnkit.data.vocab import LabelMap
from rnnkit.errors import DataFormatError


class CSVSequenceDataModule(SequenceDataModule):
    """Sequences of feature vectors with one label each, read from CSV/TSV files.

    Args:
        label_column: name (with a header) or index of the label column.
        sequence_column: name or index of the sequence-id column for one-row-per-step files;
            ``None`` for one row per sequence (features cut into steps of ``step_size``).
        feature_columns: feature names/indices (default: every other column).
        step_column: name or index of the time-step column of one-row-per-step files (rows
            are then ordered by it; ``None``: file order).
        step_size: features per step in one-row-per-sequence files.
        header: the first row names the columns.
        delimiter: ``None`` infers tab for ``.tsv`` and comma otherwise.
        regression: labels are numbers to regress (``num_classes`` is then ``None``).
        normalize: standardise every feature with the training split's mean and std.
        **kwargs: paths, split fractions and loader settings of :class:`SequenceDataModule`.
    """

    def __init__(
        self,
        label_column: int | str = -1,
        sequence_column: int | str | None = None,
        step_column: int | str | None = None,
        feature_columns: list[int | str] | None = None,
        step_size: int = 1,
        header: bool = True,
        delimiter: str | None = None,
        regression: bool = False,
        normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.label_column = label_column
        self.sequence_column = sequence_column
        self.step_column = step_column
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.step_size = step_size
        self.header = header
        self.delimiter = delimiter
        self.regression = regression
        self.normalize = normalize

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        return read_csv_sequences(
            path,
            label_column=self.label_column,
            sequence_column=self.sequence_column,
            feature_columns=self.feature_columns,
            step_size=self.step_size,
            header=self.header,
            delimiter=self.delimiter,
            regression=self.regression,
            labeled=labeled,
            num_columns=(self.fitted or {}).get("num_columns") if not labeled else None,
            step_column=self.step_column,
            encoding=self.encoding,
        )

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        steps = torch.tensor([row for ex in train for row in ex.inputs], dtype=torch.float64)
        F = steps.shape[1]
        mean = steps.mean(0) if self.normalize else torch.zeros(F, dtype=torch.float64)
        std = (
            steps.std(0, unbiased=False) if self.normalize else torch.ones(F, dtype=torch.float64)
        )
        std = torch.where(std > 1e-8, std, torch.ones_like(std))  # constant features stay put
        labels = None if self.regression else LabelMap.build(ex.target for ex in train).names
        # columns of a labelled row in wide files, so unlabelled prediction rows can be told apart
        num_columns = None
        if self.sequence_column is None and self.feature_columns is None:
            num_columns = len(train[0].inputs) * F + 1
        return {
            "num_columns": num_columns,
            "input_size": F,
            "mean": mean.tolist(),
            "std": std.tolist(),
            "labels": labels,
        }

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        fitted = self.fitted
        assert fitted is not None
        if len(example.inputs[0]) != len(fitted["mean"]):
            raise DataFormatError(
                f"{example.source}: {len(example.inputs[0])} features per step, but the model "
                f"was trained on {len(fitted['mean'])}; expected the training file's columns"
            )
        x = torch.tensor(example.inputs, dtype=torch.float32)  # (T, F)
        x = (x - torch.tensor(fitted["mean"])) / torch.tensor(fitted["std"])
        x = x.float()
        if not labeled or example.target is None:
            y = torch.tensor([0.0]) if self.regression else torch.tensor(-1)
        elif self.regression:
            y = torch.tensor([float(example.target)])  # (1,)
        else:
            labels = LabelMap(fitted["labels"])
            if example.target not in labels:
                raise unknown_label(example.source, example.target, labels.names)
            y = torch.tensor(labels.index[example.target])
        return x, y

    def info_from_fitted(self) -> dict[str, Any]:
        fitted = self.fitted
        assert fitted is not None
        labels = fitted["labels"]
        return {
            "input_size": fitted["input_size"],
            "num_classes": len(labels) if labels is not None else None,
            "label_names": labels,
            "output_size": len(labels) if labels is not None else 1,
        }
