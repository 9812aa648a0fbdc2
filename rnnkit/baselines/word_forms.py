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
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

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
