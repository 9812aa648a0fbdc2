"""Checkpoints of rnnkit's Trainer: best and last files, early stopping, an exact resume, and
SIGTERM stopping at a step boundary."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from rnnkit.callbacks import RNGState
from rnnkit.engine import Callback, Terminated, Trainer
from rnnkit.engine.callbacks import EarlyStopping, ModelCheckpoint
from rnnkit.engine.optim import SchedulerConfig, step_schedulers
from rnnkit.engine.seed import seed_everything
from rnnkit.errors import ConfigError
from rnnkit.utils.checkpointing import load_checkpoint
from tests.engine.toy import ToyData, ToyTask, weights

QUIET = {"accelerator": "cpu", "logger": False, "enable_model_summary": False}


class Record(Callback):
    """The monitored value at every training epoch's end."""

    def __init__(self, key: str) -> None:
        self.key, self.values = key, []

    def on_train_epoch_end(self, trainer, task) -> None:
        self.values.append(float(trainer.callback_metrics[self.key]))


def run(folder, epochs, callbacks=(), ckpt_path=None, lr=0.05, **kwargs):
    seed_everything(7)
    task = ToyTask(lr=lr)
    trainer = Trainer(
        max_epochs=epochs, default_root_dir=folder, callbacks=list(callbacks), **QUIET, **kwargs
    )
    trainer.fit(task, ToyData(), ckpt_path=ckpt_path)
    return task, trainer


def checkpointer(folder, **kwargs):
    return ModelCheckpoint(
        dirpath=folder / "checkpoints",
        filename="best-epoch{epoch:03d}",
        monitor="val/loss",
        save_last=True,
        auto_insert_metric_name=False,
        **kwargs,
    )


def test_best_and_last_checkpoints(tmp_path):
    record = Record("val/loss")
    _, trainer = run(tmp_path, 4, [checkpointer(tmp_path), record])
    best = min(range(4), key=record.values.__getitem__)
    callback = trainer.checkpoint_callback
    assert callback.best_model_path == str(tmp_path / "checkpoints" / f"best-epoch{best:03d}.ckpt")
    assert float(callback.best_model_score) == pytest.approx(record.values[best])
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == sorted([f"best-epoch{best:03d}.ckpt", "last.ckpt"])  # the rest removed
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (3, 32)
    assert set(last) >= {"state_dict", "hyper_parameters", "optimizer_states", "callbacks"}
    assert last["hyper_parameters"] == {"hidden_size": 16, "lr": 0.05, "scheduler": None}
    assert callback.state_key in last["callbacks"]


def test_top_k_keeps_the_k_best(tmp_path):
    record = Record("val/loss")
    _, trainer = run(tmp_path, 4, [checkpointer(tmp_path, save_top_k=2), record])
    kept = sorted(range(4), key=record.values.__getitem__)[:2]
    assert set(trainer.checkpoint_callback.best_k_models) == {
        str(tmp_path / "checkpoints" / f"best-epoch{e:03d}.ckpt") for e in kept
    }
    assert len(list((tmp_path / "checkpoints").glob("best-*.ckpt"))) == 2


def test_early_stopping_stops_after_patience_checks_without_improvement(tmp_path):
    # train/loss falls every epoch, so with mode=max it never improves after epoch 0
    stop = EarlyStopping(monitor="train/loss", mode="max", patience=2)
    _, trainer = run(tmp_path, 10, [stop], enable_checkpointing=False)
    assert trainer.current_epoch == 3 and stop.stopped_epoch == 2 and stop.wait_count == 2
    stop = EarlyStopping(monitor="train/loss", mode="max", patience=2)
    _, trainer = run(tmp_path, 10, [stop], enable_checkpointing=False, min_epochs=5)
    assert trainer.current_epoch == 5  # min_epochs wins over the stop


def test_a_monitor_that_is_never_logged_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match=r"EarlyStopping\(monitor='val/acc'\): the task never"):
        run(tmp_path, 2, [EarlyStopping(monitor="val/acc")], enable_checkpointing=False)


