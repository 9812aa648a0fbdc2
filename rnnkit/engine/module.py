"""``TaskModule``: what a task is to the driver that trains it, without Lightning.

A task is a ``torch.nn.Module`` with Lightning's hook names, so it runs under rnnkit's own
:class:`~rnnkit.engine.Trainer` (one process: the default, it imports no Lightning) and, through
:func:`rnnkit.engine.lightning.as_lightning_module`, under a Lightning ``Trainer`` (DDP, SLURM,
several GPUs). What a task may rely on:

- steps: ``training_step(batch, batch_idx) -> loss``, ``validation_step``, ``test_step``,
  ``predict_step(batch, batch_idx) -> outputs`` (``test_step`` also gets ``dataloader_idx``
  when the data module has several test loaders); ``configure_optimizers()`` returns
  ``{"optimizer": ..., "lr_scheduler": {"scheduler", "monitor", "interval": "epoch",
  "frequency": 1}}`` (the scheduler part optional);
- hooks (no-ops here): ``on_fit_start``, ``on_train_start``, ``on_train_epoch_start``,
  ``on_train_epoch_end``, ``on_validation_epoch_start``, ``on_validation_epoch_end``,
  ``on_test_start``, ``on_test_epoch_start``, ``on_test_epoch_end``, ``on_predict_start``,
  ``on_save_checkpoint(checkpoint)``, ``on_load_checkpoint(checkpoint)``;
- :meth:`log` of one finished value (a float or a 0-d tensor, already reduced over processes)
  from an epoch-end hook: the driver keeps it in ``trainer.callback_metrics`` for the
  callbacks (checkpoint selection, early stopping, the console) and the loggers;
- ``trainer`` (the driver; ``_trainer`` is ``None`` outside a run) with ``datamodule``,
  ``sanity_checking``, ``is_global_zero``, ``world_size``, ``default_root_dir``,
  ``current_epoch``, ``global_step``; ``device``; ``hparams`` (:mod:`rnnkit.engine.hparams`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.engine.hparams import HyperparametersMixin


class TaskModule(HyperparametersMixin, nn.Module):
    """Base of the rnnkit tasks (see the module docstring for the contract)."""

    def __init__(self) -> None:
        super().__init__()
        self._trainer: Any = None
        # set by the driver: called as sink(name, value, prog_bar) for every logged value
        self._log_sink: Any = None

    # --- the driver ---------------------------------------------------------------------------
    @property
    def trainer(self) -> Any:
        """The driver running this task; an error outside a run."""
        if self._trainer is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a trainer")
        return self._trainer

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        self._trainer = trainer

    @property
    def current_epoch(self) -> int:
        return int(self._trainer.current_epoch) if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        return int(self._trainer.global_step) if self._trainer is not None else 0

    @property
    def device(self) -> torch.device:
        """The device of the first parameter or buffer (CPU for a module with neither)."""
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    def log(self, name: str, value: float | Tensor, prog_bar: bool = False, **_: Any) -> None:
        """Report one epoch value ``name`` (``val/acc``) to the driver.

        Lightning's other ``self.log`` arguments (``on_epoch``, ``batch_size``, ...) are
        accepted and ignored: every value logged here is already an epoch value.
        """
        if self._log_sink is None:
            raise RuntimeError(f"{type(self).__name__}.log({name!r}) outside a run")
        self._log_sink(name, value, prog_bar)

    # --- steps and hooks ----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not configure an optimizer")

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no training_step")

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no validation_step")

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no test_step")

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no predict_step")

    def on_fit_start(self) -> None: ...
    def on_train_start(self) -> None: ...
    def on_train_epoch_start(self) -> None: ...
    def on_train_epoch_end(self) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_epoch_end(self) -> None: ...
    def on_test_start(self) -> None: ...
    def on_test_epoch_start(self) -> None: ...
    def on_test_epoch_end(self) -> None: ...
    def on_predict_start(self) -> None: ...
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...

    # --- checkpoints --------------------------------------------------------------------------
    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike,
        map_location: Any = "cpu",
        strict: bool = True,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> TaskModule:
        """Build the task from a checkpoint's ``hyper_parameters`` (``kwargs`` win: the model,
        the data state) and load its weights; ``weights_only`` must stay true (nothing loaded
        from disk may run code)."""
        from rnnkit.utils.checkpointing import load_checkpoint

        if not weights_only:
            raise ValueError("load_from_checkpoint: checkpoints load with weights_only=True only")
        checkpoint = load_checkpoint(checkpoint_path, map_location=map_location)
        task = cls(**{**dict(checkpoint.get("hyper_parameters") or {}), **kwargs})
        task.on_load_checkpoint(checkpoint)
        task.load_state_dict(checkpoint["state_dict"], strict=strict)
        return task
