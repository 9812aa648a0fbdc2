"""Which driver runs a trainer config, and what each driver is handed.

``trainer._target_`` decides. ``rnnkit.engine.Trainer`` (``configs/trainer/default.yaml``,
``cpu``, ``gpu``) runs the task, data module, callbacks and loggers as they are, and imports no
Lightning. Any other target (Lightning's ``Trainer``: ``trainer=ddp``, ``trainer=ddp_cpu``)
gets them through :mod:`rnnkit.engine.lightning`'s adapters, with the
:class:`~rnnkit.engine.lightning.AtomicCheckpointIO` plugin; Lightning is imported only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from rnnkit.engine import Trainer
from rnnkit.utils.plain import to_plain
from rnnkit.utils.targets import instantiate

__all__ = ["build_trainer", "driven", "uses_lightning"]

ENGINE_TARGETS = ("rnnkit.engine.Trainer", "rnnkit.engine.trainer.Trainer")


def uses_lightning(trainer_cfg: DictConfig) -> bool:
    """Whether the trainer config builds a Lightning ``Trainer`` (not rnnkit's)."""
    return str(trainer_cfg.get("_target_", "")) not in ENGINE_TARGETS


def build_trainer(
    trainer_cfg: DictConfig,
    callbacks: Sequence[Any] = (),
    loggers: Sequence[Any] = (),
    config: Any = None,
    **overrides: Any,
) -> tuple[Any, list[Any]]:
    """The trainer of ``trainer_cfg`` with ``callbacks`` and ``loggers``, and the loggers it
    writes to (Lightning's ``CSVLogger`` in place of rnnkit's on the Lightning path).

    Args:
        config: the run's composed config, stored in every checkpoint and compared on resume
            (``None``: evaluation, nothing is written).
        overrides: trainer arguments over the config's (``limit_val_batches=0``, ...).
    """
    # plain data once, not at every checkpoint save (converting a DictConfig costs 1-4 ms);
    # the config is complete here: train() filled in its sizes from the data before
    config = to_plain(config) if config is not None else None
    if not uses_lightning(trainer_cfg):
        trainer = instantiate(
            trainer_cfg, callbacks=list(callbacks), logger=list(loggers) or False, **overrides
        )
        trainer.config = config  # not an argument: Hydra's instantiate takes `config` itself
        return trainer, list(loggers)
    from rnnkit.engine import lightning as adapters

    loggers = [adapters.as_lightning_logger(logger) for logger in loggers]
    plugins = [adapters.AtomicCheckpointIO(config=config)] if config is not None else []
    trainer = instantiate(
        trainer_cfg,
        callbacks=[adapters.as_lightning_callback(c) for c in callbacks],
        logger=loggers or False,
        plugins=plugins,  # atomic, pickle-free, config-checked checkpoints
        **overrides,
    )
    return trainer, loggers


def driven(trainer: Any, task: Any, datamodule: Any) -> tuple[Any, Any]:
    """What ``trainer`` runs: the task and data module themselves (rnnkit's trainer), or their
    Lightning adapters."""
    if isinstance(trainer, Trainer):
        return task, datamodule
    from rnnkit.engine.lightning import as_lightning_datamodule, as_lightning_module

    return as_lightning_module(task), as_lightning_datamodule(datamodule)