def test_every_monitor_reader_gives_the_same_error(tmp_path):
    """ModelCheckpoint, EarlyStopping and a plateau scheduler read their monitor one way."""
    logs = r"the task never logs it; it logs train/loss, val/loss$"
    with pytest.raises(ConfigError, match=rf"^ModelCheckpoint\(monitor='val/acc'\): {logs}"):
        run(tmp_path, 1, [ModelCheckpoint(dirpath=tmp_path, monitor="val/acc")])
    with pytest.raises(ConfigError, match=rf"^EarlyStopping\(monitor='val/acc'\): {logs}"):
        run(tmp_path, 1, [EarlyStopping(monitor="val/acc")], enable_checkpointing=False)
    optimizer = torch.optim.SGD(ToyTask().parameters(), lr=0.1)
    plateau = SchedulerConfig(ReduceLROnPlateau(optimizer), monitor="val/acc")
    metrics = {"train/loss": torch.tensor(1.0), "val/loss": torch.tensor(2.0)}
    with pytest.raises(ConfigError, match=rf"^ReduceLROnPlateau\(monitor='val/acc'\): {logs}"):
        step_schedulers([plateau], "epoch", 0, metrics)
    plateau.strict = False
    step_schedulers([plateau], "epoch", 0, metrics)  # skipped


def test_resume_from_last_equals_an_uninterrupted_run(tmp_path):
    straight, _ = run(tmp_path / "a", 3, [checkpointer(tmp_path / "a"), RNGState()])
    run(tmp_path / "b", 1, [checkpointer(tmp_path / "b"), RNGState()])
    last = tmp_path / "b" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["epoch"] == 0
    callback = checkpointer(tmp_path / "b")
    resumed, trainer = run(tmp_path / "b", 3, [callback, RNGState()], ckpt_path=last)
    assert torch.equal(weights(resumed), weights(straight))
    assert (trainer.current_epoch, trainer.global_step) == (3, 24)
    assert load_checkpoint(last)["epoch"] == 2
    # the callback's state came back: the best of all three epochs, not of the last two
    _, reference = run(tmp_path / "c", 3, [checkpointer(tmp_path / "c"), RNGState()])
    best = reference.checkpoint_callback.best_model_path.replace("/c/", "/b/")
    assert callback.best_model_path == best


class SigtermAt(Callback):
    """Send this process SIGTERM during the step that ends at ``step``."""

    def __init__(self, step: int) -> None:
        self.step, self.saw = step, None

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_exception(self, trainer, task, exception) -> None:
        self.saw = (type(exception), trainer.received_sigterm, trainer.global_step)
        trainer.save_checkpoint(trainer.default_root_dir + "/interrupted.ckpt")


def test_sigterm_stops_at_the_step_boundary_and_resumes_the_rest_of_the_epoch(tmp_path):
    folder = str(tmp_path)
    hook = SigtermAt(3)
    with pytest.raises(Terminated):
        run(folder, 2, [hook], enable_checkpointing=False)
    assert hook.saw == (Terminated, True, 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone
    checkpoint = load_checkpoint(tmp_path / "interrupted.ckpt")
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (0, 3)
    assert checkpoint["loop"] == {"epoch_finished": False, "batches": 3}
    interrupted = tmp_path / "interrupted.ckpt"
    _, trainer = run(folder, 2, ckpt_path=interrupted, enable_checkpointing=False)
    assert (trainer.current_epoch, trainer.global_step) == (2, 16)  # 5 + 8 more steps


def test_resume_refuses_a_checkpoint_of_another_model_config(tmp_path):
    from rnnkit.errors import CheckpointMismatchError

    config = {"model": {"hidden_size": 16}}
    run(tmp_path, 1, [checkpointer(tmp_path)], config=config)
    with pytest.raises(CheckpointMismatchError, match=r"model\.hidden_size is 16 .* but 8"):
        run(
            tmp_path,
            2,
            ckpt_path=tmp_path / "checkpoints" / "last.ckpt",
            config={"model": {"hidden_size": 8}},
        )
