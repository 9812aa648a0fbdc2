"""CoNLL tagging: ``token<TAB>tag`` lines, a blank line between sentences (BIO or BIOES)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import SequenceDataModule, unknown_label
from rnnkit.data.collate import IGNORE_INDEX
from rnnkit.data.readers import RawExample, read_conll
from rnnkit.data.vocab import LabelMap, Vocabulary


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
        vocab = Vocabulary.build((ex.inputs for ex in train), self.min_freq)
        tags = LabelMap.build(t for ex in train for t in ex.target)
        return {"vocab": vocab.state_dict(), "labels": tags.names}

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        fitted = self.fitted
        assert fitted is not None
        vocab = Vocabulary.from_state_dict(fitted["vocab"])
        x = torch.tensor(vocab.encode(example.inputs), dtype=torch.long)  # (T,)
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
        vocab = Vocabulary.from_state_dict(fitted["vocab"])
        return {
            "vocab_size": len(vocab),
            "pad_index": vocab.pad_index,
            "num_classes": len(fitted["labels"]),
            "num_tags": len(fitted["labels"]),
            "label_names": fitted["labels"],
            "output_size": len(fitted["labels"]),
            "scheme": self.scheme,
        }

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
            path, self.scheme, self.delimiter, self.num_fields, self.lowercase, labeled=labeled
        )
