"""File readers: CSV/TSV sequences and ``label<TAB>text`` lines (tagged files: ``tagged_files``).

Every reader returns :class:`RawExample` objects that remember where they came from
(``file:line``), and every problem in a file is a ``ValueError`` (``FileNotFoundError`` for a
missing file) whose message starts with ``path:line:`` and says what was expected.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnkit.errors import (
    ConfigError,
    DataError,
    DataFileNotFoundError,
    DataFormatError,
    EmptyDataError,
    NonFiniteValueError,
    SequenceLengthError,
)


@dataclass
class RawExample:
    """One sequence before encoding.

    Attributes:
        inputs: a list of tokens (``list[str]``) or of feature rows (``list[list[float]]``).
        target: a label name, a float (regression), a list of tags, or ``None`` (unlabelled).
        source: ``"path:line"`` of the sequence's first line, for error messages.
    """

    inputs: list[Any]
    target: Any
    source: str


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The decoded text of a file (``.gz`` transparently), or one clear :class:`DataError`.

    A UTF-8 byte-order mark is dropped (``utf-8-sig``: editors on Windows write one, and it
    must not become part of the first label, token or column name). The file is read whole,
    so pipes (``<(zcat x.gz)``) work as well as regular files.

    Raises:
        DataFileNotFoundError: no such file. DataError: a folder, unreadable, a broken
        ``.gz``, bytes that are not ``encoding`` (naming the line and byte offset).
        EmptyDataError: the file is empty.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileNotFoundError(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except PermissionError:
        raise DataError(f"{path}: cannot read the file (permission denied)") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: not a valid .gz file or truncated ({exc}); expected gzip-compressed text"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise EmptyDataError(f"{path}: file is empty")
    try:
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(
            f"{path}:{line}: byte 0x{data[exc.start]:02x} at byte offset {exc.start} is not "
            f"valid {encoding}; set the file's encoding with data.encoding=... (for example "
            "latin-1 or cp1252), or re-encode the file as UTF-8"
        ) from None
    except LookupError:
        raise ConfigError(f"data.encoding={encoding!r} is not a known text encoding") from None


def open_text(path: str | Path, encoding: str = "utf-8") -> io.StringIO:
    """:func:`read_text` as a file object (lines keep their ``\\n``)."""
    return io.StringIO(read_text(path, encoding), newline=None)


def infer_delimiter(path: str | Path, delimiter: str | None) -> str:
    """``delimiter`` if given, else tab for ``.tsv``/``.tsv.gz`` and comma otherwise."""
    if delimiter:
        return delimiter
    name = str(path).lower().removesuffix(".gz")
    return "\t" if name.endswith((".tsv", ".tab")) else ","


def parse_float(cell: str, where: str, column: str) -> float:
    """A finite float from ``cell``, else a ``ValueError`` naming ``where`` and ``column``."""
    try:
        value = float(cell)
    except ValueError:
        raise DataFormatError(f"{where}: column {column} is not a number: {cell!r}") from None
    if not math.isfinite(value):
        raise NonFiniteValueError(
            f"{where}: column {column} is {cell.strip()} (NaN/inf are not allowed)"
        )
    return value


def _resolve_column(spec: int | str, header: list[str] | None, width: int, path: Path) -> int:
    if isinstance(spec, int) or (isinstance(spec, str) and spec.lstrip("-").isdigit()):
        index = int(spec)
        if not -width <= index < width:
            raise DataFormatError(
                f"{path}: column {index} does not exist (rows have {width} columns)"
            )
        return index % width
    if header is None:
        raise ConfigError(f"{path}: column {spec!r} given by name but header=false")
    if spec not in header:
        raise DataFormatError(f"{path}: missing column {spec!r} (header has {header})")
    return header.index(spec)


def _column_name(index: int, header: list[str] | None) -> str:
    return repr(header[index]) if header else f"#{index}"


def _rows(path: Path, delimiter: str, encoding: str) -> Iterator[tuple[int, list[str]]]:
    with open_text(path, encoding) as handle:
        for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if row and any(cell.strip() for cell in row):
                yield number, row


def read_csv_sequences(
    path: str | Path,
    label_column: int | str | None,
    sequence_column: int | str | None = None,
    feature_columns: list[int | str] | None = None,
    step_size: int = 1,
    header: bool = True,
    delimiter: str | None = None,
    regression: bool = False,
    labeled: bool = True,
    num_columns: int | None = None,
    step_column: int | str | None = None,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read sequences of feature vectors from a CSV/TSV file.

    Two layouts:
        - ``sequence_column=None`` (wide): one row per sequence; the feature cells, in order,
          are cut into steps of ``step_size`` features (digits 8x8: 64 cells, ``step_size=8``).
        - ``sequence_column`` set (long): one row per step; the rows with the same id form a
          sequence, wherever they are in the file (sequences keep the order of their first
          row); the label must be the same on all its rows. The steps are in file order, or
          ordered by ``step_column`` (numbers, each once per sequence) when it is given.

    Args:
        path: the file (``.gz`` allowed).
        label_column: name or index of the label column (``None``: no labels).
        feature_columns: names or indices of the features (default: every other column).
        regression: parse labels as finite floats instead of keeping them as names.
        labeled: when false, the label column may be absent (prediction input): a row one
            column short of the header/first row (or of ``num_columns``) has no label, and so
            has a header that does not name the label column.
        num_columns: columns a labelled row has (the training file's), when known.
        step_column: name or index of the time-step column (long layout only).
        encoding: the file's text encoding (a UTF-8 byte-order mark is dropped).
    """
    path = Path(path)
    delimiter = infer_delimiter(path, delimiter)
    rows = _rows(path, delimiter, encoding)
    names: list[str] | None = None
    if header:
        try:
            _, names = next(rows)
        except StopIteration:
            raise EmptyDataError(f"{path}: file is empty") from None
        names = [n.strip() for n in names]
        if not labeled and isinstance(label_column, str) and label_column not in names:
            label_column = None  # an unlabelled prediction file: no label column at all
    if step_column is not None and sequence_column is None:
        raise ConfigError(f"{path}: step_column needs sequence_column (the long layout)")
    examples: list[RawExample] = []
    width = len(names) if names else num_columns
    label_idx = seq_idx = step_idx = None
    feat_idx: list[int] = []
    by_id: dict[str, RawExample] = {}
    steps_of: dict[str, list[tuple[float, str]]] = {}
    for number, row in rows:
        where = f"{path}:{number}"
        if width is None:
            width = len(row)
        has_label = label_column is not None
        if not labeled and label_column is not None and len(row) == width - 1:
            has_label = False
        elif len(row) != width:
            raise DataFormatError(f"{where}: expected {width} columns, got {len(row)}")
        if label_idx is None and not feat_idx:
            label_idx, seq_idx, step_idx = (
                _resolve_column(c, names, width, path) if c is not None else None
                for c in (label_column, sequence_column, step_column)
            )
            if feature_columns is not None:
                feat_idx = [_resolve_column(c, names, width, path) for c in feature_columns]
            else:
                feat_idx = [i for i in range(width) if i not in (label_idx, seq_idx, step_idx)]
            if not feat_idx:
                raise DataFormatError(f"{path}: no feature columns left")
            if seq_idx is None and len(feat_idx) % step_size:
                raise DataFormatError(
                    f"{path}: {len(feat_idx)} feature columns do not split into steps of "
                    f"step_size={step_size}"
                )
        if not has_label and label_idx is not None:
            # unlabelled prediction row: the label column is simply absent
            cells = row[:label_idx] + [""] + row[label_idx:]
        else:
            cells = row
        features = [parse_float(cells[i], where, _column_name(i, names)) for i in feat_idx]
        target: Any = None
        if has_label and label_idx is not None:
            raw = cells[label_idx].strip()
            if raw == "":
                raise DataFormatError(
                    f"{where}: label column {_column_name(label_idx, names)} is empty"
                )
            target = parse_float(raw, where, _column_name(label_idx, names)) if regression else raw
        if seq_idx is None:
            steps = [features[i : i + step_size] for i in range(0, len(features), step_size)]
            examples.append(RawExample(steps, target, where))
            continue
        seq_id = cells[seq_idx].strip()
        example = by_id.get(seq_id)
        if example is None:
            example = by_id[seq_id] = RawExample([], target, where)
            examples.append(example)
            steps_of[seq_id] = []
        elif example.target != target:
            raise DataFormatError(
                f"{where}: sequence {seq_id!r} changes label from {example.target!r} "
                f"to {target!r}; the label must be the same on every row of a sequence"
            )
        example.inputs.append(features)
        if step_idx is not None:
            step = parse_float(cells[step_idx], where, _column_name(step_idx, names))
            steps_of[seq_id].append((step, where))
    if not examples:
        raise EmptyDataError(f"{path}: no data rows")
    if step_idx is not None:
        for example, steps in zip(examples, steps_of.values(), strict=True):
            _order_steps(example, steps, _column_name(step_idx, names))
    if not regression and label_column is not None:
        _check_label_spellings(examples)
    return examples


