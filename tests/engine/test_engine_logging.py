"""The engine's CSVLogger writes Lightning's metrics.csv, and seed_everything gives Lightning's
random streams (Lightning is imported here only as the reference)."""

from __future__ import annotations

import random

import numpy as np
import torch

from rnnkit.engine import Trainer
from rnnkit.engine.loggers import CSVLogger
from rnnkit.engine.seed import seed_everything, worker_init_function
from tests.engine.toy import ToyData, ToyTask


def draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_seed_everything_gives_lightning_streams(monkeypatch):
    import lightning as L

    L.seed_everything(123, workers=True, verbose=False)
    theirs = draws()
    monkeypatch.delenv("PL_SEED_WORKERS")
    seed_everything(123, workers=True)
    mine = draws()
    assert mine[:2] == theirs[:2] and torch.equal(mine[2], theirs[2])
    import os

    assert (os.environ["PL_GLOBAL_SEED"], os.environ["PL_SEED_WORKERS"]) == ("123", "1")


def test_worker_seeds_are_lightning_worker_seeds():
    from lightning.fabric.utilities.seed import pl_worker_init_function

    for worker_id in (0, 3):
        torch.manual_seed(1000 + worker_id)  # what the DataLoader gives worker i
        pl_worker_init_function(worker_id, rank=0)
        theirs = draws()
        torch.manual_seed(1000 + worker_id)
        worker_init_function(worker_id, rank=0)
        mine = draws()
        assert mine[:2] == theirs[:2] and torch.equal(mine[2], theirs[2])


def test_metrics_csv_is_lightning_csvloggers_file(tmp_path):
    from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger

    ours = CSVLogger(tmp_path / "ours", name="csv", version="")
    theirs = LightningCSVLogger(tmp_path / "theirs", name="csv", version="")
    seed_everything(7)
    trainer = Trainer(
        max_epochs=2,
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=[ours, theirs],  # Lightning's logger works with the engine as it is
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    task = ToyTask()
    trainer.fit(task, ToyData())
    trainer.test(task, ToyData(), verbose=False)
    for logger in (ours, theirs):
        logger.finalize("success")
    text = (tmp_path / "ours" / "csv" / "metrics.csv").read_text()
    assert text == (tmp_path / "theirs" / "csv" / "metrics.csv").read_text()
    lines = text.splitlines()
    assert lines[0] == "epoch,step,test/loss,train/loss,val/loss"
    # Lightning's steps: an epoch's validation and training rows at its last step - 1, the
    # test at the global step
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["0", "7"],
        ["0", "7"],
        ["1", "15"],
        ["1", "15"],
        ["2", "16"],
    ]
    assert trainer.logged_metrics["epoch"] == 2


def test_hparams_yaml_and_versions(tmp_path):
    logger = CSVLogger(tmp_path, name="runs")
    assert logger.log_dir == str(tmp_path / "runs" / "version_0")
    logger.log_hyperparams({"model": {"sizes": (1, 2)}, "lr": 0.1})
    assert (tmp_path / "runs" / "version_0" / "hparams.yaml").read_text() == (
        "model:\n  sizes:\n  - 1\n  - 2\nlr: 0.1\n"
    )
    assert CSVLogger(tmp_path, name="runs").version == 1
