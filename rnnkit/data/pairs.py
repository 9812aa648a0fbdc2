"""Source/target pairs for seq2seq: ``source<TAB>target`` files, vocabularies, padded batches.

Batches are ``(src, src_lengths, tgt, tgt_lengths)``: ``src (B, S)`` source token ids,
``tgt (B, T)`` target ids framed as ``<bos> y_1 .. y_n <eos>`` (so ``T = n + 2`` for the longest
target), both padded with ``<pad>`` and batch-first, lengths ``(B,)`` CPU long tensors. The
decoder reads ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``.

Two vocabularies (source and target), fitted on the training split only, share the special
indices ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3 and are stored as plain token lists
in ``state_dict()`` (hence in every checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import SequenceDataModule
from rnnkit.data.collate import pad_sequences
from rnnkit.data.readers import RawExample, open_text
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import DataFormatError, EmptyDataError

TOKENIZERS = ("char", "whitespace")


def tokenize(text: str, tokenizer: str) -> list[str]:
    """``"char"``: every character is a token; ``"whitespace"``: split on runs of spaces."""
    if tokenizer == "char":
        return list(text.strip())
    if tokenizer == "whitespace":
        return text.split()
    raise ValueError(f"tokenizer must be one of {list(TOKENIZERS)}, got {tokenizer!r}")


def read_pairs(
    path: str | Path,
    source_tokenizer: str = "char",
    target_tokenizer: str = "char",
    labeled: bool = True,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read ``source<TAB>target`` lines into examples (``inputs`` source, ``target`` tokens).

    Blank lines are skipped. With ``labeled=False`` (prediction input) a line may be a source
    alone; a target after the tab is still read.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError (:class:`~rnnkit.errors.DataFormatError`): ``path:line:`` a line without a
            tab, with more than one tab, or with an empty source or target.
        ValueError (:class:`~rnnkit.errors.EmptyDataError`): the file holds no pairs.
    """
    for name in (source_tokenizer, target_tokenizer):
        tokenize("", name)  # checks the name
    path = Path(path)
    examples = []
    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) == 1 and labeled:
                raise DataFormatError(
                    "expected 'source<TAB>target', found no tab", path=path, line=number
                )
            if len(fields) > 2:
                raise DataFormatError(
                    f"expected 'source<TAB>target', found {len(fields) - 1} tabs",
                    path=path,
                    line=number,
                )
            source = tokenize(fields[0], source_tokenizer)
            if not source:
                raise DataFormatError(
                    "the source (before the tab) is empty", path=path, line=number
                )
            target = tokenize(fields[1], target_tokenizer) if len(fields) == 2 else None
            if target is not None and not target:
                raise DataFormatError(
                    "the target (after the tab) is empty", path=path, line=number
                )
            examples.append(RawExample(source, target, f"{path}:{number}"))
    if not examples:
        raise EmptyDataError("no 'source<TAB>target' lines (only blank lines)", path=path)
    return examples


class PairCollate:
    """Collate ``(src, tgt)`` id tensors into ``(src, src_lengths, tgt, tgt_lengths)``.

    Unlabelled examples (prediction) carry an empty target; their ``tgt_lengths`` are 0.
    """

    def __init__(self, pad_index: int = 0) -> None:
        self.pad_index = pad_index

    def __call__(self, batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, ...]:
        srcs, tgts = zip(*batch, strict=True)
        src, src_lengths = pad_sequences(srcs, self.pad_index)  # (B, S), (B,)
        tgt, tgt_lengths = pad_sequences(tgts, self.pad_index)  # (B, T), (B,)
        return src, src_lengths, tgt, tgt_lengths


class PairsDataModule(SequenceDataModule):
    """Translation-style pairs: one source sequence in, one target sequence out, unaligned.

    Reads ``source<TAB>target`` files (see :func:`read_pairs`); subclasses may instead
    :meth:`generate` pairs (:class:`rnnkit.data.transduction.TransductionDataModule`).

    Args:
        source_tokenizer, target_tokenizer: ``"char"`` or ``"whitespace"``.
        min_freq: tokens seen fewer times in training become ``<unk>``.
        **kwargs: paths (``train_path``, ``val_path``, ``test_path``, ``predict_path``), split
            fractions, ``batch_size``, ``bucket``, ``seed`` ... of :class:`SequenceDataModule`;
            ``max_length`` bounds the source length.

    ``info`` (after ``setup``): ``src_vocab_size``, ``tgt_vocab_size``, ``pad_index``,
    ``bos_index``, ``eos_index``, ``source_vocab`` and ``target_vocab`` (token lists in index
    order), ``separator`` and ``source_separator`` (``""`` for characters, ``" "`` for words),
    for the model and the task.
    """

    def __init__(
        self,
        source_tokenizer: str = "char",
        target_tokenizer: str = "char",
        min_freq: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name in (source_tokenizer, target_tokenizer):
            tokenize("", name)
        self.save_hyperparameters()
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.min_freq = min_freq

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        return read_pairs(
            path, self.source_tokenizer, self.target_tokenizer, labeled, self.encoding
        )

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        source = Vocabulary.build((ex.inputs for ex in train), self.min_freq)
        target = Vocabulary.build((ex.target for ex in train), self.min_freq)
        return {"source": source.state_dict(), "target": target.state_dict()}

    @property
    def source_vocab(self) -> Vocabulary:
        return Vocabulary.from_state_dict(self._fitted()["source"])

    @property
    def target_vocab(self) -> Vocabulary:
        return Vocabulary.from_state_dict(self._fitted()["target"])

    def _fitted(self) -> dict[str, Any]:
        if self.fitted is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before using vocabularies")
        return self.fitted

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        src = torch.tensor(self._vocabs[0].encode(example.inputs), dtype=torch.long)  # (S,)
        if example.target is None:
            return src, torch.empty(0, dtype=torch.long)
        tgt = self._vocabs[1].encode(example.target, bos=True, eos=True)
        return src, torch.tensor(tgt, dtype=torch.long)  # (n + 2,)

    @property
    def _vocabs(self) -> tuple[Vocabulary, Vocabulary]:
        # rebuilt only when the fitted state changes (encode runs once per example)
        if getattr(self, "_vocabs_of", None) is not self.fitted:
            self._vocab_cache = (self.source_vocab, self.target_vocab)
            self._vocabs_of = self.fitted  # a reference, so the identity check stays valid
        return self._vocab_cache

    def info_from_fitted(self) -> dict[str, Any]:
        source, target = self.source_vocab, self.target_vocab
        return {
            "src_vocab_size": len(source),
            "tgt_vocab_size": len(target),
            "pad_index": target.pad_index,
            "bos_index": target.bos_index,
            "eos_index": target.eos_index,
            "source_vocab": list(source.itos),
            "target_vocab": list(target.itos),
            "separator": "" if self.target_tokenizer == "char" else " ",
            "source_separator": "" if self.source_tokenizer == "char" else " ",
        }

    def collate(self) -> PairCollate:
        return PairCollate(pad_index=Vocabulary.pad_index)

    def decode_inputs(self, example: RawExample) -> str:
        return ("" if self.source_tokenizer == "char" else " ").join(example.inputs)
