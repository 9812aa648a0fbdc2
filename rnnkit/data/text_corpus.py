"""Plain-text corpus for language modelling: a vocabulary from the training split, contiguous
chunks split chronologically into train/val/test.

The default corpus needs no download: Python's standard library ships the Language Reference
topics that ``help()`` shows (``pydoc_data/topics.py``, a dict of about 80 topics, 465k
characters of English prose and code in CPython 3.11). ``path="stdlib:pydoc_topics"`` reads
them, sorted by topic name and joined by blank lines, as one text. Any other ``path`` is a
UTF-8 text file.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.data.readers import read_text
from rnnkit.data.vocab import SPECIALS, VocabStateMixin, Vocabulary
from rnnkit.engine import DataModule
from rnnkit.errors import DataFileNotFoundError, EmptyDataError

PYDOC_TOPICS = "stdlib:pydoc_topics"
LEVELS = ("char", "word")


def read_corpus(path: str) -> str:
    """The text of ``path`` (or of the stdlib's pydoc topics for ``"stdlib:pydoc_topics"``)."""
    if path == PYDOC_TOPICS:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[name] for name in sorted(topics))
    file = Path(path)
    if not file.is_file():
        raise DataFileNotFoundError(file, what=f"text corpus (a UTF-8 file or {PYDOC_TOPICS!r})")
    text = read_text(file)
    if not text.strip():
        raise EmptyDataError("text corpus is empty (only whitespace)", path=file)
    return text


