"""rnnkit.engine.lightning: a task, a data module and a callback run under a Lightning Trainer
exactly as themselves (same state_dict keys, the data state under the data module's own class
name, hooks that receive the task, logged values in ``callback_metrics``)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.engine import Callback, DataModule, TaskModule, Terminated
from rnnkit.engine.lightning import (
    as_lightning_callback,
    as_lightning_datamodule,
    as_lightning_module,
)
from rnnkit.utils.checkpointing import load_checkpoint


class Regression(TaskModule):
    """Linear regression; logs ``val/loss`` (the last validation batch's) at the epoch end."""

    def __init__(self, lr: float = 0.1, hidden_size: int = 3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = nn.Sequential(nn.Linear(2, hidden_size), nn.Linear(hidden_size, 1))
        self.register_buffer("seen", torch.zeros(()))  # a buffer is state_dict too
        self.trainers: list = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen += 1
        return F.mse_loss(self.model(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._val = F.mse_loss(self.model(x), y).detach()

    def on_validation_epoch_end(self) -> None:
        self.trainers.append(self.trainer)
        self.log("val/loss", self._val, prog_bar=True)

    def configure_optimizers(self):
        return {"optimizer": torch.optim.SGD(self.parameters(), lr=self.hparams.lr)}


class Points(DataModule):
    """Eight seeded points; its fitted state (a mean) is saved in every checkpoint."""

    def __init__(self, n: int = 8) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.fitted: dict | None = None
        self.restored: dict | None = None

    def setup(self, stage: str) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(self.hparams.n, 2, generator=g)
        self.data = TensorDataset(x, x.sum(1, keepdim=True))
        self.fitted = self.fitted or {"mean": float(x.mean())}

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=4)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=4)

    def split_arrays(self, split: str) -> str:
        return f"arrays of {split}"

    def state_dict(self) -> dict:
        return {"fitted": self.fitted}

    def load_state_dict(self, state_dict: dict) -> None:
        self.restored = state_dict
        self.fitted = state_dict["fitted"]


class Recorder(Callback):
    """Keeps what every hook it implements received, and a count as its state."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.count = 0

    def on_train_start(self, trainer, task) -> None:
        self.calls.append(("on_train_start", task))

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        self.count += 1
        self.calls.append(("on_train_batch_end", task))

    def on_validation_epoch_end(self, trainer, task) -> None:
        self.calls.append(("on_validation_epoch_end", task))

    def on_exception(self, trainer, task, exception) -> None:
        self.calls.append(("on_exception", exception))

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state_dict: dict) -> None:
        self.count = state_dict["count"]


def _trainer(tmp_path, callbacks=(), max_epochs: int = 2) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[as_lightning_callback(c) for c in callbacks],
        num_sanity_val_steps=0,
    )


def test_the_wrapper_state_dict_is_the_task_s_and_a_checkpoint_loads_into_the_task(tmp_path):
    torch.manual_seed(0)
    task = Regression(lr=0.05)
    module = as_lightning_module(task)
    assert list(module.state_dict()) == list(task.state_dict())
    assert list(task.state_dict()) == [
        "seen",
        "model.0.weight",
        "model.0.bias",
        "model.1.weight",
        "model.1.bias",
    ]
    trainer = _trainer(tmp_path)
    trainer.fit(module, datamodule=as_lightning_datamodule(Points()))
    assert task._trainer is trainer and task.trainers == [trainer, trainer]
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    checkpoint = load_checkpoint(tmp_path / "run.ckpt")
    assert list(checkpoint["state_dict"]) == list(task.state_dict())
    assert checkpoint["hyper_parameters"] == {"lr": 0.05, "hidden_size": 3}
    assert checkpoint["hparams_name"] == "kwargs"
    reloaded = Regression.load_from_checkpoint(tmp_path / "run.ckpt")
    assert reloaded.hparams == {"lr": 0.05, "hidden_size": 3}
    for key, value in task.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    assert float(reloaded.seen) == 4  # 2 epochs of 2 batches


def test_the_task_logs_epoch_values_and_owns_its_hparams(tmp_path):
    task = Regression()
    module = as_lightning_module(task)
    trainer = _trainer(tmp_path)
    trainer.fit(module, datamodule=as_lightning_datamodule(Points()))
    assert set(trainer.callback_metrics) == {"val/loss"}
    assert set(trainer.progress_bar_metrics) == {"val/loss"}
    torch.testing.assert_close(trainer.callback_metrics["val/loss"], task._val)
    task.hparams["lr"] = 0.5  # predict() overrides settings this way: the wrapper sees them
    assert module.hparams["lr"] == 0.5


def test_a_step_the_task_lacks_is_one_lightning_does_not_see():
    class TrainOnly(TaskModule):
        def training_step(self, batch, batch_idx):
            return batch.sum()

    module = as_lightning_module(TrainOnly())
    assert is_overridden("training_step", module)
    assert not is_overridden("validation_step", module)
    assert not is_overridden("on_validation_epoch_end", module)
    assert is_overridden("validation_step", as_lightning_module(Regression()))
    with pytest.raises(TypeError, match="expected an rnnkit TaskModule"):
        as_lightning_module(nn.Linear(1, 1))


def test_the_data_state_is_saved_under_the_wrapped_class_name_and_restored(tmp_path):
    points = Points()
    data = as_lightning_datamodule(points)
    assert type(data).__qualname__ == "Points" and isinstance(data, L.LightningDataModule)
    assert data.split_arrays("train") == "arrays of train"  # unknown attributes: the module's
    assert data.hparams == {"n": 8}
    trainer = _trainer(tmp_path)
    trainer.fit(as_lightning_module(Regression()), datamodule=data)
    assert points.trainer is trainer and data.trainer is trainer
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    checkpoint = load_checkpoint(tmp_path / "run.ckpt")
    assert checkpoint["Points"] == {"fitted": points.fitted}
    assert checkpoint["datamodule_hyper_parameters"] == {"n": 8}

    again = Points()
    resumed = _trainer(tmp_path, max_epochs=3)
    resumed.fit(
        as_lightning_module(Regression()),
        datamodule=as_lightning_datamodule(again),
        ckpt_path=tmp_path / "run.ckpt",
    )
    assert again.restored == {"fitted": points.fitted}


def test_callback_hooks_receive_the_task_and_its_state_keeps_its_key(tmp_path):
    task, recorder = Regression(), Recorder()
    wrapped = as_lightning_callback(recorder)
    assert wrapped.state_key == "Recorder"
    # the hooks it does not implement are Lightning's own no-ops: nothing to forward per step
    assert "on_train_batch_start" not in vars(wrapped)
    assert "on_train_batch_end" in vars(wrapped)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=[wrapped],
    )
    trainer.fit(as_lightning_module(task), datamodule=as_lightning_datamodule(Points()))
    hooks = [hook for hook, _ in recorder.calls]
    assert hooks == ["on_train_start", "on_train_batch_end", "on_train_batch_end",
                     "on_validation_epoch_end"]  # fmt: skip
    assert all(received is task for _, received in recorder.calls)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    assert load_checkpoint(tmp_path / "run.ckpt")["callbacks"]["Recorder"] == {"count": 2}
    fresh = as_lightning_callback(Recorder())
    fresh.load_state_dict({"count": 5})
    assert fresh.callback.count == 5


def test_lightning_callbacks_pass_through_and_sigterm_arrives_as_terminated():
    checkpoint = ModelCheckpoint()
    assert as_lightning_callback(checkpoint) is checkpoint
    recorder = Recorder()
    as_lightning_callback(recorder).on_exception(None, None, SIGTERMException())
    ((hook, exception),) = recorder.calls
    assert hook == "on_exception" and isinstance(exception, Terminated)
    other = RuntimeError("a bug")
    as_lightning_callback(recorder).on_exception(None, None, other)
    assert recorder.calls[-1] == ("on_exception", other)
    with pytest.raises(TypeError, match="not a callback"):
        as_lightning_callback(object())
