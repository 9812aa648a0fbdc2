"""File readers: CSV/TSV sequences and texts (``label<TAB>text`` lines or CSV columns); tagged
files (CoNLL columns, ``word/TAG`` lines) are read by :mod:`rnnkit.data.tagged_files`.

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
import re
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
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

#: header names (lowercased) of columns that index rows instead of measuring anything: never
#: features unless listed in ``feature_columns``
INDEX_COLUMNS = frozenset(
    {"id", "index", "idx", "obs", "sequence_id", "series_id", "seq_id", "sample_id"}
    | {"time", "t", "step", "time_step", "timestep", "timestamp", "date", "datetime", "frame"}
)

#: ``tokenizer="word"``: runs of letters/digits, and every other non-space character alone
WORD_TOKENS = re.compile(r"\w+|[^\w\s]")
TOKENIZERS = ("whitespace", "word", "char")


@dataclass
class RawExample:
    """One sequence before encoding.

    Attributes:
        inputs: a list of tokens (``list[str]``) or of feature rows (``list[list[float]]``, or
            a ``(T, F)`` float tensor where a generator makes the rows).
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


def canonical_label(text: str) -> str:
    """A class label as one spelling: ``1``, ``1.0``, ``01`` and ``+1`` are all ``"1"``.

    Numbers are written as integers when integral and as Python's shortest float otherwise
    (``"2.50"`` -> ``"2.5"``); any other label is kept as written (stripped).
    """
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return str(int(value)) if value.is_integer() else repr(value)


def tokenize(text: str, tokenizer: str, lowercase: bool) -> list[str]:
    """``text`` as tokens: ``whitespace`` (split on spaces and newlines), ``word`` (words and
    punctuation marks: ``"good,bad"`` -> ``good , bad``) or ``char`` (every character)."""
    if lowercase:
        text = text.lower()
    if tokenizer == "char":
        return list(" ".join(text.split()))  # runs of spaces and newlines are one space
    if tokenizer == "word":
        return WORD_TOKENS.findall(text)
    return text.split()


def check_tokenizer(tokenizer: str) -> None:
    if tokenizer not in TOKENIZERS:
        raise ConfigError(f"data.tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")


