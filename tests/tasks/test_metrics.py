"""StageMetrics: epoch values (logged once an epoch), best value, constants, argument checks."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader

from rnnkit.console import EpochLines
from rnnkit.metrics import Mean
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, merge, per_stage
from tests.helpers import LightningTrainer


class MeanTask(Task):
    """Logs ``{stage}/value``: the mean of each batch's numbers (a hand-checkable metric)."""

    def __init__(self, optimizer, scheduler=None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        self.model = nn.Linear(1, 1)
        self.metrics = StageMetrics(
            merge(per_stage({"loss": Mean}), per_stage({"value": Mean}, ["val"])),
            best=("value", "min"),
            constants={"val/baseline": 7.0},
        )

    def training_step(self, batch, batch_idx):
        loss = self.model(batch[:, None]).pow(2).mean()
        self.metrics.update("train", "loss", loss.detach())
        return loss

    def validation_step(self, batch, batch_idx):
        values = batch + self.current_epoch  # epoch 0: 1, 2, 3; epoch 1: 2, 3, 4
        self.metrics.update("val", "value", values)


def test_epoch_values_best_and_constants() -> None:
    task = MeanTask(functools.partial(torch.optim.SGD, lr=0.0))
    data = DataLoader([torch.tensor([1.0]), torch.tensor([2.0, 3.0])], batch_size=None)
    trainer = LightningTrainer(
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


class Recorder(Logger):
    """Keeps every ``log_metrics`` call: ``[(step, {name: value})]``."""

    name, version = "recorder", 0

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def values(self, key: str) -> list[float]:
        return [round(row[key], 4) for _, row in self.rows if key in row]


class StepTask(MeanTask):
    """``train/loss`` = batch + 10 * epoch; ``val/value`` = batch + global step."""

    def training_step(self, batch, batch_idx):
        loss = (
            self.model(batch[:, None]).pow(2).mean() * 0 + batch.mean() + 10 * self.current_epoch
        )
        self.metrics.update("train", "loss", loss.detach())
        return loss

    def validation_step(self, batch, batch_idx):
        values = batch + self.global_step
        self.metrics.update("val", "value", values)


def test_every_epoch_and_validation_run_logs_its_own_updates() -> None:
    """Values are logged once per epoch (or validation run), not per step; each must be the
    mean of exactly that epoch's updates."""
    task = StepTask(functools.partial(torch.optim.SGD, lr=0.0))
    train = DataLoader([torch.tensor([v]) for v in (1.0, 2.0, 3.0, 4.0)], batch_size=None)
    val = DataLoader([torch.tensor([10.0]), torch.tensor([20.0])], batch_size=None)
    recorder = Recorder()
    trainer = LightningTrainer(
        max_epochs=2,
        logger=recorder,
        log_every_n_steps=1,
        val_check_interval=2,  # two validation runs an epoch
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, train, val)
    assert recorder.values("train/loss") == [2.5, 12.5]  # means of 1..4, then 11..14
    assert recorder.values("val/value") == [17.0, 19.0, 21.0, 23.0]  # 15 + step 2, 4, 6, 8


def test_each_console_line_shows_its_own_epochs_training_loss(caplog) -> None:
    """Lightning runs the callbacks' ``on_train_epoch_end`` before the task's, where
    ``train/loss`` is logged: the line must still show that epoch's value, not the last one's."""
    task = StepTask(functools.partial(torch.optim.SGD, lr=0.0))
    train = DataLoader([torch.tensor([v]) for v in (1.0, 2.0, 3.0, 4.0)], batch_size=None)
    val = DataLoader([torch.tensor([10.0])], batch_size=None)
    trainer = LightningTrainer(
        max_epochs=2,
        logger=False,
        callbacks=[EpochLines()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with caplog.at_level(logging.INFO, logger="rnnkit.console"):
        trainer.fit(task, train, val)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    shown = [line.split("  ")[:2] for line in lines]  # ["epoch 1/2", "train/loss 2.5000"]
    assert [epoch for epoch, _ in shown] == ["epoch 1/2", "epoch 2/2"]
    assert [float(loss.removeprefix("train/loss ")) for _, loss in shown] == [2.5, 12.5]


def test_bad_declarations_are_clear_errors() -> None:
    metrics = per_stage({"loss": Mean})
    with pytest.raises(ValueError, match="baselines"):
        StageMetrics(metrics, baselines=["val/nope"])
    with pytest.raises(ValueError, match="best must name a val metric"):
        StageMetrics(metrics, best=("acc", "max"))
    with pytest.raises(KeyError, match="no metric 'test/acc'"):
        StageMetrics(metrics)["test/acc"]
