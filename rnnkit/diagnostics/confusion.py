"""``ConfusionMatrixPlot``: at the end of testing, draw true x predicted class counts.

Works with any task whose test step either returns ``{"pred": (N...) long, "target": (N...)
long}`` or has ``model_step(batch) -> (loss, pred, target)`` with integer class predictions
of the target's shape (:class:`rnnkit.tasks.ClassificationTask` does). Targets below zero
(``ignore_index`` padding) are left out. Regression tasks (float targets) are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from rnnkit.engine import Callback
from rnnkit.plots import plot_confusion_matrix
from rnnkit.utils.logging import get_logger

__all__ = ["ConfusionMatrixPlot"]

log = get_logger(__name__)


class ConfusionMatrixPlot(Callback):
    """Count (true, predicted) pairs over the test set; write ``confusion_matrix.png`` and
    ``confusion_matrix.json`` (``{"labels", "matrix"}``) into the run directory.

    Args:
        output_dir: the run directory; ``None`` uses ``trainer.default_root_dir``.
        normalize: colour by row-normalised rates (per-class recall); cells show counts.
        max_classes: above this many classes the plot is skipped (the JSON is still written).

    Attributes:
        matrix: the (C, C) long counts of the last test run, rows true, columns predicted.
    """

    def __init__(
        self, output_dir: str | None = None, normalize: bool = True, max_classes: int = 50
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.normalize = normalize
        self.max_classes = max_classes
        self.matrix: Tensor | None = None
        self._pairs: list[tuple[Tensor, Tensor]] = []
        self._skipped = False

    def on_test_epoch_start(self, trainer, task) -> None:
        self._pairs, self._skipped, self.matrix = [], False, None

    def on_test_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        if self._skipped:
            return
        pair = self._predictions(task, outputs, batch)
        if pair is None:
            self._skipped = True
            log.info(
                "ConfusionMatrixPlot: %s gives no class predictions; no confusion matrix",
                type(task).__name__,
            )
            return
        pred, target = (t.detach().reshape(-1).long().cpu() for t in pair)
        keep = target >= 0  # ignore_index padding
        self._pairs.append((target[keep], pred[keep]))

    @staticmethod
    def _predictions(task, outputs, batch) -> tuple[Tensor, Tensor] | None:
        if isinstance(outputs, dict) and "pred" in outputs and "target" in outputs:
            pred, target = outputs["pred"], outputs["target"]
        elif hasattr(task, "model_step"):
            with torch.no_grad():
                result = task.model_step(batch)
            if not (isinstance(result, tuple) and len(result) == 3):
                return None
            _, pred, target = result
        else:
            return None
        ok = (
            isinstance(pred, Tensor)
            and isinstance(target, Tensor)
            and pred.shape == target.shape
            and not pred.is_floating_point()
            and not target.is_floating_point()
        )
        return (pred, target) if ok else None

    def on_test_epoch_end(self, trainer, task) -> None:
        if self._skipped or not self._pairs:
            return
        target = torch.cat([t for t, _ in self._pairs])
        pred = torch.cat([p for _, p in self._pairs])
        labels = getattr(task, "label_names", None)
        C = max(len(labels) if labels else 0, int(target.max()) + 1, int(pred.max()) + 1)
        labels = list(labels) if labels and len(labels) == C else [str(i) for i in range(C)]
        self.matrix = torch.bincount(target * C + pred, minlength=C * C).view(C, C)
        if not trainer.is_global_zero:
            return
        root = Path(self.output_dir or trainer.default_root_dir)
        root.mkdir(parents=True, exist_ok=True)
        (root / "confusion_matrix.json").write_text(
            json.dumps({"labels": labels, "matrix": self.matrix.tolist()})
        )
        if C <= self.max_classes:
            plot_confusion_matrix(
                self.matrix,
                root / "confusion_matrix.png",
                labels=labels,
                normalize=self.normalize,
                title="test set",
            )