def tokenize(text: str, level: str) -> list[str]:
    """Characters (``"char"``) or whitespace-separated tokens (``"word"``)."""
    if level == "char":
        return list(text)
    if level == "word":
        return text.split()
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless both held-out shares are > 0 and leave some training data."""
    if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
        raise ValueError(
            "val_fraction and test_fraction must be > 0 with a sum < 1, got "
            f"{val_fraction} and {test_fraction}"
        )


def unigram_perplexity(
    train_ids: Sequence[int], eval_ids: Sequence[int], vocab_size: int
) -> float:
    """Perplexity of ``eval_ids`` under add-one smoothed unigram frequencies of ``train_ids``.

    The baseline a sequence model must beat: it knows how often each token occurs, nothing
    about order.
    """
    counts = Counter(train_ids)
    total = len(train_ids) + vocab_size
    nll = -sum(math.log((counts[i] + 1) / total) for i in eval_ids) / len(eval_ids)
    return math.exp(nll)


def make_chunks(ids: Sequence[int], seq_len: int, pad_index: int) -> TensorDataset:
    """Cut ``ids`` into next-token pairs ``x = ids[i : i+L]``, ``y = ids[i+1 : i+L+1]``.

    Chunks do not overlap and every token but the first is a target exactly once; the last
    chunk may be shorter, padded with ``pad_index`` and marked by its length.
    """
    ids_t = torch.tensor(ids, dtype=torch.long)
    n = len(ids) - 1  # targets
    num = math.ceil(n / seq_len)
    x = torch.full((num, seq_len), pad_index, dtype=torch.long)
    y = torch.full((num, seq_len), pad_index, dtype=torch.long)
    lengths = torch.empty(num, dtype=torch.long)
    for k in range(num):
        start, stop = k * seq_len, min((k + 1) * seq_len, n)
        lengths[k] = stop - start
        x[k, : stop - start] = ids_t[start:stop]
        y[k, : stop - start] = ids_t[start + 1 : stop + 1]
    return TensorDataset(x, lengths, y)


class TextCorpusDataModule(VocabStateMixin, DataModule):
    """Next-token batches ``(x (B, L), lengths (B,), y (B, L))`` from one plain-text corpus.

    The token stream is split in order (the first ``1 - val - test`` for training, then
    validation, then test), so no text seen in training leaks into evaluation; the vocabulary
    is fitted on the training split only and tokens first seen later become ``<unk>``. Each
    chunk starts from a fresh recurrent state (no state carried across chunks).

    Args:
        path: UTF-8 text file, or ``"stdlib:pydoc_topics"`` (see the module docstring).
        level: ``"char"`` or ``"word"`` (whitespace tokens; generated text is joined by spaces).
        seq_len: L, tokens per chunk.
        batch_size: chunks per batch.
        val_fraction, test_fraction: shares of the token stream for validation and test.
        min_freq: keep tokens seen at least this often in training.
        max_vocab_size: cap on the vocabulary (specials included).
        lowercase: lower-case the text first.
        prompts: what ``predict_dataloader`` gives the model to continue.
        num_workers: DataLoader workers.

    ``info`` (after :meth:`setup`): ``vocab_size``, ``pad_index``, ``bos_index``, ``eos_index``,
    ``vocab`` (index -> token), ``separator``, ``cond_size`` (0: no conditioning vector) and
    ``unigram_perplexity`` (``{"val", "test"}``).
    """

    #: the validation part is never empty (:func:`check_fractions` refuses 0), see train.py
    has_validation = True

    def __init__(
        self,
        path: str = PYDOC_TOPICS,
        level: str = "char",
        seq_len: int = 64,
        batch_size: int = 32,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        lowercase: bool = False,
        prompts: Sequence[str] = ("The ",),
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        check_fractions(val_fraction, test_fraction)
        if max_vocab_size is not None and max_vocab_size <= len(SPECIALS):
            raise ValueError(
                f"max_vocab_size must exceed the {len(SPECIALS)} special tokens, got "
                f"{max_vocab_size}"
            )
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.save_hyperparameters()
        self.vocab: Vocabulary | None = None
        self.splits: dict[str, list[str]] | None = None
        self.datasets: dict[str, TensorDataset] = {}
        self.info: dict[str, Any] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            hp = self.hparams
            text = read_corpus(hp.path)
            tokens = tokenize(text.lower() if hp.lowercase else text, hp.level)
            n = len(tokens)
            n_val, n_test = int(n * hp.val_fraction), int(n * hp.test_fraction)
            n_train = n - n_val - n_test
            if min(n_train, n_val, n_test) < 2:
                raise EmptyDataError(
                    f"{n} {hp.level} tokens: too few for train/val/test splits of at least 2 "
                    "tokens each",
                    path=hp.path,
                )
            self.splits = {
                "train": tokens[:n_train],
                "val": tokens[n_train : n_train + n_val],
                "test": tokens[n_train + n_val :],
            }
        if self.vocab is None:
            vocab = Vocabulary.build([self.splits["train"]], min_freq=self.hparams.min_freq)
            if self.hparams.max_vocab_size is not None:  # the most frequent, specials included
                vocab = Vocabulary(vocab.itos[len(SPECIALS) : self.hparams.max_vocab_size])
            self.vocab = vocab
        self._encode()

    def _encode(self) -> None:
        """(Re)build the datasets and ``info`` from the splits and the current vocabulary."""
        vocab = self.vocab
        ids = {name: vocab.encode(tokens) for name, tokens in self.splits.items()}
        L = self.hparams.seq_len
        self.datasets = {name: make_chunks(s, L, vocab.pad_index) for name, s in ids.items()}
        self.info = {
            "vocab_size": len(vocab),
            "pad_index": vocab.pad_index,
            "bos_index": vocab.bos_index,
            "eos_index": vocab.eos_index,
            "vocab": list(vocab.itos),
            "separator": "" if self.hparams.level == "char" else " ",
            "cond_size": 0,  # no conditioning vector: a plain language model
            "unigram_perplexity": {
                name: unigram_perplexity(ids["train"], ids[name][1:], len(vocab))
                for name in ("val", "test")
            },
        }

    def encode_prompts(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Right-padded prompt ids ``(B, P)`` and their lengths ``(B,)``."""
        if self.vocab is None:
            raise RuntimeError("TextCorpusDataModule: call setup() before encoding prompts")
        encoded = [self.vocab.encode(tokenize(p, self.hparams.level)) for p in prompts]
        for prompt, ids in zip(prompts, encoded, strict=True):
            if not ids:
                raise ValueError(f"prompt {prompt!r} has no {self.hparams.level} tokens")
        lengths = torch.tensor([len(ids) for ids in encoded])
        x = torch.full((len(encoded), int(lengths.max())), self.vocab.pad_index)
        for i, ids in enumerate(encoded):
            x[i, : len(ids)] = torch.tensor(ids)
        return x, lengths

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        x, lengths = self.encode_prompts(list(self.hparams.prompts))
        return DataLoader(TensorDataset(x, lengths), batch_size=self.hparams.batch_size)

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
        )
