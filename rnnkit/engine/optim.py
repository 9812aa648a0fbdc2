"""What ``configure_optimizers`` returns, read as Lightning reads it, and the schedulers' steps.

Accepted returns: an optimizer; ``{"optimizer": opt, "lr_scheduler": sched_or_config}``;
``([opt], [sched_or_config, ...])``; ``[opt]``. A scheduler config is Lightning's dict:
``{"scheduler", "interval": "epoch" | "step", "frequency": 1, "monitor", "strict": True}``. A
``ReduceLROnPlateau`` steps on ``monitor`` read from ``trainer.callback_metrics``. One
optimizer per task: several (GANs, ...) need a Lightning trainer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from rnnkit.engine.monitor import monitored
from rnnkit.errors import ConfigError

__all__ = ["SchedulerConfig", "configure_optimizers", "step_schedulers"]


@dataclass
class SchedulerConfig:
    """One scheduler and when it steps (Lightning's ``LRSchedulerConfig``)."""

    scheduler: Any
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None
    strict: bool = True

    @property
    def reduce_on_plateau(self) -> bool:
        return isinstance(self.scheduler, ReduceLROnPlateau)


def _scheduler_config(entry: Any, owner: str) -> SchedulerConfig:
    if isinstance(entry, Mapping):
        if "scheduler" not in entry:
            raise ConfigError(
                f"{owner}.configure_optimizers: an lr_scheduler dict needs a 'scheduler'"
            )
        known = {"scheduler", "interval", "frequency", "monitor", "strict", "name"}
        config = SchedulerConfig(**{k: v for k, v in entry.items() if k in known and k != "name"})
    else:
        config = SchedulerConfig(scheduler=entry)
    if config.interval not in ("epoch", "step"):
        raise ConfigError(
            f"{owner}.configure_optimizers: lr_scheduler interval must be 'epoch' or 'step', "
            f"got {config.interval!r}"
        )
    if config.reduce_on_plateau and not config.monitor:
        raise ConfigError(
            f"{owner}.configure_optimizers: a ReduceLROnPlateau scheduler needs a 'monitor'"
        )
    return config


def _lists_pair(out: Any) -> bool:
    """Lightning's ``([optimizers], [schedulers])`` form."""
    pair = isinstance(out, (list, tuple)) and len(out) == 2
    return pair and all(isinstance(x, list) for x in out)


def configure_optimizers(task: Any) -> tuple[Optimizer, list[SchedulerConfig]]:
    """The optimizer and the scheduler configs of ``task.configure_optimizers()``."""
    owner = type(task).__name__
    out = task.configure_optimizers()
    schedulers: Sequence[Any] = ()
    if isinstance(out, Mapping):
        optimizers = [out["optimizer"]]
        schedulers = [out["lr_scheduler"]] if out.get("lr_scheduler") is not None else []
    elif _lists_pair(out):
        optimizers, schedulers = out
    elif isinstance(out, (list, tuple)):
        optimizers = list(out)
    else:
        optimizers = [out]
    if len(optimizers) != 1 or not isinstance(optimizers[0], Optimizer):
        raise ConfigError(
            f"{owner}.configure_optimizers returned {len(optimizers)} optimizers; rnnkit's "
            "Trainer runs one (several need a Lightning trainer config: trainer._target_="
            "lightning.pytorch.trainer.Trainer)"
        )
    return optimizers[0], [_scheduler_config(s, owner) for s in schedulers]


def step_schedulers(
    configs: Sequence[SchedulerConfig], interval: str, index: int, metrics: Mapping[str, Any]
) -> None:
    """Step every ``interval`` scheduler due after the ``index``-th (0-based) epoch or step.

    A plateau scheduler reads its ``monitor`` from ``metrics``; a missing one is an error when
    ``strict`` (Lightning's default), else that step is skipped.
    """
    for config in configs:
        if config.interval != interval or (index + 1) % config.frequency:
            continue
        if not config.reduce_on_plateau:
            config.scheduler.step()
            continue
        value = monitored(metrics, config.monitor, "ReduceLROnPlateau", config.strict)
        if value is None:
            continue
        config.scheduler.step(float(value))
