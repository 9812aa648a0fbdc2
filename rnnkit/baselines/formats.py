"""Readers of the file formats the real datasets of docs/real_data.md come in.

Plain parsing only (``csv``, text lines, ``numpy.load(allow_pickle=False)``): nothing read can
run code. A malformed line raises :class:`rnnkit.errors.DataFormatError` naming file and line.

- ``word/TAG word/TAG ...``, one sentence a line (Pattern's ``tagged-*.txt``, where a slash
  inside a word is written ``&slash;``, kept as written): :func:`read_slash_tagged`;
- CoNLL-like columns, token first and tag last, a blank line between sentences (the Hironsan
  corpus' ``iob_sents.txt``): :func:`read_columns_tagged`;
- quoted CSV rows (Pattern's polarity, spam and word-form files; a BOM is dropped):
  :func:`read_csv_rows`;
- the ``.ts`` format of the UCR/UEA and Monash archives (equal length, no timestamps, no
  missing values): :func:`read_ts`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from rnnkit.errors import DataFormatError


def _lines(path: Path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        yield from enumerate(f, start=1)


def read_slash_tagged(path: str | Path) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of words and of tags; a token splits at its last ``/`` (``1/2/CD``: ``1/2``)."""
    words, tags = [], []
    for number, line in _lines(Path(path)):
        if not line.strip():
            continue
        sentence_words, sentence_tags = [], []
        for token in line.split():
            word, slash, tag = token.rpartition("/")
            if not slash or not word or not tag:
                raise DataFormatError(f"token {token!r} is not word/TAG", path=path, line=number)
            sentence_words.append(word)
            sentence_tags.append(tag)
        words.append(sentence_words)
        tags.append(sentence_tags)
    return words, tags


def read_columns_tagged(
    path: str | Path, delimiter: str = "\t"
) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of tokens (first field) and tags (last field), blank lines between sentences."""
    words, tags, sentence_words, sentence_tags = [], [], [], []
    for number, line in _lines(Path(path)):
        line = line.rstrip("\r\n")
        if not line.strip():
            if sentence_words:
                words.append(sentence_words)
                tags.append(sentence_tags)
                sentence_words, sentence_tags = [], []
            continue
        fields = line.split(delimiter)
        if len(fields) < 2:
            raise DataFormatError(
                f"expected a token and a tag separated by {delimiter!r}", path=path, line=number
            )
        sentence_words.append(fields[0])
        sentence_tags.append(fields[-1])
    if sentence_words:
        words.append(sentence_words)
        tags.append(sentence_tags)
    return words, tags


def every_fifth(items: list) -> tuple[list, list]:
    """``(train, test)``: items 5, 10, 15, ... (1-based) are test (docs/real_data.md's split
    of the sets without a split or a time order)."""
    return [x for i, x in enumerate(items) if i % 5 != 4], items[4::5]


def read_csv_rows(path: str | Path, width: int) -> list[list[str]]:
    """Rows of a comma-separated, double-quoted file, each of ``width`` fields."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        rows = []
        for row in reader:
            if len(row) != width:
                raise DataFormatError(
                    f"{len(row)} fields, expected {width}", path=path, line=reader.line_num
                )
            rows.append(row)
    return rows


def read_ts(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Series ``(N, T, C)`` and targets ``(N,)`` of an equal-length ``.ts`` file.

    Targets are strings for a classification file (``@classLabel true ...``) and floats for a
    regression one (``@targetLabel true``). Header keys are case-insensitive, as the archives
    spell them both ways.
    """
    header: dict[str, str] = {}
    series, targets, in_data = [], [], False
    for number, line in _lines(Path(path)):
        line = line.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not in_data:
            key, _, value = line.partition(" ")
            header[key.lower()] = value.strip().lower()
            in_data = key.lower() == "@data"
            continue
        *channels, target = line.split(":")
        try:
            values = [[float(v) for v in channel.split(",")] for channel in channels]
        except ValueError:
            raise DataFormatError("a value is not a number", path=path, line=number) from None
        if series and (len(values), len(values[0])) != series[0].shape[::-1]:
            raise DataFormatError(
                f"{len(values)} channel(s) of {len(values[0])} steps, expected "
                f"{series[0].shape[1]} of {series[0].shape[0]} (equal-length files only)",
                path=path,
                line=number,
            )
        series.append(np.asarray(values).T)
        targets.append(target.strip())
    if header.get("@timestamps", "false") != "false" or header.get("@missing", "false") != "false":
        raise DataFormatError("timestamps or missing values are not supported", path=path)
    if not series:
        raise DataFormatError("no @data rows", path=path)
    regression = header.get("@targetlabel", "").startswith("true")
    y = np.asarray([float(t) for t in targets]) if regression else np.asarray(targets)
    return np.stack(series), y
