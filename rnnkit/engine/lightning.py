"""Run rnnkit's tasks, data modules and callbacks under a Lightning ``Trainer``.

The only rnnkit module that imports Lightning for them (DDP, SLURM, several GPUs are what
Lightning is kept for). Each adapter is a thin Lightning object around the plain one:

- :func:`as_lightning_module`: a ``LightningModule`` whose steps, hooks and optimizers are the
  task's, whose ``state_dict`` *is* the task's (keys ``model....``: a checkpoint does not
  depend on the driver that wrote it) and whose hyper-parameters are the task's ``hparams``;
  it gives the task the Lightning trainer (``task._trainer``) and a log sink: each
  ``task.log(name, value, prog_bar)`` becomes Lightning's ``self.log`` of an epoch value;
- :func:`as_lightning_datamodule`: a ``LightningDataModule`` named like the wrapped class
  (Lightning stores ``state_dict()`` in a checkpoint under the class's ``__qualname__``) whose
  unknown attributes are the wrapped data module's (``trainer.datamodule.split_arrays(...)``);
- :func:`as_lightning_callback`: an rnnkit callback as a Lightning callback, with the same
  ``state_key`` and state, whose hooks receive the task, not the Lightning wrapper; the
  engine's ``ModelCheckpoint``, ``EarlyStopping`` and ``ModelSummary``
  (:mod:`rnnkit.engine.callbacks`) become Lightning's own classes with the same arguments;
- :func:`as_lightning_logger`: the engine's ``CSVLogger`` as Lightning's (the same file);
- :class:`AtomicCheckpointIO`: the ``CheckpointIO`` plugin that writes every checkpoint with
  :func:`rnnkit.utils.checkpointing.save_checkpoint_file` and checks it on load.

Each wrapper class defines only the steps and hooks the wrapped class implements, so Lightning
sees what the plain object has (a task without ``validation_step`` validates nothing) and a
hook nobody implements costs nothing per step.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.parsing import AttributeDict

from rnnkit.engine import callbacks as engine_callbacks
from rnnkit.engine.callback import HOOKS, Callback, Terminated, overrides
from rnnkit.engine.datamodule import DataModule
from rnnkit.engine.loggers import CSVLogger
from rnnkit.engine.module import TaskModule
from rnnkit.utils.checkpointing import check_config_matches, load_checkpoint, save_checkpoint_file

__all__ = [
    "AtomicCheckpointIO",
    "as_lightning_callback",
    "as_lightning_datamodule",
    "as_lightning_logger",
    "as_lightning_module",
    "task_of",
]

#: the task hooks Lightning calls on its module (``TaskModule``'s, and those a task may add)
TASK_HOOKS = (
    "on_fit_start",
    "on_fit_end",
    "on_train_start",
    "on_train_end",
    "on_train_epoch_start",
    "on_train_epoch_end",
    "on_validation_start",
    "on_validation_end",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "on_test_start",
    "on_test_end",
    "on_test_epoch_start",
    "on_test_epoch_end",
    "on_predict_start",
    "on_predict_end",
    "on_save_checkpoint",
    "on_load_checkpoint",
)
STEPS = ("training_step", "validation_step", "test_step", "predict_step")
LOADERS = ("train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader")


def _implements(cls: type, name: str, base: type) -> bool:
    """Whether class ``cls`` has a method ``name`` other than ``base``'s default."""
    mine = getattr(cls, name, None)
    return callable(mine) and mine is not getattr(base, name, None)


def _hparams_dict(hparams: Any) -> AttributeDict:
    return AttributeDict(copy.deepcopy(dict(hparams)))


