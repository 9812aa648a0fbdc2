"""Readers of tagged sentences: CoNLL-style columns and ``word/TAG`` lines.

- ``conll``: one token a line, fields split by ``delimiter``, a blank line between sentences
  (``-DOCSTART-`` lines skipped); the token is field ``token_column`` (the first by default),
  the tag field ``tag_column`` (the last by default), so files with extra columns (CoNLL-2003,
  the Hironsan corpus' 10-12 fields) read as they are.
- ``slash``: one sentence a line, tokens ``word/TAG`` split by whitespace, each at its last
  ``/`` (``1/2/CD``: word ``1/2``); ``&slash;`` in a word is an escaped ``/`` (Pattern's
  ``tagged-*.txt``).

Every reader returns :class:`RawExample` objects (``source``: the sentence's first line) and
reports a malformed line as one ``DataFormatError`` starting ``path:line:``. Tags are checked
against a scheme only when one is given (``auto`` checks them on the training split instead).
"""

from __future__ import annotations

from pathlib import Path

from rnnkit.data.readers import RawExample, open_text
from rnnkit.data.tag_schemes import check_tag, normalize_scheme
from rnnkit.errors import ConfigError, DataFormatError, EmptyDataError

FORMATS = ("conll", "slash")
SLASH_ESCAPE = "&slash;"


def token_line(example: RawExample, index: int, format: str) -> str:
    """``path:line`` of token ``index`` of ``example``: its sentence's line in ``slash``
    files, the sentence's first line plus ``index`` in ``conll`` files (a token a line)."""
    path, _, line = example.source.rpartition(":")
    if format != "conll" or not line.isdigit():
        return example.source
    return f"{path}:{int(line) + index}"


def read_tagged(
    path: str | Path,
    format: str = "conll",
    scheme: str | None = None,
    delimiter: str | None = "\t",
    token_column: int = 0,
    tag_column: int = -1,
    num_fields: int | None = None,
    lowercase: bool = False,
    labeled: bool = True,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read a tagged file in ``format`` (``conll`` or ``slash``); see the module docstring."""
    if format == "conll":
        return read_conll(
            path, scheme, delimiter, num_fields, lowercase, labeled, encoding,
            token_column=token_column, tag_column=tag_column,
        )  # fmt: skip
    if format == "slash":
        return read_slash(path, scheme, lowercase, labeled, encoding)
    raise ConfigError(f"data.format={format!r} is not a tagged-file format; expected {FORMATS}")


def read_conll(
    path: str | Path,
    scheme: str | None = None,
    delimiter: str | None = "\t",
    num_fields: int | None = None,
    lowercase: bool = False,
    labeled: bool = True,
    encoding: str = "utf-8",
    *,
    token_column: int = 0,
    tag_column: int = -1,
) -> list[RawExample]:
    """Read CoNLL blocks: a token a line with its fields, a blank line between sentences.

    Args:
        scheme: ``bio``/``bioes``/``plain`` to check every tag as it is read; ``None`` or
            ``auto``: no check here.
        delimiter: field separator (``None``: any whitespace).
        num_fields: fields every line must have (``None``: any number, at least two).
        labeled: when false, lines may hold the token alone (prediction input).
        token_column, tag_column: which fields hold the token and the tag.
        encoding: the file's text encoding (a UTF-8 byte-order mark is dropped).
    """
    path = Path(path)
    checked = scheme is not None and normalize_scheme(scheme, allow_auto=True) != "auto"
    examples: list[RawExample] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = ""
    least = max(token_column + 1, -token_column, tag_column + 1, -tag_column, 2)

    def flush() -> None:
        if tokens:
            examples.append(RawExample(list(tokens), list(tags) if tags else None, start))
            tokens.clear()
            tags.clear()

    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            where = f"{path}:{number}"
            if not line.strip():
                flush()
                continue
            if line.startswith("-DOCSTART-"):
                continue
            fields = line.split(delimiter) if delimiter else line.split()
            if not tokens:
                start = where
            if not labeled and len(fields) == 1:
                tokens.append(fields[0].lower() if lowercase else fields[0])
                continue
            expected = f"{num_fields}" if num_fields else f"at least {least}"
            if (num_fields and len(fields) != num_fields) or len(fields) < least:
                sep = "<TAB>" if delimiter == "\t" else " "
                raise DataFormatError(
                    f"{where}: expected {expected} fields (token{sep}...{sep}tag), "
                    f"got {len(fields)}: {line!r}"
                )
            token, tag = fields[token_column], fields[tag_column].strip()
            if not tag:
                raise DataFormatError(f"{where}: the tag field is empty: {line!r}")
            if checked:
                check_tag(tag, scheme, where)
            tokens.append(token.lower() if lowercase else token)
            tags.append(tag)
    flush()
    if not examples:
        raise EmptyDataError(f"{path}: no sentences")
    return examples


def read_slash(
    path: str | Path,
    scheme: str | None = None,
    lowercase: bool = False,
    labeled: bool = True,
    encoding: str = "utf-8",
) -> list[RawExample]:
    """Read ``word/TAG word/TAG ...`` lines, a sentence a line (blank lines skipped).

    With ``labeled=False`` a line's tokens are plain words (no ``/TAG``).
    """
    path = Path(path)
    checked = scheme is not None and normalize_scheme(scheme, allow_auto=True) != "auto"
    examples = []
    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            words, tags = [], []
            for token in line.split():
                word, slash, tag = token.rpartition("/") if labeled else (token, "/", "")
                if labeled and (not slash or not word or not tag):
                    raise DataFormatError(
                        f"{where}: token {token!r} is not word/TAG (a sentence a line, "
                        "tokens split by spaces, each word/TAG)"
                    )
                if checked:
                    check_tag(tag, scheme, where)
                word = word.replace(SLASH_ESCAPE, "/")
                words.append(word.lower() if lowercase else word)
                tags.append(tag)
            examples.append(RawExample(words, tags if labeled else None, where))
    if not examples:
        raise EmptyDataError(f"{path}: no sentences")
    return examples
