"""Source/target pairs for seq2seq: delimited files, vocabularies, padded batches.

Batches are ``(src, src_lengths, tgt, tgt_lengths, copy)``: ``src (B, S)`` source token ids,
``tgt (B, T)`` target ids framed as ``<bos> y_1 .. y_n <eos>`` (so ``T = n + 2`` for the longest
target), both padded with ``<pad>`` and batch-first, lengths ``(B,)`` CPU long tensors, and
``copy`` both sides in the per-example extended vocabulary a copy model predicts over
(:mod:`rnnkit.data.extended_vocab`). The decoder reads ``tgt[:, :-1]`` and predicts
``tgt[:, 1:]``.

Two vocabularies (source and target), fitted on the training split only, share the special
indices ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3 and are stored as plain token lists
in ``state_dict()`` (hence in every checkpoint).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from rnnkit.data.base import SequenceDataModule
from rnnkit.data.collate import pad_sequences
from rnnkit.data.extended_vocab import ExtendedIds, collate_extended, extend
from rnnkit.data.readers import RawExample, _resolve_column, open_text
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import ConfigError, DataFormatError, EmptyDataError

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
    source_column: int | str = 0,
    target_column: int | str = 1,
    delimiter: str = "\t",
    quoted: bool = False,
    header: bool = False,
) -> list[RawExample]:
    """Read pairs from a delimited file into examples (``inputs`` source, ``target`` tokens).

    The default is ``source<TAB>target`` lines. Other layouts choose the columns (by index, or
    by name with ``header=True``), the ``delimiter`` and CSV quoting (``quoted=True``:
    double-quoted fields as RFC 4180 writes them; a field may then hold the delimiter or a
    line break). Every row has as many fields as the header or the first row. Blank lines are
    skipped. With ``labeled=False`` (prediction input) a row needs the source column only; a
    target column present is still read.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError (:class:`~rnnkit.errors.DataFormatError`): ``path:line:`` a row with another
            field count than the first (``found no tab`` for a one-field line of a
            ``source<TAB>target`` file), a column that does not exist, an empty source or
            target.
        ValueError (:class:`~rnnkit.errors.EmptyDataError`): the file holds no pairs.
    """
    for name in (source_tokenizer, target_tokenizer):
        tokenize("", name)  # checks the name
    path = Path(path)
    rows = _rows(path, delimiter, quoted, encoding)
    names = None
    if header:
        _, names = next(rows, (0, None))
        if names is None:
            raise EmptyDataError("no header row", path=path)
        names = [n.strip() for n in names]
    examples: list[RawExample] = []
    width = len(names) if names else None
    for number, fields in rows:
        if width is None:
            width = len(fields)
        if labeled and len(fields) != width:
            raise DataFormatError(
                _width_message(len(fields), width, delimiter), path=path, line=number
            )
        src_at = _resolve_column(source_column, names, len(fields), path)
        source = tokenize(fields[src_at], source_tokenizer)
        if not source:
            raise DataFormatError(
                f"the source (column {source_column!r}) is empty", path=path, line=number
            )
        target = None
        if labeled or _has_column(target_column, names, len(fields)):
            tgt_at = _resolve_column(target_column, names, len(fields), path)
            target = tokenize(fields[tgt_at], target_tokenizer)
            if not target:
                raise DataFormatError(
                    f"the target (column {target_column!r}) is empty", path=path, line=number
                )
        examples.append(RawExample(source, target, f"{path}:{number}"))
    if not examples:
        raise EmptyDataError("no pairs (only blank lines)", path=path)
    return examples


def _rows(
    path: Path, delimiter: str, quoted: bool, encoding: str
) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank row (the line a quoted row starts on)."""
    with open_text(path, encoding) as handle:
        if quoted:
            reader = csv.reader(handle, delimiter=delimiter)
            start = 1
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield start, row
                start = reader.line_num + 1
            return
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line.split(delimiter)


