"""Entity spans and span F1 exactly as CoNLL's ``conlleval`` script counts them (BIO, BIOES).

A chunk starts and ends by conlleval's rules (``startOfChunk``/``endOfChunk``), so ill-formed
sequences are scored as conlleval scores them: an ``I-X`` after ``O`` starts a chunk, a type
change ends one. A predicted chunk is correct when its start, end and type all match a gold
chunk; F1 is over all chunks of all sentences (micro).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rnnkit.metrics import Metric


def _split(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O" if tag == "O" else tag, ""
    prefix, kind = tag.split("-", 1)
    return prefix, kind


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag != "O" and prev_type != kind)
    )


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag != "O" and prev_type != kind)
    )


def get_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """Chunks of one sentence as ``(start, end_inclusive, type)``, conlleval's way."""
    spans = set()
    prev_tag, prev_type, start = "O", "", None
    for i, full in enumerate(list(tags) + ["O"]):  # a final O closes the last chunk
        tag, kind = _split(full)
        if start is not None and _end_of_chunk(prev_tag, tag, prev_type, kind):
            spans.add((start, i - 1, prev_type))
            start = None
        if i < len(tags) and _start_of_chunk(prev_tag, tag, prev_type, kind):
            start = i
        prev_tag, prev_type = tag, kind
    return spans


def span_counts(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> tuple[int, int, int]:
    """``(correct, predicted, gold)`` chunk counts over sentences."""
    correct = n_pred = n_gold = 0
    for g, p in zip(gold, pred, strict=True):
        if len(g) != len(p):
            raise ValueError(f"gold has {len(g)} tags but prediction has {len(p)}")
        gs, ps = get_spans(g), get_spans(p)
        correct += len(gs & ps)
        n_pred += len(ps)
        n_gold += len(gs)
    return correct, n_pred, n_gold


def prf(correct: float, n_pred: float, n_gold: float) -> tuple[float, float, float]:
    """Precision, recall, F1 (conlleval: 0 when undefined)."""
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def span_f1_score(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> tuple[float, float, float]:
    """Precision, recall and F1 of chunks, as conlleval reports them (fractions, not %)."""
    return prf(*span_counts(gold, pred))


class SpanF1(Metric):
    """Streaming span F1 (conlleval), summed over batches and processes.

    ``update(pred_tags, gold_tags)`` takes lists of tag-name sequences.
    """

    def __init__(self) -> None:
        super().__init__()
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, torch.tensor(0.0))

    def _update(self, preds: Sequence[Sequence[str]], target: Sequence[Sequence[str]]) -> None:
        correct, n_pred, n_gold = span_counts(target, preds)
        self.correct += correct
        self.predicted += n_pred
        self.gold += n_gold

    def _compute(self) -> Tensor:
        _, _, f1 = prf(float(self.correct), float(self.predicted), float(self.gold))
        return torch.tensor(f1)
