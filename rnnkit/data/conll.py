"""CoNLL tagging: ``token<TAB>tag`` lines, a blank line between sentences (BIO or BIOES)."""

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
from rnnkit.data.collate import IGNORE_INDEX
from rnnkit.data.readers import RawExample, read_conll
from rnnkit.data.vocab import LabelMap


class TaggingDataModule(SequenceDataModule):
    """Shared encoding of token sequences with one tag per token.

    Args:
        scheme: ``"BIO"`` or ``"BIOES"`` (tags are checked when read, spans scored by it).
        lowercase: lowercase tokens.
        min_freq: tokens seen fewer times in training become ``<unk>``.
    """

    per_step_targets = True

    def __init__(
        self, scheme: str = "BIO", lowercase: bool = False, min_freq: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.scheme = scheme
        self.lowercase = lowercase
        self.min_freq = min_freq

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        return fit_vocab_and_labels(train, (t for ex in train for t in ex.target), self.min_freq)

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        fitted = self.fitted
        assert fitted is not None
        x = encode_tokens(fitted, example.inputs)  # (T,)
        if not labeled or example.target is None:
            return x, torch.full_like(x, IGNORE_INDEX)
        tags = LabelMap(fitted["labels"])
        ids = []
        for tag in example.target:
            if tag not in tags:
                raise unknown_label(example.source, tag, tags.names)
            ids.append(tags.index[tag])
        return x, torch.tensor(ids, dtype=torch.long)

    def info_from_fitted(self) -> dict[str, Any]:
        fitted = self.fitted
        assert fitted is not None
        info = vocab_and_labels_info(fitted)
        return {**info, "num_tags": info["num_classes"], "scheme": self.scheme}

    def decode_inputs(self, example: RawExample) -> list[str]:  # type: ignore[override]
        return list(example.inputs)


class CoNLLDataModule(TaggingDataModule):
    """Tagged sentences from CoNLL files.

    Args:
        delimiter: field separator (tab by default; ``None``: any whitespace).
        num_fields: fields per line; token first, tag last.
        **kwargs: ``scheme``/``lowercase``/``min_freq`` and the paths, split fractions and
            loader settings of :class:`SequenceDataModule`.
    """

    def __init__(self, delimiter: str | None = "\t", num_fields: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.delimiter = delimiter
        self.num_fields = num_fields

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        return read_conll(
            path,
            self.scheme,
            self.delimiter,
            self.num_fields,
            self.lowercase,
            labeled=labeled,
            encoding=self.encoding,
        )
