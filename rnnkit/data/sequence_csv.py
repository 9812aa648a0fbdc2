"""Sequence classification or regression from files: CSV/TSV (one row per sequence, or one row
per step), the ``.ts`` archive format and ``.npz`` arrays (:mod:`rnnkit.data.series_files`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import SequenceDataModule, unknown_label
from rnnkit.data.readers import RawExample, read_csv_sequences
from rnnkit.data.series_files import read_npz_series, read_ts_series
from rnnkit.data.vocab import LabelMap
from rnnkit.errors import ConfigError, DataFormatError


class CSVSequenceDataModule(SequenceDataModule):
    """Sequences of feature vectors with one label each, read from CSV/TSV, ``.ts`` or ``.npz``.

    The format follows each file's suffix: ``.ts`` (UCR/UEA/Monash: ``@`` header, ``:``
    between channels, target last) and ``.npz`` (``X_train``/``y_train`` and
    ``X_test``/``y_test`` in one file, or ``X``/``y``) give ``(T, C)`` series directly, and the
    CSV keys below do not apply to them.

    Args:
        label_column: name (with a header) or index of the label column.
        sequence_column: name or index of the sequence-id column for one-row-per-step files;
            ``None`` for one row per sequence (features cut into steps of ``step_size``).
        feature_columns: feature names/indices (default: every other column).
        step_column: name or index of the time-step column of one-row-per-step files (rows
            are then ordered by it; ``None``: file order).
        step_size: features per step in one-row-per-sequence files.
        step_stride: cells between the starts of two steps there (``None``: ``step_size``).
        pad_last_step: pad a last step that runs past the row by repeating its last cell
            (else such a row is an error): a series of any length can be cut.
        header: the first row names the columns.
        delimiter: ``None`` infers tab for ``.tsv`` and comma otherwise.
        regression: labels are numbers to regress (``num_classes`` is then ``None``).
        normalize: standardise every feature with the training split's mean and std.
        stratify: stratified splits (``None``: true for classification, false for regression).
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
        step_stride: int | None = None,
        pad_last_step: bool = False,
        stratify: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(stratify=not regression if stratify is None else stratify, **kwargs)
        self.save_hyperparameters()
        if step_size < 1:
            raise ConfigError(f"data.step_size must be >= 1, got {step_size}")
        if step_stride is not None and step_stride < 1:
            raise ConfigError(f"data.step_stride must be >= 1 (or null), got {step_stride}")
        self.step_stride = step_stride
        self.pad_last_step = pad_last_step
        self.label_column = label_column
        self.sequence_column = sequence_column
        self.step_column = step_column
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.step_size = step_size
        self.header = header
        self.delimiter = delimiter
        self.regression = regression
        self.normalize = normalize

    def read_split(self, path: str, split: str) -> list[RawExample]:
        if str(path).endswith(".npz"):
            return read_npz_series(path, split, self.regression)
        return self.read(path)

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        if str(path).endswith(".ts"):
            return read_ts_series(path, self.regression)
        if str(path).endswith(".npz"):
            return read_npz_series(path, "predict", self.regression, labeled=labeled)
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
            step_stride=self.step_stride,
            pad_last_step=self.pad_last_step,
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
        # (a row of exactly T * F cells: not with .ts/.npz files, a stride or a padded step)
        exact = self.step_stride is None and not self.pad_last_step
        csv_file = not str(self.train_path).endswith((".ts", ".npz"))
        if csv_file and exact and self.sequence_column is None and self.feature_columns is None:
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
