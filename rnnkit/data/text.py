"""Text classification: ``label<TAB>text`` lines or two columns of a CSV/TSV file.

The tokens become ids of a vocabulary fitted on the training texts; labels are class names
with one spelling each (``1`` and ``1.0`` are one class). Splits are stratified by label by
default, so a small test or validation part keeps the class mix of the file.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import (
    SequenceDataModule,
    encode_tokens,
    fit_vocab_and_labels,
    unknown_label,
    vocab_and_labels_info,
)
from rnnkit.data.readers import RawExample, read_csv_texts, read_text_lines
from rnnkit.data.vocab import LabelMap
from rnnkit.errors import ConfigError


class TextClassificationDataModule(SequenceDataModule):
    """One label per text; tokens become ids of a vocabulary fitted on training text.

    Args:
        tokenizer: ``"whitespace"``, ``"word"`` (words and punctuation) or ``"char"``.
        lowercase: lowercase the text before tokenising.
        min_freq: tokens seen fewer times in training become ``<unk>``.
        label_column, text_column: both ``None``: ``label<TAB>text`` lines; set (a name with
            ``header``, or an index): the two columns of a CSV/TSV file whose quoted fields
            may span lines (Pattern's ``polarity-fr-amazon.csv``: ``text_column=0``,
            ``label_column=1``).
        header: the CSV file's first record names the columns.
        delimiter: of the CSV file; ``None`` infers tab for ``.tsv`` and comma otherwise.
        stratify: stratified splits (default true here: classification).
        **kwargs: paths, split fractions and loader settings of :class:`SequenceDataModule`.
    """

    def __init__(
        self,
        tokenizer: str = "whitespace",
        lowercase: bool = False,
        min_freq: int = 1,
        label_column: int | str | None = None,
        text_column: int | str | None = None,
        header: bool = False,
        delimiter: str | None = None,
        stratify: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(stratify=stratify, **kwargs)
        self.save_hyperparameters()
        if (label_column is None) != (text_column is None):
            raise ConfigError(
                "data.label_column and data.text_column: set both (a CSV/TSV file) or neither "
                "(label<TAB>text lines)"
            )
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.label_column = label_column
        self.text_column = text_column
        self.header = header
        self.delimiter = delimiter

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        if self.text_column is None:
            return read_text_lines(
                path, self.tokenizer, self.lowercase, labeled=labeled, encoding=self.encoding
            )
        return read_csv_texts(
            path,
            label_column=self.label_column,
            text_column=self.text_column,
            tokenizer=self.tokenizer,
            lowercase=self.lowercase,
            header=self.header,
            delimiter=self.delimiter,
            labeled=labeled,
            encoding=self.encoding,
        )

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        return fit_vocab_and_labels(train, (ex.target for ex in train), self.min_freq)

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        fitted = self.fitted
        assert fitted is not None
        x = encode_tokens(fitted, example.inputs)  # (T,)
        if not labeled or example.target is None:
            return x, torch.tensor(-1)
        labels = LabelMap(fitted["labels"])
        if example.target not in labels:
            raise unknown_label(example.source, example.target, labels.names)
        return x, torch.tensor(labels.index[example.target])

    def info_from_fitted(self) -> dict[str, Any]:
        fitted = self.fitted
        assert fitted is not None
        return vocab_and_labels_info(fitted)

    def decode_inputs(self, example: RawExample) -> str:
        sep = "" if self.tokenizer == "char" else " "
        return sep.join(example.inputs)
