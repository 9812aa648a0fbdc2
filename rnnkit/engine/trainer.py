"""``Trainer``: rnnkit's own single-process training loop (fit, validate, test, predict).

It drives a :class:`~rnnkit.engine.TaskModule`, a :class:`~rnnkit.engine.DataModule` and
:class:`~rnnkit.engine.Callback` objects with Lightning's arguments, hook order and attributes,
and imports no Lightning. One training step is what a hand-written loop does::

    batch = to_device(batch)          # only off the CPU
    loss = task.training_step(batch, batch_idx)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_grad_norm_(params, gradient_clip_val)   # or clip_grad_value_; off when 0/None
    optimizer.step()

plus the hooks that a callback (or the task) actually overrides; nothing reads a value back to
the host. An epoch: ``on_train_epoch_start``, the steps, validation (every
``check_val_every_n_epoch`` epochs, under ``torch.inference_mode`` and ``eval()``),
``on_train_epoch_end`` (callbacks, then the task, then the learning-rate schedulers, then the
epoch's metrics to the loggers, then the checkpoint and early-stopping callbacks, which so see
the epoch's final values; a checkpoint is never ahead of ``metrics.csv``). ``fit`` first runs
``num_sanity_val_steps`` validation batches with ``sanity_checking=True`` (their values are
dropped).

``task.log(name, value)`` (epoch values, from epoch-end hooks) lands in ``callback_metrics``
(a 0-d tensor), ``progress_bar_metrics`` (``prog_bar=True``) and, at the end of that stage's
epoch, in one row per logger at Lightning's steps (training, and validation during ``fit``:
``global_step - 1``; ``validate`` and ``test``: ``global_step``), with ``epoch``.

Checkpoints (:meth:`Trainer.save_checkpoint`, written and restored by
:mod:`rnnkit.engine.checkpoint`) have the keys of ``docs/design.md`` (``state_dict``,
``hyper_parameters``, ``epoch``, ``global_step``, ``optimizer_states``, ``lr_schedulers``,
``callbacks``, the data module's state under its class's ``__qualname__``, ``rnnkit``) and
``loop`` (whether the epoch had finished, how many of its batches ran).
``fit(ckpt_path=...)`` restores all of it: a checkpoint written at an epoch end continues
with the next epoch; one written mid-epoch (``interrupted.ckpt``) runs the rest of that
epoch's batches. SIGTERM during ``fit`` stops at the next step boundary with
:class:`~rnnkit.engine.Terminated` (``received_sigterm`` is then true).

What needs several processes or devices (``strategy``, ``devices > 1``, ``num_nodes``,
``plugins``, ...) is refused with one :class:`~rnnkit.errors.ConfigError` naming the key:
those runs take a Lightning trainer config (``trainer=ddp``, ``trainer=ddp_cpu``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torch.nn.utils import clip_grad_value_, clip_grads_with_norm_, get_total_norm

from rnnkit.engine import checkpoint
from rnnkit.engine.callback import Callback, Terminated, overrides
from rnnkit.engine.callbacks import EarlyStopping, ModelCheckpoint, ModelSummary
from rnnkit.engine.interrupt import SigtermFlag
from rnnkit.engine.optim import configure_optimizers, step_schedulers
from rnnkit.engine.seed import isolate_rng, seed_workers
from rnnkit.errors import ConfigError
from rnnkit.utils.logging import get_logger

__all__ = ["Trainer", "TrainerState"]

log = get_logger(__name__)

#: per-step hooks of a task, called only when its class defines them
TASK_STEP_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_train_batch_end",
)
#: the values of a single-process run that a Lightning config may spell several ways
SINGLE = {
    "strategy": (None, "auto", "single_device"),
    "num_nodes": (1,),
    "precision": (None, 32, "32", "32-true"),
    "accumulate_grad_batches": (1,),
    "val_check_interval": (None, 1.0),
    "sync_batchnorm": (False,),
    "plugins": (None, [], ()),
}
LIGHTNING_HINT = (
    "use a Lightning trainer config for it (trainer=ddp or trainer=ddp_cpu, or "
    "trainer._target_=lightning.pytorch.trainer.Trainer)"
)


def unsupported(key: str, value: Any) -> ConfigError:
    """The one error for a trainer option rnnkit's single-process trainer does not run."""
    return ConfigError(
        f"trainer.{key}={value!r} is not supported by rnnkit's Trainer (rnnkit.engine.Trainer, "
        f"one process on one device); {LIGHTNING_HINT}"
    )


