"""Pretrained word vectors from a text file: GloVe ``.txt``, word2vec/fastText ``.vec`` (gzip too).

A line is a word and its values, split by spaces: ``the 0.418 0.24968 ...``. A ``.vec`` file
starts with a header line ``<count> <width>`` (two integers), which is skipped. Every line must
have the width of the first vector; anything else is one ``DataFormatError`` naming the file and
line. The file is parsed as text (``float`` per value): nothing in it can run code.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from rnnkit.errors import DataError, DataFileNotFoundError, DataFormatError, EmptyDataError

log = logging.getLogger(__name__)


def read_vectors(
    path: str | Path, wanted: set[str] | None = None, encoding: str = "utf-8"
) -> tuple[dict[str, list[float]], int]:
    """``({word: values}, width)`` of the words in ``wanted`` (every word when ``None``).

    The first occurrence of a word wins (files list frequent words first).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFoundError(path, "vectors file")
    opener = gzip.open if path.suffix == ".gz" else open
    found: dict[str, list[float]] = {}
    width = first = None
    try:
        with opener(path, "rt", encoding=encoding, errors="strict") as handle:
            for number, line in enumerate(handle, start=1):
                # split at single spaces only: a word may hold other whitespace (fastText)
                fields = line.rstrip("\r\n").rstrip(" ").split(" ")
                if fields == [""]:
                    continue
                if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    continue  # word2vec/fastText header: <count> <width>
                where = f"{path}:{number}"
                if width is None:
                    width, first = len(fields) - 1, number
                    if width < 1:
                        raise DataFormatError(f"{where}: expected a word and its values")
                elif len(fields) - 1 != width:
                    raise DataFormatError(
                        f"{where}: vector of {len(fields) - 1} values, expected {width} (the "
                        f"width of line {first}); every line must be a word and {width} numbers"
                    )
                word = fields[0]
                if word in found or (wanted is not None and word not in wanted):
                    continue
                found[word] = [_number(cell, where) for cell in fields[1:]]
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not valid {encoding} text ({exc.reason})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the vectors file ({exc})") from None
    if width is None:
        raise EmptyDataError(f"{path}: no vectors")
    return found, width


def _number(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataFormatError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise DataFormatError(f"{where}: {cell!r} is not finite")
    return value


def vectors_for(
    path: str | Path, tokens: Sequence[str], first: int = 0, encoding: str = "utf-8"
) -> tuple[Tensor, Tensor]:
    """A vector per token of ``tokens`` (a vocabulary's ``itos``): ``(table (V, D), found (V,))``.

    A token is looked up as written, then in lower case (GloVe's vocabulary is lower case);
    rows of tokens without a vector (and the first ``first`` rows: ``<pad>``, ``<unk>``, ...)
    are zero and ``found`` is False there. Logs the out-of-vocabulary rate of the vectors.
    """
    wanted = {t for t in tokens[first:]} | {t.lower() for t in tokens[first:]}
    table, width = read_vectors(path, wanted, encoding)
    rows = torch.zeros(len(tokens), width)
    found = torch.zeros(len(tokens), dtype=torch.bool)
    for i, token in enumerate(tokens):
        if i < first:
            continue
        values = table.get(token, table.get(token.lower()))
        if values is not None:
            rows[i] = torch.tensor(values)
            found[i] = True
    words = max(len(tokens) - first, 1)
    log.info(
        f"{path}: vectors of width {width} for {int(found.sum())} of {words} vocabulary words "
        f"(OOV rate {1 - int(found.sum()) / words:.3f})"
    )
    return rows, found
