"""Tagged sentences (one tag per token): plain tag sets (POS) and span schemes (BIO, BIOES).

The DataModule fits, on the training split only, the word vocabulary (``min_freq``), the tag
set and its scheme (``auto``: detected from the training tags), and the character table of the
character features; the pretrained vectors (``vectors``) are looked up for that vocabulary.

Inputs per sentence: word ids ``(T,)``, or with ``char_features`` ``(T, 1 + W)``: the word id
then the ids of the word's first ``ceil(W/2)`` and last ``floor(W/2)`` characters when it is
longer than ``W = max_word_length``, its characters padded with 0 otherwise. Characters keep
their case when ``lowercase`` lowers the words (capitals are a strong cue for names and nouns).

A tag that the evaluation data has but the training split had not is no abort: it gets an id
past the predictable ones (``info["label_names"]`` lists it after the ``num_tags`` training
tags), so it is scored as an error, with one warning per tag.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import (
    SequenceDataModule,
    fit_vocab_and_labels,
    vocab_and_labels_info,
)
from rnnkit.data.collate import IGNORE_INDEX
from rnnkit.data.readers import RawExample
from rnnkit.data.tag_schemes import check_tag, detect_scheme, normalize_scheme
from rnnkit.data.tagged_files import FORMATS, read_tagged, token_line
from rnnkit.data.vectors import vectors_for
from rnnkit.data.vocab import SPECIALS, LabelMap, Vocabulary
from rnnkit.errors import ConfigError, EmptyDataError

log = logging.getLogger(__name__)

SPLITS = ("random", "interleaved", "ordered")
CHAR_PAD, CHAR_UNK = 0, 1


class TaggingDataModule(SequenceDataModule):
    """Shared encoding of token sequences with one tag per token.

    Args:
        scheme: ``auto`` (from the training tags), ``plain``, ``bio`` (IOB2) or ``bioes``;
            training tags are checked against a span scheme.
        lowercase: lowercase words for the vocabulary (characters keep their case).
        min_freq: words seen fewer times in training become ``<unk>``.
        char_features: also give each word's character ids (for a character CNN or BiLSTM).
        max_word_length: W, characters kept per word (its first and last ones).
        vectors: a pretrained vectors file (GloVe ``.txt``, ``.vec``, ``.gz``); its vectors for
            the vocabulary reach the model through ``info["pretrained_embeddings"]``.
        split: how a file without ``test_path``/``val_path`` is split: ``random`` (seeded),
            ``interleaved`` (every ``round(1 / test_fraction)``-th sentence, counted from 1, is
            test, and so on for validation among the rest), ``ordered`` (the last
            ``test_fraction`` is test, the ``val_fraction`` before it validation).
    """

    per_step_targets = True

    def __init__(
        self,
        scheme: str = "auto",
        lowercase: bool = False,
        min_freq: int = 1,
        char_features: bool = False,
        max_word_length: int = 20,
        vectors: str | None = None,
        split: str = "random",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scheme = normalize_scheme(scheme, allow_auto=True, key="data.scheme")
        if split not in SPLITS:
            raise ConfigError(f"data.split={split!r} is not a split; expected one of {SPLITS}")
        if max_word_length < 1:
            raise ConfigError(f"data.max_word_length must be >= 1, got {max_word_length}")
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.char_features = char_features
        self.max_word_length = max_word_length
        self.vectors = vectors
        self.split = split
        self.unseen_tags: dict[str, int] = {}  # evaluation tags not in training -> their ids
        self.pretrained: tuple[Tensor, Tensor] | None = None  # (table, found) of this fit

    # ----- splitting --------------------------------------------------------------------------
    def _raw_splits(self) -> tuple[list[RawExample], list[RawExample], list[RawExample]]:
        if self.split == "random" or self.train_path is None:
            return super()._raw_splits()
        data = self.read(self.train_path)
        test, rest = self._cut(data, self.test_fraction if not self.test_path else 0.0)
        val, train = self._cut(rest, self.val_fraction if not self.val_path else 0.0)
        val = self.read(self.val_path) if self.val_path else val
        test = self.read(self.test_path) if self.test_path else test
        if not train or not test:
            raise EmptyDataError(
                f"{type(self).__name__}: {len(data)} sentences leave an empty "
                f"{'training' if not train else 'test'} split (split={self.split})"
            )
        return train, val, test

    def _cut(self, items: list[RawExample], fraction: float) -> tuple[list, list]:
        """``(taken, kept)``: ``fraction`` of ``items`` by ``self.split``."""
        if fraction <= 0:
            return [], list(items)
        if self.split == "interleaved":
            k = round(1 / fraction)
            return items[k - 1 :: k], [x for i, x in enumerate(items) if i % k != k - 1]
        cut = int(len(items) * (1 - fraction))
        return items[cut:], items[:cut]

    # ----- fitting and encoding ---------------------------------------------------------------
    def token_where(self, example: RawExample, index: int) -> str:
        """Where token ``index`` of ``example`` is, for messages."""
        return example.source

    def words(self, example: RawExample) -> list[str]:
        return [w.lower() for w in example.inputs] if self.lowercase else list(example.inputs)

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        tags = [t for ex in train for t in ex.target]
        scheme = detect_scheme(tags) if self.scheme == "auto" else self.scheme
        for ex in train:
            for i, tag in enumerate(ex.target):
                check_tag(tag, scheme, self.token_where(ex, i))
        lowered = [RawExample(self.words(ex), ex.target, ex.source) for ex in train]
        fitted = fit_vocab_and_labels(lowered, tags, self.min_freq)
        fitted["scheme"] = scheme
        if self.char_features:
            counts = Counter(c for ex in train for w in ex.inputs for c in w)
            fitted["chars"] = ["<pad>", "<unk>"] + [c for c, _ in counts.most_common()]
        log.info(f"tags: {len(fitted['labels'])}, scheme {scheme} ({self.scheme} in the config)")
        if self.vectors:
            self.pretrained = vectors_for(self.vectors, fitted["vocab"], first=len(SPECIALS))
        return fitted

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        vocab, tags, _ = self.tables()
        x = torch.tensor(vocab.encode(self.words(example)), dtype=torch.long)  # (T,)
        if self.char_features:
            x = torch.cat([x.unsqueeze(1), self.char_ids(example.inputs)], 1)  # (T, 1 + W)
        if not labeled or example.target is None:
            return x, torch.full((len(example.inputs),), IGNORE_INDEX, dtype=torch.long)
        ids = []
        for i, tag in enumerate(example.target):
            if tag not in tags and tag not in self.unseen_tags:
                self.unseen_tags[tag] = len(tags) + len(self.unseen_tags)
                log.warning(
                    f"{self.token_where(example, i)}: tag {tag!r} was not seen in the training "
                    "split; the model cannot predict it, so every token of it counts as an error"
                )
            ids.append(tags.index[tag] if tag in tags else self.unseen_tags[tag])
        return x, torch.tensor(ids, dtype=torch.long)

    def tables(self) -> tuple[Vocabulary, LabelMap, dict[str, int] | None]:
        """The fitted vocabulary, tag map and character table (built once per fitted state)."""
        fitted = self.fitted
        assert fitted is not None
        if getattr(self, "_tables_of", None) is not fitted:
            chars = {c: i for i, c in enumerate(fitted["chars"])} if "chars" in fitted else None
            vocab = Vocabulary.from_state_dict(fitted["vocab"])
            self._tables = (vocab, LabelMap(fitted["labels"]), chars)
            self._tables_of = fitted
        return self._tables

    def char_ids(self, words: list[str]) -> Tensor:
        """``(T, W)`` character ids of ``words`` (0 pads, 1 is an unknown character)."""
        table = self.tables()[2]
        if table is None:
            raise ConfigError("data.char_features=true, but the fitted state has no characters")
        width = self.max_word_length
        out = torch.full((len(words), width), CHAR_PAD, dtype=torch.long)
        for t, word in enumerate(words):
            if len(word) > width:  # keep the prefix and the suffix
                word = word[: (width + 1) // 2] + word[len(word) - width // 2 :]
            out[t, : len(word)] = torch.tensor([table.get(c, CHAR_UNK) for c in word])
        return out

    def info_from_fitted(self) -> dict[str, Any]:
        fitted = self.fitted
        assert fitted is not None
        info = vocab_and_labels_info(fitted)
        return {
            **info,
            "num_tags": info["num_classes"],
            "label_names": info["label_names"] + list(self.unseen_tags),
            "scheme": fitted.get("scheme", self.scheme),
            "char_vocab_size": len(fitted["chars"]) if "chars" in fitted else None,
            "pretrained_embeddings": self.pretrained,
        }

    def decode_inputs(self, example: RawExample) -> list[str]:  # type: ignore[override]
        return list(example.inputs)


class CoNLLDataModule(TaggingDataModule):
    """Tagged sentences from files: CoNLL columns or ``word/TAG`` lines.

    Args:
        format: ``conll`` (a token a line, a blank line between sentences) or ``slash``
            (a sentence a line of ``word/TAG`` tokens, ``&slash;`` an escaped ``/``).
        delimiter: CoNLL field separator (tab by default; ``None``: any whitespace).
        token_column, tag_column: CoNLL fields of the token (first) and the tag (last).
        num_fields: CoNLL fields every line must have (``None``: any, at least two).
        **kwargs: ``scheme``/``lowercase``/``min_freq``/``char_features``/``vectors``/``split``
            and the paths, split fractions and loader settings of :class:`SequenceDataModule`.
    """

    def __init__(
        self,
        format: str = "conll",
        delimiter: str | None = "\t",
        token_column: int = 0,
        tag_column: int = -1,
        num_fields: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if format not in FORMATS:
            raise ConfigError(f"data.format={format!r} is not a tagged-file format: {FORMATS}")
        self.format = format
        self.delimiter = delimiter
        self.token_column = token_column
        self.tag_column = tag_column
        self.num_fields = num_fields

    def token_where(self, example: RawExample, index: int) -> str:
        return token_line(example, index, self.format)

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        return read_tagged(
            path,
            self.format,
            delimiter=self.delimiter,
            token_column=self.token_column,
            tag_column=self.tag_column,
            num_fields=self.num_fields,
            labeled=labeled,
            encoding=self.encoding,
        )