@dataclass
class TrainerState:
    """What the trainer is doing: ``fn`` (``fit``, ``validate``, ``test``, ``predict``),
    ``stage`` (``train``, ``sanity_check``, ``validate``, ``test``, ``predict``), ``status``
    (``initializing``, ``running``, ``finished``, ``interrupted``)."""

    fn: str | None = None
    stage: str | None = None
    status: str = "initializing"


def _limit(value: Any, key: str) -> int | float:
    """A ``limit_*_batches`` value: a fraction in [0, 1] or a whole number of batches."""
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"trainer.{key} is {value!r}, expected a fraction in [0, 1] or a count")
    if isinstance(value, float) and value > 1:
        if value % 1:
            raise ConfigError(f"trainer.{key} is {value}: a fraction in [0, 1] or a count")
        return int(value)
    return value


def _device(accelerator: str | None, devices: Any) -> torch.device:
    """The one device of ``accelerator``/``devices``; errors name the key."""
    index = 0
    if isinstance(devices, (list, tuple)):
        if len(devices) != 1:
            raise unsupported("devices", list(devices))
        index = int(devices[0])
    elif devices not in (None, 1, "1", "auto"):
        raise unsupported("devices", devices)
    kind = str(accelerator or "auto").lower()
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if kind in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"trainer.accelerator={accelerator} but torch sees no CUDA device; use "
                "trainer=cpu or trainer.accelerator=auto"
            )
        return torch.device("cuda", index)
    if kind == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    raise ConfigError(f"trainer.accelerator={accelerator!r}: expected cpu, gpu, cuda or auto")


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor (in tuples, lists, dicts, objects with ``.to``) moved."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    if callable(getattr(batch, "to", None)):
        return batch.to(device)
    return batch


def _check_callback(callback: Any) -> None:
    """Refuse Lightning's progress bars, which draw from Lightning's loop internals.

    Other Lightning callbacks with Lightning's hook names run as they are.
    """
    for cls in type(callback).__mro__:
        if cls.__module__.startswith("lightning.pytorch.callbacks.progress"):
            raise ConfigError(
                f"callback {type(callback).__name__} is Lightning's progress bar, which rnnkit's "
                f"Trainer does not draw (it prints one line an epoch); {LIGHTNING_HINT}"
            )


def _as_list(value: Any) -> list[Any]:
    """``value`` as a list: none, one object, or any sequence (Hydra hands a ``ListConfig``)."""
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