def _has_column(column: int | str, names: list[str] | None, width: int) -> bool:
    """Whether a row of ``width`` fields has ``column`` (prediction rows may lack the target)."""
    if names is not None and str(column) in names:
        return names.index(str(column)) < width
    return str(column).lstrip("-").isdigit() and -width <= int(column) < width


def _width_message(found: int, width: int, delimiter: str) -> str:
    if delimiter == "\t" and width == 2 and found == 1:
        return "expected 'source<TAB>target', found no tab"
    return f"{found} fields, expected {width} (as the first row)"


class PairTarget(NamedTuple):
    """The target side of one encoded pair: ids (n + 2,) framed ``<bos> y .. <eos>`` (empty
    when unlabelled) and the pair in the copy numbering (:mod:`rnnkit.data.extended_vocab`)."""

    ids: Tensor
    extended: ExtendedIds


class PairCollate:
    """Collate ``(src, PairTarget)`` examples into ``(src, src_lengths, tgt, tgt_lengths, copy)``.

    ``copy`` is a :class:`~rnnkit.data.extended_vocab.CopyBatch` (the source and target ids in
    the per-example extended vocabulary); unlabelled examples (prediction) carry an empty
    target, so their ``tgt_lengths`` are 0.
    """

    def __init__(self, pad_index: int = 0) -> None:
        self.pad_index = pad_index

    def __call__(self, batch: Sequence[tuple[Tensor, PairTarget]]) -> tuple:
        srcs, targets = zip(*batch, strict=True)
        src, src_lengths = pad_sequences(srcs, self.pad_index)  # (B, S), (B,)
        tgt, tgt_lengths = pad_sequences([t.ids for t in targets], self.pad_index)  # (B, T)
        copy = collate_extended([t.extended for t in targets], self.pad_index)
        return src, src_lengths, tgt, tgt_lengths, copy


class PairsDataModule(SequenceDataModule):
    """Translation-style pairs: one source sequence in, one target sequence out, unaligned.

    Reads ``source<TAB>target`` files (see :func:`read_pairs`); subclasses may instead
    :meth:`generate` pairs (:class:`rnnkit.data.transduction.TransductionDataModule`).

    Args:
        source_tokenizer, target_tokenizer: ``"char"`` or ``"whitespace"``.
        min_freq: tokens seen fewer times in training become ``<unk>``.
        source_column, target_column, delimiter, quoted, header: the layout of every file
            (training, validation, test, prediction), as :func:`read_pairs` reads it.
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
        source_column: int | str = 0,
        target_column: int | str = 1,
        delimiter: str = "\t",
        quoted: bool = False,
        header: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name in (source_tokenizer, target_tokenizer):
            tokenize("", name)
        for key, column in (("source_column", source_column), ("target_column", target_column)):
            if not header and not str(column).lstrip("-").isdigit():
                raise ConfigError(f"data.{key}={column!r} is a name, which needs data.header=true")
        if len(delimiter) != 1:
            raise ConfigError(f"data.delimiter must be one character, got {delimiter!r}")
        self.save_hyperparameters()
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.min_freq = min_freq
        self.layout = dict(
            source_column=source_column,
            target_column=target_column,
            delimiter=delimiter,
            quoted=quoted,
            header=header,
        )

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        return read_pairs(
            path,
            self.source_tokenizer,
            self.target_tokenizer,
            labeled,
            self.encoding,
            **self.layout,
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

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, PairTarget]:
        source, target = self._vocabs
        src = torch.tensor(source.encode(example.inputs), dtype=torch.long)  # (S,)
        extended = extend(example.inputs, example.target, target)
        if example.target is None:
            return src, PairTarget(torch.empty(0, dtype=torch.long), extended)
        tgt = target.encode(example.target, bos=True, eos=True)
        return src, PairTarget(torch.tensor(tgt, dtype=torch.long), extended)  # (n + 2,)

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
