"""``NaNGuard``: stop training at the first NaN or infinite loss, before it reaches the weights.

Optionally also at a *diverging* loss: ``max_loss`` (``callbacks.nan_guard.max_loss=1e4``) stops
the run when a training loss exceeds it, since a loss of 4e6 is as lost as a NaN, only slower.

The loss is checked before ``backward`` and the gradients before the optimizer step, so the
weights never take a non-finite update and no checkpoint is written with them: the last
checkpoint on disk is the last good one. The error names the step and the likely causes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import get_total_norm

from rnnkit.engine import Callback
from rnnkit.errors import ConfigError, NonFiniteLossError


def _finite(value: Tensor) -> bool:
    """Whether every element of ``value`` is finite; a 0-d tensor (a loss, a norm) is read as
    one float, 20x cheaper than ``torch.isfinite`` on CPU and the same one host sync."""
    if value.dim() == 0:
        return math.isfinite(value.item())
    return bool(torch.isfinite(value).all())


def _learning_rate(trainer: Any) -> float | None:
    try:
        return float(trainer.optimizers[0].param_groups[0]["lr"])
    except (IndexError, KeyError, AttributeError, TypeError):
        return None


def _last_checkpoint(trainer: Any) -> str | None:
    callback = getattr(trainer, "checkpoint_callback", None)
    if callback is None:
        return None
    return getattr(callback, "last_model_path", None) or getattr(callback, "best_model_path", None)


class NaNGuard(Callback):
    """Raise :class:`~rnnkit.errors.NonFiniteLossError` on a NaN/inf loss or gradient.

    Args:
        check_gradients: also check every gradient before the optimizer step (an overflow
            there turns the next loss into NaN).
        max_loss: also stop when a training loss is above this (``None``: only NaN/inf).
    """

    def __init__(self, check_gradients: bool = True, max_loss: float | None = None) -> None:
        super().__init__()
        if max_loss is not None and not max_loss > 0:
            raise ConfigError(f"NaNGuard: max_loss must be a positive number, got {max_loss!r}")
        self.check_gradients = check_gradients
        self.max_loss = max_loss
        # the parameters of the module trained, collected at its first optimizer step (after
        # lazy modules have materialized theirs)
        self._module: torch.nn.Module | None = None
        self._parameters: list[torch.nn.Parameter] = []
        self._batch_idx = 0  # the batch of the epoch being trained, for the message

    def on_train_batch_start(self, trainer: Any, task: Any, batch: Any, batch_idx: int) -> None:
        self._batch_idx = batch_idx

    def on_before_backward(self, trainer: Any, task: Any, loss: Tensor) -> None:
        loss = loss.detach()
        if not _finite(loss):
            value = "NaN" if torch.isnan(loss).any() else "infinite"
            self._fail(trainer, f"the training loss is {value}")
        if self.max_loss is not None and loss.max() > self.max_loss:
            self._fail(
                trainer,
                f"the training loss diverged to {float(loss.max()):.4g} (above "
                f"callbacks.nan_guard.max_loss={self.max_loss:g})",
            )

    def on_before_optimizer_step(self, trainer: Any, task: Any, optimizer: Any) -> None:
        if not self.check_gradients:
            return
        # one host sync a step: the 2-norm over all gradients, which NaN and inf propagate to
        # (on CPU 5x cheaper than the max-norm). It also overflows on huge finite values, so
        # only a non-finite norm has every gradient checked, and a finite gradient never stops
        if _finite(self._gradient_norm(trainer, task)):
            return
        for name, parameter in task.named_parameters():
            grad = parameter.grad
            if grad is not None and not torch.isfinite(grad).all():
                self._fail(trainer, f"the gradient of '{name}' is not finite")

    def _gradient_norm(self, trainer: Any, task: Any) -> Tensor:
        """The gradients' 2-norm: rnnkit's trainer computes it once a step for this check and
        for norm clipping (``Trainer.gradient_norm``); under Lightning, computed here."""
        if callable(getattr(trainer, "gradient_norm", None)):
            return trainer.gradient_norm()
        if self._module is not task:  # walking the module tree every step cost more
            self._module, self._parameters = task, list(task.parameters())
        grads = [p.grad for p in self._parameters if p.grad is not None]
        return get_total_norm(grads) if grads else torch.zeros(())

    def _fail(self, trainer: Any, what: str) -> None:
        lr = _learning_rate(trainer)
        lr_text = f" (now {lr:g})" if lr is not None else ""
        clip = getattr(trainer, "gradient_clip_val", None)
        clip_text = (
            f"lower trainer.gradient_clip_val (now {clip:g})"
            if clip
            else "set gradient clipping, e.g. trainer.gradient_clip_val=1.0"
        )
        last = _last_checkpoint(trainer)
        kept = f"; the last good checkpoint is {last}" if last else ""
        raise NonFiniteLossError(
            f"{what} at step {trainer.global_step} (epoch {trainer.current_epoch}, batch "
            f"{self._batch_idx}): the learning rate may be too high{lr_text} or the gradients "
            f"exploded; lower the learning rate (task.optimizer.lr) or {clip_text}{kept}"
        )
