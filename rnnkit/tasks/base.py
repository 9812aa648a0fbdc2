"""``Task``: the recipe every task shares (optimizer, metric hooks, data state, predictions).

A task is an :class:`rnnkit.engine.TaskModule` (plain torch with Lightning's hook names; a
Lightning ``Trainer`` runs it through :func:`rnnkit.engine.lightning.as_lightning_module`) that
receives a built model. What differs between tasks is the loss, the metrics (a
:class:`~rnnkit.tasks.metrics.StageMetrics` in ``self.metrics``), the steps and how a
prediction reads as text; this base holds the rest once:

- ``configure_optimizers``: the partial ``optimizer`` over the trainable parameters, plus the
  partial ``scheduler`` stepped once per epoch on ``val/loss`` (``train/loss`` without a
  validation split) when one is given;
- the metric hooks: the end of every training, validation and test epoch logs that stage's
  metrics (:meth:`~rnnkit.tasks.metrics.StageMetrics.log_epoch`: epoch values, best value,
  baselines, constants), and the sanity-check batches never count as the best epoch;
- the monitored metric: ``monitor`` and ``monitor_mode`` name the metric that selects the best
  checkpoint and stops early (``configs/callbacks`` read ``${task.monitor}`` and
  ``${task.monitor_mode}``); every task config sets its own default (``val/acc`` for
  classification). They describe the run, not the model, so they are not hyper-parameters;
- ``data_state``: the constructor arguments fitted on the data (vocabularies, label names,
  scalers). They come from ``datamodule.info`` (see :meth:`data_arguments`), never from the
  config, and are not hyper-parameters: a checkpoint carries them once, in the datamodule's
  state, and :func:`rnnkit.train.load_task` hands them back to the task;
- :meth:`format_predictions`: the lines ``scripts/predict.py`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rnnkit.engine import TaskModule
from rnnkit.errors import ConfigError
from rnnkit.tasks.metrics import StageMetrics

MONITOR_MODES = ("min", "max")


class Task(TaskModule):
    """Base of the rnnkit tasks; subclasses set ``self.model``, ``self.metrics``, the steps.

    Subclasses take ``monitor`` and ``monitor_mode`` and pass them to ``super().__init__``,
    then call ``self.save_hyperparameters(ignore=self.not_hyperparameters)`` with their own
    arguments, which must include ``optimizer`` and ``scheduler``.

    Args:
        monitor: the logged metric that selects the best checkpoint and stops early
            (``val/acc``, ``val/f1``, ``val/loss``, ...).
        monitor_mode: ``"max"`` when larger is better, ``"min"`` otherwise.
    """

    data_state: ClassVar[tuple[str, ...]] = ()
    #: the metric names (after ``test/``, ``test1/``, ...) that the console's last line shows;
    #: ``None``: every one. A task that logs dozens (baselines, evaluations) names its headline;
    #: ``summary.json`` and ``metrics.csv`` always hold all of them.
    summary_metrics: ClassVar[tuple[str, ...] | None] = None
    metrics: StageMetrics

    def __init__(self, monitor: str = "val/loss", monitor_mode: str = "min") -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(
                f"task.monitor must be a metric name like 'val/loss', got {monitor!r}"
            )
        if monitor_mode not in MONITOR_MODES:
            raise ConfigError(f"task.monitor_mode must be 'min' or 'max', got {monitor_mode!r}")
        self.monitor = monitor
        self.monitor_mode = monitor_mode

    @property
    def not_hyperparameters(self) -> list[str]:
        """Constructor arguments never saved as hyper-parameters: modules, data state and the
        monitored metric (a property of the run, not of the model)."""
        return ["model", "loss", "monitor", "monitor_mode", *self.data_state]

    @classmethod
    def data_arguments(cls, info: Mapping[str, Any]) -> dict[str, Any]:
        """The ``data_state`` arguments of this task that ``info`` (the data) provides."""
        return {name: info[name] for name in cls.data_state if name in info}

    def configure_optimizers(self) -> dict[str, Any]:
        """The partial optimizer on the trainable parameters, and the scheduler if any.

        A scheduler that reads a metric (``ReduceLROnPlateau``) reads ``val/loss``, or
        ``train/loss`` when the data has no validation split.
        """
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.hparams.optimizer(params=params)
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": self.hparams.scheduler(optimizer=optimizer),
                "monitor": "val/loss" if self._validates() else "train/loss",
                "interval": "epoch",
                "frequency": 1,
            },
        }

    def _validates(self) -> bool:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        return bool(getattr(datamodule, "has_validation", True))

    def on_train_start(self) -> None:
        self.metrics.on_train_start()

    def on_train_epoch_end(self) -> None:
        self.metrics.log_epoch(self, "train")

    def on_validation_epoch_end(self) -> None:
        self.metrics.log_epoch(self, "val")

    def on_test_epoch_end(self) -> None:
        self.metrics.log_epoch(self, "test")

    def format_predictions(self, predictions: Sequence[Any], datamodule: Any) -> list[str]:
        """The text lines of ``predictions`` (what ``predict_step`` returned, flattened)."""
        raise NotImplementedError(f"{type(self).__name__} does not format predictions")
