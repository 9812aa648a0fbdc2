"""Most-frequent-tag baseline for POS tagging and NER, with suffix rules for unknown words.

A word seen in training gets the tag it had most often there. An unknown word gets the tag most
frequent among rare training words (seen at most ``rare`` times) of the same shape ending in the
longest suffix (up to ``max_suffix`` characters) that such words have, as TnT's suffix analysis
does in its simplest form (Brants 2000, sec. 2.3); shape is capitalised or not and contains a
digit or not. Without a matching suffix it gets the most frequent tag overall. Ties go to the
tag that sorts first, so the result does not depend on dictionary order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

Sentence = Sequence[str]


def _argmax(counts: Counter) -> str:
    return min(counts, key=lambda tag: (-counts[tag], tag))


def _shape(word: str) -> tuple[bool, bool]:
    return word[:1].isupper(), any(c.isdigit() for c in word)


class MostFrequentTagger:
    """Fit on tagged sentences, then tag sentences word by word.

    Args:
        suffix_rules: use suffix rules for unknown words (else the most frequent tag overall).
        max_suffix: longest suffix tried, in characters.
        rare: words seen at most this often in training feed the suffix statistics.
    """

    def __init__(self, suffix_rules: bool = True, max_suffix: int = 4, rare: int = 10) -> None:
        self.suffix_rules, self.max_suffix, self.rare = suffix_rules, max_suffix, rare

    def fit(self, words: Sequence[Sentence], tags: Sequence[Sentence]) -> MostFrequentTagger:
        per_word: dict[str, Counter] = defaultdict(Counter)
        for sentence, sentence_tags in zip(words, tags, strict=True):
            for word, tag in zip(sentence, sentence_tags, strict=True):
                per_word[word][tag] += 1
        self.lexicon = {word: _argmax(counts) for word, counts in per_word.items()}
        overall = Counter()
        for counts in per_word.values():
            overall.update(counts)
        self.default = _argmax(overall)
        suffixes: dict[tuple, Counter] = defaultdict(Counter)
        for word, counts in per_word.items():
            if sum(counts.values()) <= self.rare:
                for k in range(1, min(self.max_suffix, len(word)) + 1):
                    suffixes[(_shape(word), word[-k:].lower())].update(counts)
        self.suffixes = {key: _argmax(counts) for key, counts in suffixes.items()}
        return self

    def tag_word(self, word: str) -> str:
        if word in self.lexicon:
            return self.lexicon[word]
        if self.suffix_rules:
            for k in range(min(self.max_suffix, len(word)), 0, -1):
                rule = self.suffixes.get((_shape(word), word[-k:].lower()))
                if rule is not None:
                    return rule
        return self.default

    def predict(self, words: Sequence[Sentence]) -> list[list[str]]:
        return [[self.tag_word(w) for w in sentence] for sentence in words]


def token_accuracy(
    gold: Sequence[Sentence],
    pred: Sequence[Sentence],
    known: set[str] | None = None,
    words: Sequence[Sentence] | None = None,
) -> dict[str, float]:
    """Token accuracy overall, and on known/unknown words when ``known`` and ``words`` are given.

    Returns ``{"accuracy", "known_accuracy", "unknown_accuracy", "unknown_rate"}`` (the last
    three only with ``known``).
    """
    hits = total = 0
    split = {True: [0, 0], False: [0, 0]}  # known? -> [hits, total]
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        for j, (gt, pt) in enumerate(zip(g, p, strict=True)):
            hits += gt == pt
            total += 1
            if known is not None:
                cell = split[words[i][j] in known]
                cell[0] += gt == pt
                cell[1] += 1
    scores = {"accuracy": hits / total}
    if known is not None:
        scores["known_accuracy"] = split[True][0] / max(split[True][1], 1)
        scores["unknown_accuracy"] = split[False][0] / max(split[False][1], 1)
        scores["unknown_rate"] = split[False][1] / total
    return scores