class Trainer:
    """rnnkit's single-process trainer; the arguments are Lightning ``Trainer``'s.

    Args:
        default_root_dir: the run folder (checkpoints, logs); default: the current folder.
        min_epochs, max_epochs: epochs at least (early stopping waits) and at most
            (``None``: 1000, ``-1``: no limit); ``max_steps``: optimizer steps at most.
        accelerator: ``cpu``, ``gpu``/``cuda``, ``mps`` or ``auto``; ``devices``: 1 (or
            ``[i]``: GPU ``i``).
        gradient_clip_val, gradient_clip_algorithm: clip the gradients' 2-norm (``norm``) or
            each value (``value``) to this before every optimizer step; 0/None: off.
        check_val_every_n_epoch: validate after every n-th training epoch.
        limit_train_batches, limit_val_batches, limit_test_batches, limit_predict_batches:
            a fraction of each split's batches or a count.
        overfit_batches: train and validate on this many (or this fraction of) batches: the
            first ones of the first epoch, the same every epoch.
        fast_dev_run: ``True`` or n: n batches of each split, one epoch, no sanity check, no
            checkpoints, no logging, no early stopping.
        num_sanity_val_steps: validation batches run before training (``-1``: all).
        deterministic: ``torch.use_deterministic_algorithms`` (``"warn"``: warn only).
        benchmark: ``torch.backends.cudnn.benchmark`` (``None``: unchanged).
        detect_anomaly: ``torch.autograd`` anomaly detection during ``fit`` (slow).
        callbacks: :class:`~rnnkit.engine.Callback` objects (or any with its hook names).
        logger: a logger, a list of them, or ``False``/``None`` (none); ``True``: a
            :class:`~rnnkit.engine.loggers.CSVLogger` in ``default_root_dir``.
        enable_checkpointing: add a :class:`~rnnkit.engine.callbacks.ModelCheckpoint` when
            ``callbacks`` has none; ``enable_model_summary``: likewise a ``ModelSummary``.
        enable_progress_bar, log_every_n_steps, inference_mode: accepted; the engine has no
            progress bar (``rnnkit.console.EpochLines`` prints the epochs), logs epoch values
            only, and always evaluates under ``torch.inference_mode``.
        config: the run's composed config, stored in every checkpoint (``checkpoint["rnnkit"]``)
            and compared with a checkpoint's on resume (``model`` section).

    Everything else (``strategy``, ``devices > 1``, ``num_nodes``, ``plugins``, mixed
    ``precision``, ``accumulate_grad_batches``, ...) raises one :class:`ConfigError` naming it.
    """

    def __init__(
        self,
        *,
        default_root_dir: str | os.PathLike | None = None,
        min_epochs: int | None = None,
        max_epochs: int | None = None,
        max_steps: int = -1,
        accelerator: str = "auto",
        devices: Any = "auto",
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
        check_val_every_n_epoch: int = 1,
        log_every_n_steps: int | None = None,
        deterministic: bool | Literal["warn"] | None = None,
        benchmark: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_model_summary: bool | None = None,
        enable_checkpointing: bool | None = None,
        fast_dev_run: bool | int = False,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        overfit_batches: int | float = 0.0,
        num_sanity_val_steps: int | None = None,
        detect_anomaly: bool = False,
        inference_mode: bool = True,
        callbacks: Callback | Sequence[Callback] | None = None,
        logger: Any = None,
        config: Any = None,
        **options: Any,
    ) -> None:
        for key, value in options.items():
            allowed = SINGLE.get(key)
            if allowed is None or value not in allowed:
                raise unsupported(key, value)
        self.device = _device(accelerator, devices)
        self.accelerator = self.device.type
        self.default_root_dir = os.fspath(default_root_dir or os.getcwd())
        self.min_epochs = min_epochs or 0
        self.max_steps = max_steps
        if max_epochs is None:
            max_epochs = 1000 if max_steps == -1 else -1
        self.max_epochs = max_epochs
        if gradient_clip_val is not None and gradient_clip_val < 0:
            raise ConfigError(f"trainer.gradient_clip_val is {gradient_clip_val}, expected >= 0")
        if gradient_clip_algorithm not in (None, "norm", "value"):
            raise ConfigError(
                f"trainer.gradient_clip_algorithm is {gradient_clip_algorithm!r}, expected "
                "norm or value"
            )
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm or "norm"
        if not isinstance(check_val_every_n_epoch, int) or check_val_every_n_epoch < 1:
            raise ConfigError(
                f"trainer.check_val_every_n_epoch is {check_val_every_n_epoch!r}, expected >= 1"
            )
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.log_every_n_steps = log_every_n_steps
        self.enable_progress_bar = enable_progress_bar
        self.detect_anomaly = detect_anomaly
        self.inference_mode = inference_mode
        self.config = config
        # the gradient norm of the step (gradient_norm), and the gradients it is the norm of
        self._optimized: list[Tensor] = []
        self._norm_of: list[tuple[int, int]] | None = None
        self._norm = torch.zeros(())
        self._set_determinism(deterministic, benchmark)

        self.limits = {
            stage: _limit(value, f"limit_{stage}_batches")
            for stage, value in (
                ("train", limit_train_batches),
                ("val", limit_val_batches),
                ("test", limit_test_batches),
                ("predict", limit_predict_batches),
            )
        }
        self.overfit_batches = _limit(overfit_batches, "overfit_batches")
        if self.overfit_batches:
            self.limits["train"] = self.limits["val"] = self.overfit_batches
        self.num_sanity_val_steps = 2 if num_sanity_val_steps is None else num_sanity_val_steps
        if self.num_sanity_val_steps == -1:
            self.num_sanity_val_steps = float("inf")
        if isinstance(fast_dev_run, bool) or fast_dev_run in (0, 1):
            self.fast_dev_run: bool | int = bool(fast_dev_run)
        elif isinstance(fast_dev_run, int) and fast_dev_run > 0:
            self.fast_dev_run = fast_dev_run
        else:
            raise ConfigError(f"trainer.fast_dev_run is {fast_dev_run!r}, expected true or n > 0")
        if self.fast_dev_run:
            n = int(self.fast_dev_run)
            self.limits = {stage: n for stage in self.limits}
            self.max_steps, self.max_epochs, self.num_sanity_val_steps = n, 1, 0

        self.loggers: list[Any] = []
        if logger is True:
            from rnnkit.engine.loggers import CSVLogger

            self.loggers = [CSVLogger(self.default_root_dir)]
        else:
            self.loggers = _as_list(logger)
        if self.fast_dev_run:
            self.loggers = []  # Lightning's fast_dev_run logs nothing
        self.callbacks: list[Any] = _as_list(callbacks)
        for callback in self.callbacks:
            _check_callback(callback)
        kinds = {type(c) for c in self.callbacks}
        if enable_checkpointing is not False and ModelCheckpoint not in kinds:
            self.callbacks.append(ModelCheckpoint())
        if enable_model_summary is not False and ModelSummary not in kinds:
            self.callbacks.append(ModelSummary())

        # the state callbacks and tasks read
        self.state = TrainerState()
        self.current_epoch = 0
        self.global_step = 0
        self.batch_idx = 0
        self.callback_metrics: dict[str, Tensor] = {}
        self.progress_bar_metrics: dict[str, Tensor] = {}
        self.logged_metrics: dict[str, float] = {}
        self.sanity_checking = False
        self.should_stop = False
        self.validated = False  # a validation ran during this fit
        self.ckpt_path: str | None = None
        self.datamodule: Any = None
        self.task: Any = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: list[Any] = []
        self.num_training_batches: int | float = 0
        self.num_val_batches: int | float = 0
        self._pending: dict[str, Tensor] = {}
        self._sigterm = SigtermFlag()
        self._epoch_finished = True
        self._batches_done = 0  # batches of the current epoch, for a mid-epoch checkpoint
        self._hook_cache: dict[str, list[Any]] = {}

    # --- Lightning's read-only attributes -------------------------------------------------------
    is_global_zero = True
    global_rank = local_rank = node_rank = 0
    world_size = num_devices = num_nodes = 1

    @property
    def logger(self) -> Any:
        return self.loggers[0] if self.loggers else None

    @property
    def log_dir(self) -> str:
        folder = getattr(self.logger, "log_dir", None)
        return folder or self.default_root_dir

    @property
    def checkpoint_callback(self) -> ModelCheckpoint | None:
        return next((c for c in self.callbacks if isinstance(c, ModelCheckpoint)), None)

    @property
    def checkpoint_callbacks(self) -> list[ModelCheckpoint]:
        return [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]

    @property
    def early_stopping_callback(self) -> EarlyStopping | None:
        return next((c for c in self.callbacks if isinstance(c, EarlyStopping)), None)

    @property
    def received_sigterm(self) -> bool:
        return self._sigterm.received

    @property
    def lightning_module(self) -> Any:
        return self.task

    model = lightning_module

    # --- set-up ---------------------------------------------------------------------------------
    @staticmethod
    def _set_determinism(deterministic: Any, benchmark: bool | None) -> None:
        if deterministic not in (None, True, False, "warn"):
            raise ConfigError(f"trainer.deterministic is {deterministic!r}: true, false or warn")
        if deterministic:
            # cuBLAS is only deterministic with a fixed workspace (CUDA's documented setting)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        if deterministic is not None:
            torch.use_deterministic_algorithms(
                bool(deterministic), warn_only=deterministic == "warn"
            )
        if benchmark is not None:
            torch.backends.cudnn.benchmark = benchmark

    def _attach(self, task: Any, datamodule: Any, fn: str) -> None:
        self.state = TrainerState(fn=fn, status="running")
        self.task, self.datamodule = task, datamodule
        task._trainer = self
        task._log_sink = self._log
        if datamodule is not None:
            datamodule.trainer = self
        self.callback_metrics, self.progress_bar_metrics, self._pending = {}, {}, {}
        self.should_stop = False
        self._hook_cache = {}

    def _setup(self, stage: str) -> None:
        """Lightning's order: data (``prepare_data``, ``setup``), callbacks, the task."""
        if self.datamodule is not None:
            self.datamodule.prepare_data()
            self.datamodule.setup(stage)
        for callback in self._hooked("setup"):
            callback.setup(self, self.task, stage)
        if callable(getattr(self.task, "setup", None)):
            self.task.setup(stage)
        self.task.to(self.device)

    def _teardown(self, stage: str) -> None:
        if self.datamodule is not None:
            self.datamodule.teardown(stage)
        for callback in self._hooked("teardown"):
            callback.teardown(self, self.task, stage)
        if callable(getattr(self.task, "teardown", None)):
            self.task.teardown(stage)
        if self.state.status == "finished":  # an interrupted run's loggers are finalized
            for logger in self.loggers:
                logger.finalize("success")

    # --- hooks ----------------------------------------------------------------------------------
    def _hooked(self, hook: str) -> list[Any]:
        """The callbacks whose class implements ``hook`` (cached per run)."""
        if hook not in self._hook_cache:
            self._hook_cache[hook] = [c for c in self.callbacks if overrides(c, hook)]
        return self._hook_cache[hook]

    def _callbacks(self, hook: str, *args: Any, monitoring: bool | None = None) -> None:
        for callback in self._hooked(hook):
            if monitoring is None or isinstance(callback, ModelCheckpoint | EarlyStopping) == (
                monitoring
            ):
                getattr(callback, hook)(self, self.task, *args)

    def _task_hook(self, hook: str, *args: Any) -> Any:
        method = getattr(self.task, hook, None)
        return method(*args) if callable(method) else None

    def _call(self, hook: str, *args: Any) -> None:
        """Callbacks first, then the task (Lightning's order)."""
        self._callbacks(hook, *args)
        self._task_hook(hook, *args)

    # --- logging --------------------------------------------------------------------------------
    def _log(self, name: str, value: Any, prog_bar: bool = False) -> None:
        """The task's ``log``: keep ``value`` (a finished epoch value) under ``name``."""
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"log({name!r}): expected one number, got shape {value.shape}")
            value = value.detach().reshape(())
        else:
            value = torch.tensor(float(value))
        self.callback_metrics[name] = value
        if prog_bar:
            self.progress_bar_metrics[name] = value
        if not self.sanity_checking:
            self._pending[name] = value

    def _flush_metrics(self, step: int) -> None:
        """One row of what was logged since the last row, to every logger (with ``epoch``)."""
        if not self._pending:
            return
        row = {name: float(value) for name, value in self._pending.items()}
        row["epoch"] = self.current_epoch
        self._pending = {}
        self.logged_metrics.update(row)
        for logger in self.loggers:
            logger.log_metrics(row, step)
            logger.save()

    # --- data -----------------------------------------------------------------------------------
    def _loader(self, stage: str, given: Any = None) -> Any:
        if given is None:
            source = self.datamodule
            if source is None:
                raise ValueError(f"{stage}: pass a datamodule (or {stage}_dataloaders)")
            given = getattr(source, f"{'val' if stage == 'validate' else stage}_dataloader")()
        for loader in _as_list(given):
            seed_workers(loader)
        return given

    def _num_batches(self, loader: Any, stage: str) -> int | float:
        limit = self.limits[stage]
        try:
            length: int | float = len(loader)
        except TypeError:  # an iterable without a length
            length = float("inf")
        if isinstance(limit, int):
            return min(length, limit)
        if length == float("inf"):
            if limit != 1.0:
                raise ConfigError(
                    f"trainer.limit_{stage}_batches={limit}: a fraction needs a loader with a "
                    "length; give a number of batches"
                )
            return length
        count = int(length * limit)
        if count == 0 and limit > 0 and length > 0:
            raise ConfigError(
                f"trainer.limit_{stage}_batches={limit} of {length} batches is none; use at "
                f"least {1 / length:.3g} (or a number of batches)"
            )
        return count

    def _parts(self, loader: Any, stage: str, at_most: float = float("inf")) -> list[tuple]:
        """``(loader, batches)`` of each evaluation loader (a data module may return a list)."""
        loaders = _as_list(loader)
        return [(dl, min(self._num_batches(dl, stage), at_most)) for dl in loaders]

    def _batches(self, loader: Any, count: int | float) -> Iterable[tuple[int, Any]]:
        """``(index, batch)`` of the first ``count`` batches, on the device."""
        if count <= 0:
            return
        on_cpu = self.device.type == "cpu"
        for index, batch in enumerate(loader):
            yield index, (batch if on_cpu else to_device(batch, self.device))
            if index + 1 >= count:
                return

    # --- checkpoints (rnnkit.engine.checkpoint) -------------------------------------------------
    def save_checkpoint(self, filepath: str | os.PathLike, weights_only: bool = False) -> None:
        """Write the current state to ``filepath`` atomically (the module docstring's keys)."""
        checkpoint.save(self, filepath, weights_only)

    # --- fit ------------------------------------------------------------------------------------
    def fit(
        self,
        task: Any,
        datamodule: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
    ) -> None:
        """Train ``task`` on ``datamodule`` (or the given loaders), resuming from ``ckpt_path``."""
        self._attach(task, datamodule, "fit")
        self.ckpt_path = os.fspath(ckpt_path) if ckpt_path else None
        self.global_step, self.current_epoch, self.validated = 0, 0, False
        try:
            # the SIGTERM handler stays until the on_exception hooks (RunGuard saves) are done
            with self._sigterm, torch.autograd.set_detect_anomaly(self.detect_anomaly):
                try:
                    self._fit(task, ckpt_path, train_dataloaders, val_dataloaders)
                except BaseException as exc:
                    self._interrupted(exc)
                    raise
            self.state.status = "finished"
        finally:
            self.state.stage = None
            self._teardown("fit")

    def _fit(self, task: Any, ckpt_path: Any, train_dataloaders: Any, val_dataloaders: Any):
        self._setup("fit")
        optimizer, self.lr_scheduler_configs = configure_optimizers(task)
        self.optimizers = [optimizer]
        start_epoch, skip = 0, 0
        if self.ckpt_path:
            state = checkpoint.load(self.ckpt_path, self.config)
            checkpoint.restore_modules(self, state, callbacks=True)
            start_epoch, skip = checkpoint.restore_training(self, state)
            self.current_epoch = start_epoch
        self._call("on_fit_start")
        task.zero_grad()
        val_loader = self._val_loader(val_dataloaders)
        if self._will_train(start_epoch):
            if not self.ckpt_path:  # as Lightning: no sanity check when resuming
                with isolate_rng():  # it draws nothing that training sees
                    self._sanity_check(val_loader)
            train_loader = self._loader("train", train_dataloaders)
            self._fit_loop(train_loader, val_loader, start_epoch, skip)
        self._call("on_fit_end")

    def _interrupted(self, exc: BaseException) -> None:
        self.state.status = "interrupted"
        self._callbacks("on_exception", exc)
        self._task_hook("on_exception", exc)
        for logger in self.loggers:
            logger.finalize("failed")

    def _val_loader(self, given: Any) -> Any:
        """The validation loader, or ``None`` when there is none or it is limited to 0."""
        if self.limits["val"] == 0:
            return None
        if given is None and self.datamodule is not None:
            has = getattr(type(self.datamodule), "val_dataloader", None)
            if has is None or getattr(self.datamodule, "has_validation", True) is False:
                return None
        try:
            return self._loader("validate", given)
        except NotImplementedError:  # a data module without a validation split
            return None

    def _will_train(self, start_epoch: int) -> bool:
        epochs_left = self.max_epochs == -1 or start_epoch < self.max_epochs
        steps_left = self.max_steps == -1 or self.global_step < self.max_steps
        return epochs_left and steps_left and self.limits["train"] != 0

    def _sanity_check(self, val_loader: Any) -> None:
        if val_loader is None or not self.num_sanity_val_steps:
            return
        parts = self._parts(val_loader, "val", at_most=self.num_sanity_val_steps)
        if not sum(count for _, count in parts):
            return
        self.sanity_checking = True
        self.state.stage = "sanity_check"
        try:
            self._callbacks("on_sanity_check_start")
            self._evaluate("validation", parts)
            self._callbacks("on_sanity_check_end")
        finally:
            self.sanity_checking = False
        # what the sanity batches logged is not a result
        self.callback_metrics, self.progress_bar_metrics, self._pending = {}, {}, {}

    def _fit_loop(self, train_loader: Any, val_loader: Any, start_epoch: int, skip: int) -> None:
        self.num_training_batches = self._num_batches(train_loader, "train")
        val_parts = self._parts(val_loader, "val") if val_loader is not None else []
        self.num_val_batches = sum(count for _, count in val_parts)
        if self.overfit_batches:  # the same first batches every epoch
            train_loader = [b for _, b in self._batches(train_loader, self.num_training_batches)]
        self.state.stage = "train"
        self._call("on_train_start")
        epoch = start_epoch
        while self.max_epochs == -1 or epoch < self.max_epochs:
            self.current_epoch = epoch
            self._train_epoch(train_loader, self.num_training_batches - skip)
            skip = 0
            validate = (epoch + 1) % self.check_val_every_n_epoch == 0 or self.should_stop
            if self.num_val_batches and validate:
                self.state.stage = "validate"
                self._evaluate("validation", val_parts)
                self.validated = True
                self.state.stage = "train"
            self._train_epoch_end()
            if self.received_sigterm:  # before the count moves on: resume at the next epoch
                raise Terminated(f"SIGTERM at step {self.global_step}")
            epoch += 1
            self.current_epoch = epoch  # as Lightning: the epochs completed, once one ends
            if self._done(epoch):
                break
        self._call("on_train_end")

    def _done(self, epochs_run: int) -> bool:
        if self.max_steps != -1 and self.global_step >= self.max_steps:
            return True
        return self.should_stop and epochs_run >= self.min_epochs

    def gradient_norm(self) -> Tensor:
        """The 2-norm of all the gradients of the optimized parameters, as they are now.

        Computed once for the gradients of a step, however many ask: the NaN guard checks it
        before the optimizer step and norm clipping then scales by it, as
        ``clip_grad_norm_`` would have computed it. A gradient changed in between (in place,
        or replaced) is seen through its tensor's version counter, and the norm is computed
        again.
        """
        grads = [p.grad for p in self._optimized if p.grad is not None]
        key = [(id(g), g._version) for g in grads]
        if self._norm_of != key:
            self._norm = get_total_norm(grads) if grads else torch.zeros(())
            self._norm_of = key
        return self._norm

    def _train_epoch(self, loader: Any, count: int | float) -> None:
        """The training steps of one epoch (see the module docstring)."""
        task, optimizer = self.task, self.optimizers[0]
        sampler = getattr(loader, "sampler", None)
        for owner in (sampler, getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            if callable(getattr(owner, "set_epoch", None)):
                owner.set_epoch(self.current_epoch)
        self._epoch_finished, self._batches_done = False, 0
        self._call("on_train_epoch_start")
        hooks = {h: self._hooked(h) for h in ("on_train_batch_start", "on_train_batch_end")}
        task_hooks = [h for h in TASK_STEP_HOOKS if callable(getattr(task, h, None))]
        backward_hooks = any(
            self._hooked(h) for h in ("on_before_backward", "on_after_backward")
        ) or bool(task_hooks)
        before_step = self._hooked("on_before_optimizer_step")
        schedulers = self.lr_scheduler_configs
        step_schedulers_due = any(c.interval == "step" for c in schedulers)
        clip = self.gradient_clip_val or 0.0
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self._optimized, self._norm_of = params, None
        by_value = self.gradient_clip_algorithm == "value"
        done_early = False
        for batch_idx, batch in self._batches(loader, count):
            self.batch_idx = batch_idx
            for callback in hooks["on_train_batch_start"]:
                callback.on_train_batch_start(self, task, batch, batch_idx)
            if "on_train_batch_start" in task_hooks:
                task.on_train_batch_start(batch, batch_idx)
            out = task.training_step(batch, batch_idx)
            loss = out["loss"] if isinstance(out, Mapping) else out
            optimizer.zero_grad(set_to_none=True)
            self._norm_of = None  # new gradients (a freed tensor's id may come back)
            if loss is not None:
                if backward_hooks:
                    self._callbacks("on_before_backward", loss)
                    if "on_before_backward" in task_hooks:
                        task.on_before_backward(loss)
                loss.backward()
                if backward_hooks:
                    self._callbacks("on_after_backward")
                    if "on_after_backward" in task_hooks:
                        task.on_after_backward()
            for callback in before_step:
                callback.on_before_optimizer_step(self, task, optimizer)
            if "on_before_optimizer_step" in task_hooks:
                task.on_before_optimizer_step(optimizer)
            if clip > 0 and by_value:
                clip_grad_value_(params, clip)
            elif clip > 0:  # clip_grad_norm_, with the norm the hooks may have asked for already
                clip_grads_with_norm_(params, clip, self.gradient_norm())
            optimizer.step()
            self.global_step += 1
            self._batches_done = batch_idx + 1
            if step_schedulers_due:
                step_schedulers(schedulers, "step", batch_idx, self.callback_metrics)
            if hooks["on_train_batch_end"] or "on_train_batch_end" in task_hooks:
                outputs = {"loss": loss.detach()} if loss is not None else None
                for callback in hooks["on_train_batch_end"]:
                    callback.on_train_batch_end(self, task, outputs, batch, batch_idx)
                if "on_train_batch_end" in task_hooks:
                    task.on_train_batch_end(outputs, batch, batch_idx)
            last = batch_idx + 1 >= count
            if self.max_steps != -1 and self.global_step >= self.max_steps:
                done_early = True
            elif self.should_stop and self.current_epoch + 1 >= self.min_epochs:
                done_early = True
            if self.received_sigterm and not (last or done_early):
                raise Terminated(f"SIGTERM at step {self.global_step}")
            if done_early:
                break
        self._epoch_finished = True

    def _train_epoch_end(self) -> None:
        """Lightning's order of hooks: callbacks, the task (which logs the epoch's training
        values), the schedulers, the checkpoint and early-stopping callbacks.

        The loggers get the epoch's row *before* the checkpoint callbacks write ``last.ckpt``
        (Lightning writes it after): a process killed between the two then leaves a row at a
        step the checkpoint has not reached, which a resume drops and logs again
        (``keep_csv_history`` keeps the rows before the checkpoint's ``global_step``), rather
        than a checkpoint whose epoch row was never written and is never logged again.
        """
        self._callbacks("on_train_epoch_end", monitoring=False)
        self._task_hook("on_train_epoch_end")
        metrics = self.callback_metrics
        step_schedulers(self.lr_scheduler_configs, "epoch", self.current_epoch, metrics)
        self._flush_metrics(max(self.global_step - 1, 0))
        self._callbacks("on_train_epoch_end", monitoring=True)
        self._flush_metrics(max(self.global_step - 1, 0))  # what those callbacks logged, if any

    # --- evaluation -----------------------------------------------------------------------------
    def _evaluate(self, kind: str, parts: list[tuple[Any, int | float]]) -> list[Any]:
        """One pass of ``validation``, ``test`` or ``predict`` over each ``(loader, batches)``,
        with the task in ``eval()`` mode (every submodule's mode restored afterwards). With
        several loaders the steps and batch hooks also get ``dataloader_idx`` (Lightning's
        sequential order); ``predict`` then returns one list of outputs per loader."""
        task = self.task
        modes = [(m, m.training) for m in task.modules()]
        task.eval()
        step = getattr(task, f"{kind}_step")
        outputs: list[list[Any]] = []
        batch_hooks = (
            self._hooked(f"on_{kind}_batch_start"),
            self._hooked(f"on_{kind}_batch_end"),
        )
        try:
            self._call(f"on_{kind}_start")
            if kind != "predict":
                self._call(f"on_{kind}_epoch_start")
            grad_off = torch.inference_mode() if self.inference_mode else torch.no_grad()
            with grad_off:
                for index, (loader, count) in enumerate(parts):
                    extra = (index,) if len(parts) > 1 else ()
                    outputs.append([])
                    for batch_idx, batch in self._batches(loader, count):
                        args = (batch, batch_idx, *extra)
                        for callback in batch_hooks[0]:
                            getattr(callback, f"on_{kind}_batch_start")(self, task, *args)
                        out = step(*args)
                        if kind == "predict":
                            outputs[-1].append(out)
                        for callback in batch_hooks[1]:
                            getattr(callback, f"on_{kind}_batch_end")(self, task, out, *args)
                        if self.received_sigterm and kind == "validation":
                            raise Terminated(f"SIGTERM at step {self.global_step}")
            if kind != "predict":
                self._call(f"on_{kind}_epoch_end")
                if not self.sanity_checking:
                    # Lightning's step: a validation inside fit runs before its last batch's
                    # step is counted for the loggers
                    in_fit = self.state.fn == "fit"
                    self._flush_metrics(max(self.global_step - in_fit, 0))
            self._call(f"on_{kind}_end")
        finally:
            for module, training in modes:
                module.training = training
        return outputs[0] if len(outputs) == 1 else outputs

    def _run_stage(
        self, fn: str, kind: str, task: Any, datamodule: Any, dataloaders: Any, ckpt_path: Any
    ) -> list[Any]:
        self._attach(task, datamodule, fn)
        self.state.stage = fn
        try:
            self._setup(fn)
            task.zero_grad()
            if ckpt_path == "best":  # Lightning's shorthand
                ckpt_path = getattr(self.checkpoint_callback, "best_model_path", "") or None
            if ckpt_path:
                state = checkpoint.load(ckpt_path, self.config)
                checkpoint.restore_modules(self, state, callbacks=False)
            stage = {"validation": "val", "test": "test", "predict": "predict"}[kind]
            outputs = self._evaluate(kind, self._parts(self._loader(fn, dataloaders), stage))
            self.state.status = "finished"
            return outputs
        except BaseException as exc:
            self._interrupted(exc)
            raise
        finally:
            self.state.stage = None
            self._teardown(fn)

    def _results(self, prefixes: tuple[str, ...], verbose: bool) -> list[dict[str, float]]:
        results = {k: float(v) for k, v in self.callback_metrics.items() if k.startswith(prefixes)}
        if verbose:
            for name, value in sorted(results.items()):
                log.info(f"{name}  {value:.6g}")
        return [results]

    def validate(
        self,
        task: Any,
        datamodule: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        verbose: bool = True,
        dataloaders: Any = None,
    ) -> list[dict[str, float]]:
        """Run the validation split once; return ``[{metric: value}]`` (Lightning's form)."""
        self._run_stage("validate", "validation", task, datamodule, dataloaders, ckpt_path)
        return self._results(("val",), verbose)

    def test(
        self,
        task: Any,
        datamodule: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool = True,
        verbose: bool = True,
        dataloaders: Any = None,
    ) -> list[dict[str, float]]:
        """Test ``task`` (with the weights of ``ckpt_path`` when given); ``[{metric: value}]``.

        ``weights_only`` must stay true: nothing loaded from disk may run code.
        """
        if not weights_only:
            raise ValueError("test: checkpoints load with weights_only=True only")
        self._run_stage("test", "test", task, datamodule, dataloaders, ckpt_path)
        return self._results(("test",), verbose)

    def predict(
        self,
        task: Any,
        datamodule: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        dataloaders: Any = None,
    ) -> list[Any]:
        """``predict_step``'s output for every batch of the predict split, in order."""
        return self._run_stage("predict", "predict", task, datamodule, dataloaders, ckpt_path)
