"""``ClassificationTask``: many-to-one classification or regression of whole sequences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MaxMetric, MeanMetric, MetricCollection, MinMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from rnnkit.tasks.optim import build_optimizers


class ClassificationTask(L.LightningModule):
    """Train a model that maps a sequence to one label (or one number).

    Classification (``num_classes`` set): cross-entropy; ``acc`` and macro ``f1``.
    Regression (``num_classes=None``): mean squared error; ``mse`` and ``mae``.
    The model is called as ``model(x, lengths) -> (B, C)`` (``C = 1`` for regression).

    Args:
        model: an already built network, e.g. :class:`rnnkit.models.SequenceModel`.
        optimizer: partial optimizer, called with the parameters.
        scheduler: partial LR scheduler, called with the optimizer (stepped per epoch on
            ``val/loss``), or ``None``.
        loss: override the default loss (cross-entropy or MSE).
        num_classes: classes; ``None`` makes the task a regression.
        label_names: class names in index order (predictions are returned by name).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        num_classes: int | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model", "loss"])
        self.model = model
        self.regression = num_classes is None
        if label_names is not None and num_classes is not None and len(label_names) != num_classes:
            raise ValueError(
                f"ClassificationTask: {len(label_names)} label_names for {num_classes} classes"
            )
        self.label_names = list(label_names) if label_names is not None else None
        if self.regression:
            self.loss_fn = loss if loss is not None else nn.MSELoss()
            metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
            self.best_name, self.val_best = "mse", MinMetric()
        else:
            self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss()
            metrics = MetricCollection(
                {
                    "acc": MulticlassAccuracy(num_classes, average="micro"),
                    "f1": MulticlassF1Score(num_classes, average="macro"),
                }
            )
            self.best_name, self.val_best = "acc", MaxMetric()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()

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

    def _shared_step(self, batch, stage: str, mean_loss: MeanMetric, metrics) -> Tensor:
        loss, pred, y = self.model_step(batch)
        # update, not forward: only epoch values are logged, and forward would also compute a
        # per-batch value (about 1 ms a step, 2% of a training step)
        mean_loss.update(loss)
        metrics.update(pred, y)
        batch_size = y.shape[0]
        self.log(
            f"{stage}/loss",
            mean_loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch_size,
        )
        self.log_dict(
            metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=batch_size
        )
        return loss

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train", self.train_loss, self.train_metrics)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "val", self.val_loss, self.val_metrics)

    def test_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "test", self.test_loss, self.test_metrics)

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

    def on_train_start(self) -> None:
        # sanity-check validation must not count as the best epoch
        self.val_loss.reset()
        self.val_metrics.reset()
        self.val_best.reset()

    def on_validation_epoch_end(self) -> None:
        value = self.val_metrics[f"val/{self.best_name}"].compute()
        self.val_best(value)
        self.log(
            f"val/{self.best_name}_best", self.val_best.compute(), sync_dist=True, prog_bar=True
        )

    def configure_optimizers(self) -> Any:
        return build_optimizers(self, self.hparams.optimizer, self.hparams.scheduler)
