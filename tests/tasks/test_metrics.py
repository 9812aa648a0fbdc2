"""StageMetrics: per-stage epoch values, the best value, constants, and its argument checks."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric

from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, mean_metric, merge, per_stage


class MeanTask(Task):
    """Logs ``{stage}/value``: the mean of each batch's numbers (a hand-checkable metric)."""

    def __init__(self, optimizer, scheduler=None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        self.model = nn.Linear(1, 1)
        self.metrics = StageMetrics(
            merge(per_stage({"loss": mean_metric}), per_stage({"value": mean_metric}, ["val"])),
            best=("value", "min"),
            constants={"val/baseline": 7.0},
        )

    def training_step(self, batch, batch_idx):
        loss = self.model(batch[:, None]).pow(2).mean()
        self.metrics.update(self, "train", "loss", loss.detach(), batch_size=len(batch))
        return loss

    def validation_step(self, batch, batch_idx):
        values = batch + self.current_epoch  # epoch 0: 1, 2, 3; epoch 1: 2, 3, 4
        self.metrics.update(self, "val", "value", values, batch_size=len(batch))


def test_epoch_values_best_and_constants() -> None:
    task = MeanTask(functools.partial(torch.optim.SGD, lr=0.0))
    data = DataLoader([torch.tensor([1.0]), torch.tensor([2.0, 3.0])], batch_size=None)
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,  # the sanity batch (value 1) must not become the best
    )
    trainer.fit(task, data, data)
    m = trainer.callback_metrics
    assert float(m["val/value"]) == pytest.approx(3.0)  # epoch 1: mean of 2, 3, 4
    assert float(m["val/value_best"]) == pytest.approx(2.0)  # epoch 0, not the sanity check
    assert float(m["val/baseline"]) == 7.0
    assert "train/loss" in m and "train/value" not in m


def test_bad_declarations_are_clear_errors() -> None:
    metrics = per_stage({"loss": MeanMetric})
    with pytest.raises(ValueError, match="baselines"):
        StageMetrics(metrics, baselines=["val/nope"])
    with pytest.raises(ValueError, match="best must name a val metric"):
        StageMetrics(metrics, best=("acc", "max"))
    with pytest.raises(KeyError, match="no metric 'test/acc'"):
        StageMetrics(metrics)["test/acc"]