def cut_into_steps(
    cells: list[float], step_size: int, stride: int | None, pad_last_step: bool, where: str
) -> list[list[float]]:
    """The steps of a wide row: windows of ``step_size`` cells, ``stride`` apart.

    ``stride=None`` is ``step_size`` (steps side by side). A last window that runs past the
    row is an error unless ``pad_last_step``, which fills it by repeating the row's last cell
    (no artificial jump to zero), so a series of any length, a prime one too, can be cut.
    """
    stride = stride or step_size
    n = len(cells)
    starts = list(range(0, max(n - step_size, 0) + 1, stride))
    covered = starts[-1] + step_size if starts else 0
    if covered < n or n < step_size:
        if not pad_last_step:
            raise DataFormatError(
                f"{where}: {n} feature cells do not split into steps of step_size="
                f"{step_size} (stride {stride}); set data.pad_last_step=true or a "
                "data.step_stride that fits"
            )
        if covered < n or not starts:
            starts.append(starts[-1] + stride if starts else 0)
        cells = cells + [cells[-1]] * (starts[-1] + step_size - n)
    return [cells[i : i + step_size] for i in starts]


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
    step_stride: int | None = None,
    pad_last_step: bool = False,
) -> list[RawExample]:
    """Read sequences of feature vectors from a CSV/TSV file.

    Two layouts:
        - ``sequence_column=None`` (wide): one row per sequence; the feature cells, in order,
          are cut into steps of ``step_size`` features (digits 8x8: 64 cells, ``step_size=8``),
          ``step_stride`` apart (default: side by side), the last one padded on request
          (:func:`cut_into_steps`).
        - ``sequence_column`` set (long): one row per step; the rows with the same id form a
          sequence, wherever they are in the file (sequences keep the order of their first
          row); the label must be the same on all its rows. The steps are in file order, or
          ordered by ``step_column`` (numbers, each once per sequence) when it is given.

    Args:
        path: the file (``.gz`` allowed).
        label_column: name or index of the label column (``None``: no labels).
        feature_columns: names or indices of the features (default: every other column but
            those named like an index or a time, :data:`INDEX_COLUMNS`); the columns used are
            logged.
        regression: parse labels as finite floats instead of keeping them as names (class
            names that are numbers get one spelling: :func:`canonical_label`).
        labeled: when false, the label column may be absent (prediction input): a row one
            column short of the header/first row (or of ``num_columns``) has no label, and so
            has a header that does not name the label column.
        num_columns: columns a labelled row has (the training file's), when known.
        step_column: name or index of the time-step column (long layout only).
        encoding: the file's text encoding (a UTF-8 byte-order mark is dropped).
        step_stride, pad_last_step: how a wide row is cut (:func:`cut_into_steps`).
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
            feat_idx = _feature_columns(
                path, names, width, feature_columns, (label_idx, seq_idx, step_idx)
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
            target = (
                parse_float(raw, where, _column_name(label_idx, names))
                if regression
                else canonical_label(raw)
            )
        if seq_idx is None:
            steps = cut_into_steps(features, step_size, step_stride, pad_last_step, where)
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
    return examples


def _feature_columns(
    path: Path,
    names: list[str] | None,
    width: int,
    feature_columns: list[int | str] | None,
    roles: tuple[int | None, int | None, int | None],
) -> list[int]:
    """Indices of the feature columns, logged with the role of every other column.

    Default: every column but the label, sequence-id and step columns and any column whose
    header name says it indexes rows (:data:`INDEX_COLUMNS`: ``id``, ``time``, ``step``, ...).
    """
    label_idx, seq_idx, step_idx = roles
    if feature_columns is not None:
        feat_idx = [_resolve_column(c, names, width, path) for c in feature_columns]
        skipped: list[int] = []
    else:
        others = [i for i in range(width) if i not in roles]
        skipped = [i for i in others if names and names[i].lower() in INDEX_COLUMNS]
        feat_idx = [i for i in others if i not in skipped]
    if not feat_idx:
        raise DataFormatError(f"{path}: no feature columns left")
    shown = [_column_name(i, names) for i in feat_idx]
    parts = [f"{len(feat_idx)} features {', '.join(shown[:8])}{', ...' if len(shown) > 8 else ''}"]
    for role, index in (("label", label_idx), ("sequence id", seq_idx), ("step", step_idx)):
        if index is not None:
            parts.append(f"{role} {_column_name(index, names)}")
    if skipped:
        parts.append(
            f"not used (index/time columns): {', '.join(_column_name(i, names) for i in skipped)}"
        )
    log.info(f"{path}: {'; '.join(parts)}")
    return feat_idx


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


def read_text_lines(
    path: str | Path,
    tokenizer: str = "whitespace",
    lowercase: bool = False,
    labeled: bool = True,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read ``label<TAB>text`` lines (``text`` alone when ``labeled=False`` and no tab).

    Args:
        tokenizer: ``"whitespace"``, ``"word"`` or ``"char"`` (:func:`tokenize`).
        encoding: the file's text encoding (a UTF-8 byte-order mark is dropped).
    """
    check_tokenizer(tokenizer)
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
                label = canonical_label(label)
                if not label:
                    raise DataFormatError(f"{where}: empty label before the tab")
            elif labeled:
                raise DataFormatError(f"{where}: expected 'label<TAB>text', found no tab")
            else:
                label, text = None, line
            tokens = tokenize(text, tokenizer, lowercase)
            if not tokens:
                raise SequenceLengthError(f"{where}: the text is empty")
            examples.append(RawExample(tokens, label, where))
    if not examples:
        raise EmptyDataError(f"{path}: no data lines")
    return examples


def read_csv_texts(
    path: str | Path,
    label_column: int | str,
    text_column: int | str,
    tokenizer: str = "whitespace",
    lowercase: bool = False,
    header: bool = False,
    delimiter: str | None = None,
    labeled: bool = True,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read labelled texts from the columns of a CSV/TSV file (quoted fields may span lines).

    Every record must have the first record's number of fields (the header's, with
    ``header``). Labels get one spelling (:func:`canonical_label`: ``1`` and ``1.0`` are one
    class); a record's source is the line it starts on.

    Args:
        label_column, text_column: names (with ``header``) or indices of the two columns.
        header: the first record names the columns.
        delimiter: ``None`` infers tab for ``.tsv`` and comma otherwise.
        labeled: when false, a record may lack the label column (prediction input).
    """
    check_tokenizer(tokenizer)
    path = Path(path)
    reader = csv.reader(open_text(path, encoding), delimiter=infer_delimiter(path, delimiter))
    names: list[str] | None = None
    width = label_idx = text_idx = None
    examples, start = [], 1
    try:
        for row in reader:
            where, start = f"{path}:{start}", reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header and names is None:
                names = [n.strip() for n in row]
                continue
            if width is None:
                width = len(names) if names else len(row)
                label_idx = _resolve_column(label_column, names, width, path)
                text_idx = _resolve_column(text_column, names, width, path)
            has_label = len(row) == width
            if not has_label and not (not labeled and len(row) == 1):
                raise DataFormatError(f"{where}: expected {width} fields, got {len(row)}")
            text = row[text_idx] if has_label else row[0]
            tokens = tokenize(text, tokenizer, lowercase)
            if not tokens:
                raise SequenceLengthError(f"{where}: the text is empty")
            label = canonical_label(row[label_idx]) if has_label else None
            if labeled and not label:
                raise DataFormatError(f"{where}: the label (column {label_column!r}) is empty")
            examples.append(RawExample(tokens, label, where))
    except csv.Error as exc:
        raise DataFormatError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    if not examples:
        raise EmptyDataError(f"{path}: no data rows")
    return examples
