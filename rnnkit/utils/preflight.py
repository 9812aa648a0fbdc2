"""Checks a run passes before anything is built: a mistake costs a second, not a training.

:func:`check_train_config` runs first in ``train()``; :func:`check_output_file` before
``predict()`` spends any time. Each failure is one :class:`~rnnkit.errors.ConfigError` (or
:class:`~rnnkit.errors.AcceleratorUnavailableError`, :class:`~rnnkit.errors.OutputError`)
naming the key and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from rnnkit.errors import AcceleratorUnavailableError, ConfigError, output_error
from rnnkit.utils.targets import check_types, instantiate

__all__ = ["check_train_config", "check_trainer", "check_optimizer", "check_output_file"]

TOP_LEVEL = {"seed": int, "train": bool, "test": bool, "resume": bool, "ckpt_path": str}


def check_trainer(trainer: DictConfig | None) -> None:
    """Ranges Lightning checks late or not at all, and an accelerator this machine has."""
    if not trainer:
        return
    max_epochs = trainer.get("max_epochs")
    if max_epochs is not None and (max_epochs == 0 or max_epochs < -1):
        raise ConfigError(
            f"config key 'trainer.max_epochs' is {max_epochs}, expected a positive number of "
            "epochs (or -1 for no limit); to only test a checkpoint use scripts/eval.py"
        )
    clip = trainer.get("gradient_clip_val")
    if clip is not None and clip < 0:
        raise ConfigError(
            f"config key 'trainer.gradient_clip_val' is {clip}, expected >= 0 (0 or null: "
            "no clipping)"
        )
    accelerator = str(trainer.get("accelerator") or "auto").lower()
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            built = f"torch {torch.__version__}" + (
                " built without CUDA"
                if torch.version.cuda is None
                else f" with CUDA {torch.version.cuda}"
            )
            raise AcceleratorUnavailableError(
                f"trainer asks for a GPU (trainer=gpu / trainer.accelerator={accelerator}), but "
                f"this machine has 0 usable CUDA GPU(s) ({built}); use trainer=cpu, or "
                "trainer.accelerator=auto"
            )


def check_optimizer(task: DictConfig | None) -> None:
    """Build ``task.optimizer`` (and ``task.scheduler``) on a dummy parameter: ``lr=-1`` fails
    here, naming the key, instead of after the data are loaded."""
    if not task or not isinstance(task.get("optimizer"), DictConfig):
        return
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1))
    try:
        optimizer = instantiate(task.optimizer)(params=[parameter])
        if isinstance(task.get("scheduler"), DictConfig):
            instantiate(task.scheduler)(optimizer=optimizer)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config key 'task.optimizer' is invalid: {exc}") from None
    except Exception as exc:  # Hydra's wrapper around the same errors
        cause = exc.__cause__
        if isinstance(cause, (ValueError, TypeError)):
            raise ConfigError(f"config key 'task.optimizer' is invalid: {cause}") from None
        raise


def check_train_config(cfg: DictConfig) -> None:
    """Types of every built value and plain top-level key, trainer ranges, the optimizer."""
    check_types(cfg, TOP_LEVEL)
    check_trainer(cfg.get("trainer"))
    check_optimizer(cfg.get("task"))


def check_output_file(path: str | os.PathLike) -> None:
    """Refuse an output file that cannot be written, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"output={path}: is a folder, expected a file name")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"output={path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise output_error(path, PermissionError(13, "Permission denied", str(path)))