def _order_steps(example: RawExample, steps: list[tuple[float, str]], column: str) -> None:
    """Sort a long-layout sequence's rows by their step number; a repeated step is an error."""
    seen: dict[float, str] = {}
    for step, where in steps:
        if step in seen:
            raise DataFormatError(
                f"{where}: step {step:g} (column {column}) appears twice in the sequence "
                f"starting at {example.source} (first at {seen[step]}); expected each step once"
            )
        seen[step] = where
    order = sorted(range(len(steps)), key=lambda i: steps[i][0])
    example.inputs = [example.inputs[i] for i in order]


def _check_label_spellings(examples: list[RawExample]) -> None:
    """Refuse two spellings of one number as class labels (``1`` and ``1.0``)."""
    first: dict[float, RawExample] = {}
    for example in examples:
        if example.target is None:
            continue
        try:
            value = float(example.target)
        except ValueError:
            continue
        seen = first.setdefault(value, example)
        if seen.target != example.target:
            raise DataFormatError(
                f"{example.source}: label {example.target!r} is the number {seen.target!r} "
                f"(at {seen.source}) written another way; write each class label one way"
            )


def read_text_lines(
    path: str | Path,
    tokenizer: str = "whitespace",
    lowercase: bool = False,
    labeled: bool = True,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read ``label<TAB>text`` lines (``text`` alone when ``labeled=False`` and no tab).

    Args:
        tokenizer: ``"whitespace"`` (split on spaces) or ``"char"`` (every character a token).
        encoding: the file's text encoding (a UTF-8 byte-order mark is dropped).
    """
    if tokenizer not in ("whitespace", "char"):
        raise ConfigError(f"tokenizer must be 'whitespace' or 'char', got {tokenizer!r}")
    path = Path(path)
    examples = []
    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            where = f"{path}:{number}"
            if "\t" in line:
                label, text = line.split("\t", 1)
                label = label.strip()
                if not label:
                    raise DataFormatError(f"{where}: empty label before the tab")
            elif labeled:
                raise DataFormatError(f"{where}: expected 'label<TAB>text', found no tab")
            else:
                label, text = None, line
            if lowercase:
                text = text.lower()
            tokens = list(text.strip()) if tokenizer == "char" else text.split()
            if not tokens:
                raise SequenceLengthError(f"{where}: the text is empty")
            examples.append(RawExample(tokens, label, where))
    if not examples:
        raise EmptyDataError(f"{path}: no data lines")
    return examples
