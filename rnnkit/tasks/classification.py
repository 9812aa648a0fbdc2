"""``ClassificationTask``: many-to-one classification or regression of whole sequences."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn
from torch.optim import Optimizer

from rnnkit.metrics import Accuracy, MacroF1, Mean, MeanAbsoluteError, MeanSquaredError
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, merge, per_stage, scored_stages


class ClassificationTask(Task):
    """Train a model that maps a sequence to one label (or one number).

    Classification (``num_classes`` set): cross-entropy; ``acc`` and macro ``f1``, and
    ``val/acc_best``. Regression (``num_classes=None``): mean squared error; ``mse``, ``rmse`` and
    ``mae``, and ``val/mse_best``. The model is called as ``model(x, lengths) -> (B, C)``
    (``C = 1`` for regression). Training batches log only the loss unless ``train_metrics``
    (the class statistics of every update cost a host sync on a GPU).

    Args:
        model: an already built network, e.g. :class:`rnnkit.models.SequenceModel`.
        optimizer: partial optimizer, called with the parameters.
        scheduler: partial LR scheduler, called with the optimizer (stepped per epoch on
            ``val/loss``), or ``None``.
        loss: override the default loss (cross-entropy or MSE).
        num_classes: classes; ``None`` makes the task a regression.
        label_names: class names in index order (predictions are returned by name); data
            state, from the data's label map.
        train_metrics: also score training batches (``train/acc``, ``train/f1``, ...).
        monitor, monitor_mode: the metric that selects the best checkpoint
            (:class:`~rnnkit.tasks.base.Task`); ``configs/task/regression.yaml`` sets
            ``val/loss``/``min`` for regression.
    """

    data_state = ("label_names",)

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        num_classes: int | None = None,
        label_names: Sequence[str] | None = None,
        train_metrics: bool = False,
        monitor: str = "val/acc",
        monitor_mode: str = "max",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        self.model = model
        self.regression = num_classes is None
        if label_names is not None and num_classes is not None and len(label_names) != num_classes:
            raise ValueError(
                f"ClassificationTask: {len(label_names)} label_names for {num_classes} classes"
            )
        self.label_names = list(label_names) if label_names is not None else None
        if self.regression:
            self.loss_fn = loss if loss is not None else nn.MSELoss()
            scores: dict[str, Callable[[], Any]] = {
                "mse": MeanSquaredError,
                "rmse": lambda: MeanSquaredError(squared=False),  # the unit of the target
                "mae": MeanAbsoluteError,
            }
            best = ("mse", "min")
        else:
            self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss()
            scores = {"acc": Accuracy, "f1": lambda: MacroF1(num_classes)}
            best = ("acc", "max")
        self.metrics = StageMetrics(
            merge(per_stage({"loss": Mean}), per_stage(scores, scored_stages(train_metrics))),
            best=best,
            prog_bar=scores,
        )

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.model(x, lengths)

    def model_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, lengths, y = batch
        out = self(x, lengths)  # (B, C)
        if self.regression:
            pred = out.reshape(y.shape)  # (B, 1)
            loss = self.loss_fn(pred, y)
        else:
            loss = self.loss_fn(out, y)
            pred = out.argmax(-1)  # (B,)
        return loss, pred, y

    def _shared_step(self, batch, stage: str) -> Tensor:
        loss, pred, y = self.model_step(batch)
        for name in self.metrics.names(stage):
            args = (loss.detach(),) if name == "loss" else (pred.detach(), y)
            self.metrics.update(stage, name, *args)
        return loss

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> list[dict[str, Any]]:
        """Decoded predictions: ``{"label", "prob"}`` per sequence, or ``{"value"}``."""
        x, lengths, _ = batch
        out = self(x, lengths)
        if self.regression:
            return [{"value": float(v)} for v in out.reshape(-1)]
        probs = out.softmax(-1)  # (B, C)
        prob, index = probs.max(-1)
        names = self.label_names or [str(i) for i in range(out.shape[-1])]
        pairs = zip(index.tolist(), prob.tolist(), strict=True)
        return [{"label": names[i], "prob": p} for i, p in pairs]

    def format_predictions(self, predictions: Sequence[dict[str, Any]], datamodule) -> list[str]:
        """``label<TAB>probability<TAB>input`` per sequence, or ``value<TAB>input``."""
        lines = []
        for example, pred in zip(datamodule.predict_examples(), predictions, strict=True):
            shown = datamodule.decode_inputs(example)
            if self.regression:
                lines.append(f"{pred['value']:.6g}\t{shown}")
            else:
                lines.append(f"{pred['label']}\t{pred['prob']:.4f}\t{shown}")
        return lines
