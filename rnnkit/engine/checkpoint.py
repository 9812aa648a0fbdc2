"""The checkpoints of rnnkit's :class:`~rnnkit.engine.Trainer`: what one holds, and putting it
back.

A checkpoint has the keys of ``docs/design.md``: ``state_dict``, ``hyper_parameters``,
``epoch``, ``global_step``, ``loop`` (whether the epoch had finished, how many of its batches
ran) and, unless ``weights_only``, ``optimizer_states``, ``lr_schedulers``, ``callbacks`` (each
callback's ``state_dict`` under its ``state_key``) and the data module's state under its
class's ``__qualname__``; :func:`~rnnkit.utils.checkpointing.save_checkpoint_file` adds
``rnnkit`` (the run's config) and writes it atomically. The callbacks' and the task's
``on_save_checkpoint`` / ``on_load_checkpoint`` hooks run as Lightning runs them.

:func:`restore_modules` puts back what ``validate``/``test``/``predict`` need (weights, data
state, and for ``fit`` the callbacks' states); :func:`restore_training` the rest of a ``fit``
(optimizer, schedulers, counters) and says where the loop continues.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["checkpoint_dict", "load", "restore_modules", "restore_training", "save"]


def checkpoint_dict(trainer: Any, weights_only: bool) -> dict[str, Any]:
    """The checkpoint of ``trainer``'s current state (the module docstring's keys)."""
    task = trainer.task
    checkpoint: dict[str, Any] = {
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
        "loop": {"epoch_finished": trainer._epoch_finished, "batches": trainer._batches_done},
    }
    if not weights_only:
        checkpoint["optimizer_states"] = [o.state_dict() for o in trainer.optimizers]
        checkpoint["lr_schedulers"] = [
            c.scheduler.state_dict() for c in trainer.lr_scheduler_configs
        ]
        states = {}
        for callback in trainer.callbacks:
            state = callback.state_dict() if hasattr(callback, "state_dict") else None
            if state:
                states[callback.state_key] = state
        checkpoint["callbacks"] = states
        if trainer.datamodule is not None:
            state = trainer.datamodule.state_dict()
            if state:
                checkpoint[type(trainer.datamodule).__qualname__] = state
        trainer._callbacks("on_save_checkpoint", checkpoint)
    trainer._task_hook("on_save_checkpoint", checkpoint)
    return checkpoint


def save(trainer: Any, filepath: str | os.PathLike, weights_only: bool = False) -> None:
    """Write ``trainer``'s checkpoint to ``filepath`` atomically, with ``trainer.config``."""
    from rnnkit.utils.checkpointing import save_checkpoint_file

    if trainer.task is None:
        raise RuntimeError("save_checkpoint: no task attached (call fit first)")
    Path(filepath).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint_file(checkpoint_dict(trainer, weights_only), filepath, trainer.config)


def load(path: str | os.PathLike, config: Any = None) -> dict[str, Any]:
    """A checkpoint (``weights_only=True``) whose model config matches ``config`` (if given)."""
    from rnnkit.utils.checkpointing import check_config_matches, load_checkpoint

    checkpoint = load_checkpoint(path)
    if config is not None:
        check_config_matches(checkpoint, config, path=path)
    return checkpoint


def restore_modules(trainer: Any, checkpoint: dict[str, Any], callbacks: bool) -> None:
    """Weights (after the task's ``on_load_checkpoint``), data state, callback states."""
    trainer._task_hook("on_load_checkpoint", checkpoint)
    trainer.task.load_state_dict(checkpoint["state_dict"])
    datamodule = trainer.datamodule
    name = type(datamodule).__qualname__ if datamodule is not None else None
    if name in checkpoint:
        datamodule.load_state_dict(checkpoint[name])
    if callbacks:
        trainer._callbacks("on_load_checkpoint", checkpoint)
        states = checkpoint.get("callbacks") or {}
        for callback in trainer.callbacks:
            key = getattr(callback, "state_key", None)
            if key in states and callable(getattr(callback, "load_state_dict", None)):
                callback.load_state_dict(states[key])


def restore_training(trainer: Any, checkpoint: dict[str, Any]) -> tuple[int, int]:
    """Optimizer, schedulers, ``global_step``; return ``(first epoch, batches already run)``:
    a checkpoint of a finished epoch continues with the next one, a mid-epoch one with the
    rest of its epoch."""
    for optimizer, state in zip(
        trainer.optimizers, checkpoint.get("optimizer_states", []), strict=False
    ):
        optimizer.load_state_dict(state)
    for config, state in zip(
        trainer.lr_scheduler_configs, checkpoint.get("lr_schedulers", []), strict=False
    ):
        config.scheduler.load_state_dict(state)
    trainer.global_step = int(checkpoint.get("global_step", 0))
    loop = checkpoint.get("loop") or {"epoch_finished": True}
    epoch = int(checkpoint.get("epoch", 0))
    if loop["epoch_finished"]:
        return epoch + 1, 0
    return epoch, int(loop.get("batches", 0))
