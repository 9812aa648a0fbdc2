r"""Multiclass accuracy (micro) and macro F1 from class labels.

With :math:`tp_c, fp_c, fn_c` the true positives, false positives and false negatives of class
:math:`c` over every update:

.. math::
    \text{acc} = \frac{\sum_c tp_c}{N}, \qquad
    F1_c = \frac{2\,tp_c}{2\,tp_c + fp_c + fn_c}, \qquad
    \text{F1}_{\text{macro}} = \frac{1}{|C'|} \sum_{c \in C'} F1_c

where :math:`C'` holds the classes that occur among the targets or the predictions (a class
seen nowhere neither helps nor hurts), and a 0/0 counts as 0 (torchmetrics'
``MulticlassAccuracy(average="micro")`` and ``MulticlassF1Score(average="macro")``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.metrics.base import Metric


def _labels(preds: Tensor, target: Tensor) -> Tensor:
    """Class labels of ``preds``: given as labels (like ``target``) or scores ``(B, C, ...)``."""
    return preds.argmax(1) if preds.dim() == target.dim() + 1 else preds


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, 0 where ``den`` is 0."""
    num, den = num.float(), den.float()
    return torch.where(den != 0, num / den, torch.zeros_like(num))


class Accuracy(Metric):
    """Share of predictions equal to their targets over every update (micro accuracy).

    ``update(preds, target)``: labels (or scores ``(B, C)``) and labels ``target (B, ...)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", torch.tensor(0))
        self.add_state("total", torch.tensor(0))

    def _update(self, preds: Tensor, target: Tensor) -> None:
        self.correct += (_labels(preds, target) == target).sum()
        self.total += target.numel()

    def _compute(self) -> Tensor:
        return _ratio(self.correct, self.total)


class MacroF1(Metric):
    """Macro F1 over ``num_classes`` classes; see the module docstring.

    ``update(preds, target)`` as :class:`Accuracy`, labels in ``[0, num_classes)``.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"MacroF1: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        # per class: true positives, predicted, targets (fp = predicted - tp, fn = targets - tp)
        self.add_state("counts", torch.zeros(3, num_classes, dtype=torch.long))

    def _update(self, preds: Tensor, target: Tensor) -> None:
        preds, target = _labels(preds, target).reshape(-1), target.reshape(-1)  # (N,)
        C = self.num_classes
        self.counts[0] += torch.bincount(target[preds == target], minlength=C)
        self.counts[1] += torch.bincount(preds, minlength=C)
        self.counts[2] += torch.bincount(target, minlength=C)

    def _compute(self) -> Tensor:
        tp, predicted, gold = self.counts  # (C,) each
        f1 = _ratio(2 * tp, predicted + gold)  # 2 tp + fp + fn = predicted + gold
        seen = (predicted + gold > 0).float()  # (C,) tp + fp + fn > 0
        # each term divided before the sum, as torchmetrics does: the same float rounding
        return _ratio(seen * f1, seen.sum().expand_as(f1)).sum()