# --- tasks --------------------------------------------------------------------------------------
class _LightningTask(L.LightningModule):
    """A task seen by Lightning (see :func:`as_lightning_module`)."""

    def __init__(self, task: TaskModule) -> None:
        super().__init__()
        self.task = task
        task._log_sink = self._log_epoch_value
        # what Lightning's save_hyperparameters() would have set: the checkpoint's
        # "hparams_name" and whether the loggers get the hyper-parameters
        self._hparams_name = "kwargs"
        self._log_hyperparams = bool(task.hparams)

    @property
    def trainer(self) -> Any:
        return super().trainer

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        self._trainer = trainer
        self.task._trainer = trainer

    @property
    def hparams(self) -> Any:
        """The task's own ``hparams`` (one dict: what the task changes, the checkpoint has)."""
        return self.task.hparams

    @property
    def hparams_initial(self) -> Any:
        return _hparams_dict(self.task.hparams)

    def _log_epoch_value(self, name: str, value: Any, prog_bar: bool) -> None:
        # every value a task logs is an epoch value (rnnkit.engine.module)
        self.log(
            name, value, prog_bar=prog_bar, on_step=False, on_epoch=True, add_dataloader_idx=False
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.task(*args, **kwargs)

    def configure_optimizers(self) -> Any:
        return self.task.configure_optimizers()

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.task.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.task.load_state_dict(state_dict, strict=strict, assign=assign)


def _step(name: str) -> Callable[..., Any]:
    def step(self: _LightningTask, batch: Any, batch_idx: int, dataloader_idx: int | None = None):
        # Lightning passes dataloader_idx only when there are several loaders
        extra = () if dataloader_idx is None else (dataloader_idx,)
        return getattr(self.task, name)(batch, batch_idx, *extra)

    step.__name__ = name
    return step


def _task_hook(name: str) -> Callable[..., Any]:
    def hook(self: _LightningTask, *args: Any) -> Any:
        return getattr(self.task, name)(*args)

    hook.__name__ = name
    return hook


@functools.cache
def _lightning_task_class(cls: type) -> type:
    """The wrapper class for tasks of class ``cls``: its steps and hooks, nothing else."""
    members: dict[str, Any] = {"__qualname__": f"Lightning{cls.__qualname__}"}
    for name in STEPS:
        if _implements(cls, name, TaskModule):
            members[name] = _step(name)
    for name in TASK_HOOKS:
        if _implements(cls, name, TaskModule):
            members[name] = _task_hook(name)
    return type(f"Lightning{cls.__name__}", (_LightningTask,), members)


def as_lightning_module(task: TaskModule) -> L.LightningModule:
    """``task`` as a ``LightningModule`` (see the module docstring); ``task`` stays the owner
    of the weights: the wrapper's ``state_dict`` has exactly the task's keys."""
    if not isinstance(task, TaskModule):
        raise TypeError(f"as_lightning_module: expected an rnnkit TaskModule, got {type(task)}")
    return _lightning_task_class(type(task))(task)


def task_of(module: Any) -> Any:
    """The task behind a Lightning module from :func:`as_lightning_module`, else ``module``."""
    return module.task if isinstance(module, _LightningTask) else module


# --- data modules -------------------------------------------------------------------------------
class _LightningData(L.LightningDataModule):
    """A data module seen by Lightning (see :func:`as_lightning_datamodule`)."""

    def __init__(self, datamodule: DataModule) -> None:
        self.__dict__["datamodule"] = datamodule  # before __init__ sets self.trainer
        super().__init__()
        self._hparams_name = "kwargs"
        self._log_hyperparams = bool(datamodule.hparams)

    def __getattr__(self, name: str) -> Any:
        # only called for what this class lacks: info, has_validation, split_arrays, ...
        if name == "datamodule":
            raise AttributeError(name)
        return getattr(self.__dict__["datamodule"], name)

    @property
    def trainer(self) -> Any:
        return self.__dict__.get("_trainer")

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        self.__dict__["_trainer"] = trainer
        self.datamodule.trainer = trainer

    @property
    def hparams(self) -> Any:
        return self.datamodule.hparams

    @property
    def hparams_initial(self) -> Any:
        return _hparams_dict(self.datamodule.hparams)

    def prepare_data(self) -> None:
        self.datamodule.prepare_data()

    def setup(self, stage: str) -> None:
        self.datamodule.setup(stage)

    def teardown(self, stage: str) -> None:
        self.datamodule.teardown(stage)

    def state_dict(self) -> dict[str, Any]:
        return self.datamodule.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.datamodule.load_state_dict(state_dict)


def _loader(name: str) -> Callable[..., Any]:
    def loader(self: _LightningData) -> Any:
        return getattr(self.datamodule, name)()

    loader.__name__ = name
    return loader


@functools.cache
def _lightning_data_class(cls: type) -> type:
    """The wrapper class for data modules of class ``cls``, with ``cls``'s ``__qualname__``."""
    members: dict[str, Any] = {"__qualname__": cls.__qualname__, "__module__": cls.__module__}
    for name in LOADERS:
        if _implements(cls, name, DataModule):
            members[name] = _loader(name)
    return type(cls.__name__, (_LightningData,), members)


def as_lightning_datamodule(datamodule: DataModule) -> L.LightningDataModule:
    """``datamodule`` as a ``LightningDataModule`` (see the module docstring)."""
    if not isinstance(datamodule, DataModule):
        raise TypeError(
            f"as_lightning_datamodule: expected an rnnkit DataModule, got {type(datamodule)}"
        )
    return _lightning_data_class(type(datamodule))(datamodule)


# --- callbacks ----------------------------------------------------------------------------------
#: hooks whose Lightning arguments go beyond the rnnkit ones (``dataloader_idx``): how many to pass
_ARGUMENTS = {"on_test_batch_end": 3}


class _LightningCallback(L.Callback):
    """An rnnkit callback seen by Lightning (see :func:`as_lightning_callback`)."""

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        for hook in HOOKS:
            if overrides(callback, hook):  # the others stay Lightning's no-ops
                setattr(self, hook, self._forward(hook))

    def _forward(self, hook: str) -> Callable[..., Any]:
        method = getattr(self.callback, hook)
        count = _ARGUMENTS.get(hook)

        def forward(trainer: Any, pl_module: Any, *args: Any) -> Any:
            if hook == "on_exception" and isinstance(args[0], SIGTERMException):
                args = (Terminated("SIGTERM"),)
            return method(trainer, task_of(pl_module), *args[:count])

        return forward

    @property
    def state_key(self) -> str:
        return self.callback.state_key

    def state_dict(self) -> dict[str, Any]:
        return self.callback.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.callback.load_state_dict(state_dict)


#: the engine's callbacks that Lightning has its own class for
TWINS = {
    engine_callbacks.ModelCheckpoint: L.pytorch.callbacks.ModelCheckpoint,
    engine_callbacks.EarlyStopping: L.pytorch.callbacks.EarlyStopping,
    engine_callbacks.ModelSummary: L.pytorch.callbacks.ModelSummary,
}


def _twin(callback: Any, cls: type) -> L.Callback:
    """Lightning's ``cls`` built from ``callback``'s constructor arguments (each kept as the
    attribute of the same name)."""
    names = inspect.signature(type(callback)).parameters
    return cls(**{name: getattr(callback, name) for name in names})


def as_lightning_callback(callback: Any) -> L.Callback:
    """A Lightning callback as is; the engine's checkpoint, early-stopping and summary callbacks
    as Lightning's own classes (same arguments, same ``state_key``); any other rnnkit
    :class:`~rnnkit.engine.Callback` wrapped so that its hooks receive the task and its state
    keeps its ``state_key``."""
    if isinstance(callback, L.Callback):
        return callback
    if type(callback) in TWINS:
        return _twin(callback, TWINS[type(callback)])
    if not isinstance(callback, Callback):
        raise TypeError(
            f"as_lightning_callback: not a callback (rnnkit's or Lightning's): {type(callback)}"
        )
    return _LightningCallback(callback)


# --- loggers ------------------------------------------------------------------------------------
def as_lightning_logger(logger: Any) -> Any:
    """The engine's :class:`~rnnkit.engine.loggers.CSVLogger` as Lightning's (same folder and
    file); any other logger (Lightning's TensorBoard, ...) as is."""
    if type(logger) is not CSVLogger:
        return logger
    return L.pytorch.loggers.CSVLogger(
        logger.save_dir,
        name=logger.name,
        version=logger.version,
        prefix=logger.prefix,
        flush_logs_every_n_steps=logger.flush_logs_every_n_steps,
    )


# --- checkpoints --------------------------------------------------------------------------------
class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO``: atomic, pickle-free writes; safe, checked reads.

    Writing is :func:`~rnnkit.utils.checkpointing.save_checkpoint_file` (plain hyper-parameters,
    ``checkpoint["rnnkit"]``, atomic replace); reading is
    :func:`~rnnkit.utils.checkpointing.load_checkpoint` (``weights_only=True``, one clear error
    for a broken file) and refuses a checkpoint of a different model configuration.

    Args:
        config: the run's composed config (a DictConfig or dict; read at save/load time, so the
            values ``train()`` fills in from the data are included). Stored in every checkpoint
            under ``checkpoint["rnnkit"]["config"]`` and compared on load.
        compare: top-level config sections that must match when a checkpoint is loaded.
    """

    def __init__(self, config: Any = None, compare: tuple[str, ...] = ("model",)) -> None:
        super().__init__()
        self.config = config
        self.compare = tuple(compare)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        save_checkpoint_file(checkpoint, path, self.config)

    def load_checkpoint(
        self,
        path: Any,
        map_location: Callable | Any = "cpu",
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        checkpoint = load_checkpoint(
            path, map_location=map_location, weights_only=weights_only is not False
        )
        if self.config is not None:
            check_config_matches(checkpoint, self.config, self.compare, path=path)
        return checkpoint
