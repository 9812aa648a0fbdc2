"""Tag schemes: plain tags (parts of speech, any label per token) and entity-span schemes.

- ``plain``: every tag is a label of its own token (``NN``, ``VVFIN``, ``B-NP`` if you say so);
  scored by token accuracy.
- ``bio`` (IOB2; Ramshaw & Marcus 1995, Tjong Kim Sang & Veenstra 1999): ``O`` outside any
  span, ``B-TYPE`` begins one, ``I-TYPE`` continues it.
- ``bioes`` (IOBES; Ratinov & Roth 2009): also ``E-TYPE`` ends a span, ``S-TYPE`` is a
  one-token span.

Span schemes are scored by span F1 as conlleval counts it (:mod:`rnnkit.tasks.spans`) and by
token accuracy. ``auto`` picks the scheme from the training tags (:func:`detect_scheme`).
"""

from __future__ import annotations

from collections.abc import Iterable

from rnnkit.errors import ConfigError, DataFormatError

SPAN_PREFIXES = {"bio": ("B", "I"), "bioes": ("B", "I", "E", "S")}
SCHEMES = ("plain", *SPAN_PREFIXES)
ALIASES = {"iob2": "bio", "iobes": "bioes"}


def normalize_scheme(scheme: str, allow_auto: bool = False, key: str = "scheme") -> str:
    """``scheme`` in lower case (``BIO`` -> ``bio``, ``IOB2`` -> ``bio``), or a ConfigError."""
    name = str(scheme).lower()
    name = ALIASES.get(name, name)
    allowed = (*SCHEMES, "auto") if allow_auto else SCHEMES
    if name not in allowed:
        raise ConfigError(f"{key}={scheme!r} is not a tag scheme; expected one of {list(allowed)}")
    return name


def is_span_scheme(scheme: str) -> bool:
    """True for ``bio``/``bioes`` (span F1 is meaningful), False for ``plain``."""
    return normalize_scheme(scheme) in SPAN_PREFIXES


def span_tag_error(tag: str, scheme: str) -> str | None:
    """Why ``tag`` is not a tag of the span ``scheme``, or ``None`` when it is one."""
    if tag == "O":
        return None
    prefixes = SPAN_PREFIXES[scheme]
    prefix, _, kind = tag.partition("-")
    if prefix in prefixes and kind:
        return None
    return (
        f"tag {tag!r} is not a {scheme.upper()} tag (expected 'O' or one of "
        f"{'/'.join(prefixes)} followed by '-TYPE'; scheme=plain takes any tag)"
    )


def check_tag(tag: str, scheme: str, where: str) -> None:
    """Raise a DataFormatError naming ``where`` unless ``tag`` belongs to ``scheme``."""
    scheme = normalize_scheme(scheme)
    if scheme == "plain":
        return
    problem = span_tag_error(tag, scheme)
    if problem:
        raise DataFormatError(f"{where}: {problem}")


def detect_scheme(tags: Iterable[str]) -> str:
    """The scheme of a set of training tags.

    ``bioes`` when every tag is ``O`` or ``B/I/E/S-TYPE`` and some ``E-``/``S-`` tag occurs,
    ``bio`` when every tag is ``O`` or ``B/I-TYPE`` and ``O`` or ``B-`` occurs, ``plain``
    otherwise (a POS tag set: ``NN``, ``$.``, ``-LRB-``).
    """
    seen = set(tags)
    if seen and all(span_tag_error(t, "bioes") is None for t in seen):
        prefixes = {t.partition("-")[0] for t in seen}
        if prefixes & {"E", "S"}:
            return "bioes"
        if prefixes & {"O", "B"}:
            return "bio"
    return "plain"
