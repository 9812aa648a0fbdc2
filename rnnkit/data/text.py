"""Text classification: ``label<TAB>text`` lines, character or whitespace tokens."""

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
from rnnkit.data.readers import RawExample, read_text_lines
from rnnkit.data.vocab import LabelMap


class TextClassificationDataModule(SequenceDataModule):
    """One label per line of text; tokens become ids of a vocabulary fitted on training text.

    Args:
        tokenizer: ``"whitespace"`` or ``"char"``.
        lowercase: lowercase the text before tokenising.
        min_freq: tokens seen fewer times in training become ``<unk>``.
        **kwargs: paths, split fractions and loader settings of :class:`SequenceDataModule`.
    """

    def __init__(
        self,
        tokenizer: str = "whitespace",
        lowercase: bool = False,
        min_freq: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.min_freq = min_freq

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        return read_text_lines(
            path, self.tokenizer, self.lowercase, labeled=labeled, encoding=self.encoding
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
