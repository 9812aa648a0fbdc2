"""The one ``configure_optimizers`` recipe every task shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn


def build_optimizers(
    module: nn.Module,
    optimizer: Callable[..., Any],
    scheduler: Callable[..., Any] | None = None,
    monitor: str = "val/loss",
) -> Any:
    """Optimizer over ``module``'s trainable parameters, plus an epoch scheduler on ``monitor``."""
    opt = optimizer(params=[p for p in module.parameters() if p.requires_grad])
    if scheduler is None:
        return {"optimizer": opt}
    return {
        "optimizer": opt,
        "lr_scheduler": {
            "scheduler": scheduler(optimizer=opt),
            "monitor": monitor,
            "interval": "epoch",
            "frequency": 1,
        },
    }
