"""The two run contracts of train.py: the checkpoint follows the task's monitor, and a data
module without a validation split trains the given epochs and tests its last checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rnnkit.errors import ConfigError
from rnnkit.tasks import ClassificationTask
from rnnkit.train import train
from rnnkit.utils.checkpointing import load_checkpoint
from tests.helpers import options

TINY = [
    "data=text",
    "model.hidden_size=8",
    "model.embedding_dim=8",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "extras.print_config=false",
    "callbacks.model_summary=null",
]


def val_rows(run_dir: Path, name: str) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [float(r[name]) for r in csv.DictReader(f) if r.get(name)]


@pytest.mark.parametrize("task", options("task"))
def test_every_task_config_names_its_monitor_and_the_callbacks_read_it(task, compose_cfg):
    cfg = compose_cfg([f"task={task}"])
    assert cfg.task.monitor.startswith("val/")
    assert cfg.task.monitor_mode in ("min", "max")
    assert cfg.callbacks.model_checkpoint.monitor == cfg.task.monitor
    assert cfg.callbacks.early_stopping.mode == cfg.task.monitor_mode


def test_the_best_checkpoint_is_the_best_on_the_monitor(compose_cfg):
    cfg = compose_cfg([*TINY, "trainer.max_epochs=3", "logger=csv", "task.optimizer.lr=0.05"])
    assert cfg.task.monitor == "val/acc" and cfg.task.monitor_mode == "max"
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    best = json.loads((run_dir / "summary.json").read_text())["best_ckpt"]
    state = next(
        v for k, v in load_checkpoint(best)["callbacks"].items() if k.startswith("ModelCheckpoint")
    )
    assert state["monitor"] == "val/acc"
    assert float(state["best_model_score"]) == pytest.approx(max(val_rows(run_dir, "val/acc")))


def test_a_monitor_that_is_never_logged_is_one_clear_error(compose_cfg):
    cfg = compose_cfg([*TINY, "trainer.max_epochs=1", "logger=none", "task.monitor=val/f1x"])
    with pytest.raises(ConfigError, match=r"task.monitor='val/f1x' is never logged .*val/acc"):
        train(cfg)


def test_the_monitor_is_not_a_hyperparameter_and_its_mode_is_checked():
    task = ClassificationTask(model=None, optimizer=None, num_classes=2, monitor="val/f1")
    assert task.monitor == "val/f1" and "monitor" not in task.hparams
    with pytest.raises(ConfigError, match="task.monitor_mode must be 'min' or 'max'"):
        ClassificationTask(model=None, optimizer=None, num_classes=2, monitor_mode="up")


def test_without_validation_the_last_checkpoint_is_tested(compose_cfg, caplog):
    plateau = "{_target_:torch.optim.lr_scheduler.ReduceLROnPlateau,_partial_:true}"
    cfg = compose_cfg(
        [*TINY, "trainer.max_epochs=2", "logger=csv", "data.val_fraction=0"]
        + [f"task.scheduler={plateau}"]  # steps on train/loss: there is no val/loss
    )
    with caplog.at_level("INFO"):
        metrics = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]
    assert summary["best_ckpt"] == str(checkpoints / "last.ckpt")
    assert summary["epochs"] == 2  # no early stopping, the given epochs
    assert load_checkpoint(checkpoints / "last.ckpt")["epoch"] == 1
    assert "test/acc" in metrics and not any(k.startswith("val/") for k in metrics)
    assert sum("No validation split" in r.getMessage() for r in caplog.records) == 1
