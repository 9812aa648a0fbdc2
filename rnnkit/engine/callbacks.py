"""The engine's built-in callbacks, with Lightning's constructor arguments and semantics.

- :class:`ModelCheckpoint`: the ``save_top_k`` best checkpoints by ``monitor`` (or the latest,
  ``monitor=None``) and ``last.ckpt``, written at each training epoch's end (after that epoch's
  validation, learning-rate schedulers and the task's epoch-end hook), atomically
  (:meth:`rnnkit.engine.Trainer.save_checkpoint`). ``last.ckpt`` is written at every epoch end,
  so ``ckpt_path=last`` always continues from the latest finished epoch. (Lightning 2.6
  rewrites it only at epochs that also wrote a top-k file.)
- :class:`EarlyStopping`: stop when ``monitor`` has not improved by ``min_delta`` for
  ``patience`` checks (one per validation), or is not finite.
- :class:`ModelSummary`: the task's modules to ``max_depth`` with their parameter counts, at the
  start of ``fit``, to the run's log file (the console shows it with ``extras.verbose``).

Their ``state_key`` and ``state_dict`` are Lightning's, so a checkpoint's ``callbacks`` entry
reads the same under either driver. Every constructor argument is kept as the attribute of the
same name: under a Lightning ``Trainer``, :func:`rnnkit.engine.lightning.as_lightning_callback`
replaces each with Lightning's own class built from those arguments.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnkit.engine.callback import Callback
from rnnkit.engine.monitor import monitored, never_logged
from rnnkit.errors import ConfigError
from rnnkit.utils.logging import get_logger

__all__ = ["EarlyStopping", "ModelCheckpoint", "ModelSummary"]

log = get_logger(__name__)
MODES = {"min": torch.lt, "max": torch.gt}


def _mode(owner: str, mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
    return mode


def _fitting(trainer: Any) -> bool:
    """A real training epoch: ``fit``, not its sanity check, not ``fast_dev_run``."""
    return trainer.state.fn == "fit" and not trainer.sanity_checking and not trainer.fast_dev_run


class ModelCheckpoint(Callback):
    """Keep the best and the last checkpoints (see the module docstring).

    Args:
        dirpath: the folder; ``None``: ``<first logger's folder>/checkpoints`` or
            ``<default_root_dir>/checkpoints`` without loggers.
        filename: a pattern of logged values, ``"best-epoch{epoch:03d}"``; with
            ``auto_insert_metric_name`` each ``{name...}`` is written ``name={name...}``.
            ``None``: ``"{epoch}-{step}"``.
        monitor: the logged value that ranks checkpoints; ``None``: keep the latest.
        mode: ``"min"`` or ``"max"``: which end of ``monitor`` is best.
        save_last: also write ``last.ckpt`` at every epoch end.
        save_top_k: how many best checkpoints to keep (``-1``: all, ``0``: none).
        save_weights_only: write the weights and counters only (no optimizer, no callbacks).
        every_n_epochs: rank a checkpoint every this many epochs.
        enable_version_counter: a name already taken by another file gets ``-v1``, ``-v2``...
        verbose: log every save.
        save_on_train_epoch_end: accepted for Lightning's signature; the engine always saves
            at the training epoch's end, after its validation.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"

    def __init__(
        self,
        dirpath: str | os.PathLike | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | None = None,
        save_top_k: int = 1,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        if save_last == "link":
            raise ConfigError("ModelCheckpoint: save_last='link' needs a Lightning trainer")
        if save_top_k < -1:
            raise ConfigError(f"ModelCheckpoint: save_top_k must be >= -1, got {save_top_k}")
        if monitor is None and save_top_k not in (-1, 0, 1):
            raise ConfigError(
                f"ModelCheckpoint: save_top_k={save_top_k} needs a monitor to rank checkpoints"
            )
        self.dirpath = os.path.realpath(os.path.expanduser(dirpath)) if dirpath else None
        self.filename = filename
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_weights_only = save_weights_only
        self.mode = _mode("ModelCheckpoint", mode)
        self.auto_insert_metric_name = auto_insert_metric_name
        self.every_n_epochs = 1 if every_n_epochs is None else every_n_epochs
        self.save_on_train_epoch_end = save_on_train_epoch_end
        self.enable_version_counter = enable_version_counter
        self.best_k_models: dict[str, Tensor] = {}
        self.kth_best_model_path = ""
        self.kth_value = torch.tensor(torch.inf if mode == "min" else -torch.inf)
        self.best_model_score: Tensor | None = None
        self.best_model_path = ""
        self.current_score: Tensor | None = None
        self.last_model_path = ""
        self._last_global_step_saved = 0  # nothing to save before the first step
        self._saved_any = False

    @property
    def state_key(self) -> str:
        key = {
            "monitor": self.monitor,
            "mode": self.mode,
            "every_n_train_steps": 0,
            "every_n_epochs": self.every_n_epochs,
            "train_time_interval": None,
        }
        return f"{type(self).__qualname__}{key!r}"

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": self.best_k_models,
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = dict(state_dict.get("best_k_models", {}))
            self.last_model_path = state_dict.get("last_model_path", "")
        else:
            log.warning(
                f"ModelCheckpoint: the checkpoint folder changed from {state_dict['dirpath']} to "
                f"{self.dirpath}; only best_model_path is restored"
            )
        self.best_model_path = state_dict["best_model_path"]

    # --- hooks ----------------------------------------------------------------------------------
    def setup(self, trainer: Any, task: Any, stage: str) -> None:
        if self.dirpath is None:
            loggers = trainer.loggers
            if loggers:
                version = loggers[0].version
                version = version if isinstance(version, str) else f"version_{version}"
                root = loggers[0].save_dir or trainer.default_root_dir
                self.dirpath = os.path.join(root, str(loggers[0].name), version, "checkpoints")
            else:
                self.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")

    def on_train_epoch_end(self, trainer: Any, task: Any) -> None:
        if not _fitting(trainer) or self._last_global_step_saved == trainer.global_step:
            return
        candidates = self._candidates(trainer)
        if self.every_n_epochs >= 1 and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._save_top_k(trainer, candidates)
        self._save_last(trainer, candidates)

    def on_train_end(self, trainer: Any, task: Any) -> None:
        if self.save_last and not self._saved_any and _fitting(trainer):
            self._save_last(trainer, self._candidates(trainer))

    # --- names ----------------------------------------------------------------------------------
    def format_checkpoint_name(
        self, metrics: dict[str, Any], filename: str | None = None, ver: int | None = None
    ) -> str:
        """The path of a checkpoint named by ``filename`` (default: ``self.filename``) with
        ``metrics`` filled in, ``-v<ver>`` appended when given (Lightning's names)."""
        name = filename or self.filename or "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        values = {k: v.item() if isinstance(v, Tensor) else v for k, v in metrics.items()}
        groups = sorted(re.findall(r"(\{.*?)[:\}]", name), key=len, reverse=True)
        for group in groups:
            key = group[1:]
            if self.auto_insert_metric_name:
                name = name.replace(group, key + self.CHECKPOINT_EQUALS_CHAR + "{" + key)
            name = name.replace(group, f"{{0[{key}]")
            values.setdefault(key, 0)
        name = name.format(values)
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        return os.path.join(self.dirpath or "", name + self.FILE_EXTENSION)

    def _free_name(self, metrics: dict[str, Any], filename: str | None, replaces: str) -> str:
        """The name, versioned when another file (not ``replaces``) already has it."""
        path = self.format_checkpoint_name(metrics, filename)
        version = 1
        while self.enable_version_counter and os.path.exists(path) and path != replaces:
            path = self.format_checkpoint_name(metrics, filename, ver=version)
            version += 1
        return path

    def _candidates(self, trainer: Any) -> dict[str, Any]:
        candidates = dict(trainer.callback_metrics)
        candidates["epoch"] = torch.tensor(trainer.current_epoch)
        candidates["step"] = torch.tensor(trainer.global_step)
        return candidates

    # --- saving ---------------------------------------------------------------------------------
    def _save(self, trainer: Any, path: str) -> None:
        trainer.save_checkpoint(path, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._saved_any = True

    def _remove(self, trainer: Any, previous: str, current: str) -> None:
        """Delete ``previous`` unless it is ``current``, the checkpoint this run resumed from,
        or a file outside this callback's folder."""
        if not previous or previous == current:
            return
        path = Path(previous).absolute()
        resumed = trainer.ckpt_path and path == Path(trainer.ckpt_path).absolute()
        if not resumed and Path(self.dirpath).absolute() in path.parents:
            path.unlink(missing_ok=True)

    def _save_last(self, trainer: Any, candidates: dict[str, Any]) -> None:
        if not self.save_last:
            return
        path = self._free_name(candidates, self.CHECKPOINT_NAME_LAST, self.last_model_path)
        previous, self.last_model_path = self.last_model_path, path
        self._save(trainer, path)
        self._remove(trainer, previous, path)

    def _save_top_k(self, trainer: Any, candidates: dict[str, Any]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is None:  # the latest is the best
            path = self._free_name(candidates, None, self.best_model_path)
            previous, self.best_model_path = self.best_model_path, path
            self._save(trainer, path)
            if self.save_top_k == 1:
                self._remove(trainer, previous, path)
            return
        # missing before any validation (check_val_every_n_epoch > 1): nothing to rank yet
        current = monitored(candidates, self.monitor, "ModelCheckpoint", trainer.validated)
        if current is None:
            return
        if self._is_top_k(current):
            self._update_best_and_save(trainer, current, candidates)
        elif self.verbose:
            log.info(
                f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: "
                f"{self.monitor!r} was not in top {self.save_top_k}"
            )

    def _is_top_k(self, current: Tensor) -> bool:
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        better = MODES[self.mode]
        return bool(better(current, self.best_k_models[self.kth_best_model_path]))

    def _update_best_and_save(
        self, trainer: Any, current: Tensor, candidates: dict[str, Any]
    ) -> None:
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        dropped = ""
        if len(self.best_k_models) == k and k > 0:
            dropped = self.kth_best_model_path
            self.best_k_models.pop(dropped)
        if torch.isnan(current):  # a NaN score ranks last
            current = torch.tensor(float("inf" if self.mode == "min" else "-inf"))
        path = self._free_name(candidates, None, dropped)
        self.current_score = current
        self.best_k_models[path] = current
        if len(self.best_k_models) == k:
            worst = max if self.mode == "min" else min
            self.kth_best_model_path = worst(self.best_k_models, key=self.best_k_models.get)
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        best = min if self.mode == "min" else max
        self.best_model_path = best(self.best_k_models, key=self.best_k_models.get)
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            log.info(
                f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: "
                f"{self.monitor!r} reached {float(current):0.5f} (best "
                f"{float(self.best_model_score):0.5f}), saving model to {path!r} as top {k}"
            )
        self._save(trainer, path)
        self._remove(trainer, dropped, path)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` stops improving (Lightning's ``EarlyStopping``).

    An epoch improves when ``monitor`` beats the best so far by more than ``min_delta``
    (``current < best - min_delta`` for ``mode="min"``); after ``patience`` checks without an
    improvement, or a non-finite value (``check_finite``), ``trainer.should_stop`` is set and
    training ends at that epoch's end (once ``trainer.min_epochs`` have run).

    Args:
        monitor: the logged value to watch.
        min_delta: the smallest change that counts as an improvement.
        patience: checks without an improvement before stopping.
        verbose: log each improvement and the stop.
        mode: ``"min"`` or ``"max"``.
        strict: a ``monitor`` that is never logged is an error (else a warning and no check).
        check_finite: stop at a NaN or infinite value.
        stopping_threshold: stop once ``monitor`` is better than this.
        divergence_threshold: stop once ``monitor`` is worse than this.
        check_on_train_epoch_end: check at the training epoch's end (default when validation
            runs every epoch) or at each validation's end.
    """

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
    ) -> None:
        self.monitor = monitor
        self.mode = _mode("EarlyStopping", mode)
        self.patience = patience
        self.verbose = verbose
        self.strict = strict
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.check_on_train_epoch_end = check_on_train_epoch_end
        self._check_on_train_epoch_end = check_on_train_epoch_end  # resolved in setup
        self.log_rank_zero_only = log_rank_zero_only
        self.min_delta = min_delta
        self.wait_count = 0
        self.stopped_epoch = 0
        self.best_score = torch.tensor(-torch.inf if mode == "max" else torch.inf)
        self.stopping_reason = 0  # Lightning's EarlyStoppingReason value
        self.stopping_reason_message: str | None = None

    @property
    def state_key(self) -> str:
        key = {"monitor": self.monitor, "mode": self.mode}
        return f"{type(self).__qualname__}{key!r}"

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason,
            "stopping_reason_message": self.stopping_reason_message,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
        self.stopping_reason = state_dict.get("stopping_reason", 0)
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    def setup(self, trainer: Any, task: Any, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = trainer.check_val_every_n_epoch == 1

    def on_train_epoch_end(self, trainer: Any, task: Any) -> None:
        if self._check_on_train_epoch_end and _fitting(trainer):
            self._check(trainer)

    def on_validation_end(self, trainer: Any, task: Any) -> None:
        if not self._check_on_train_epoch_end and _fitting(trainer):
            self._check(trainer)

    def _check(self, trainer: Any) -> None:
        metrics = trainer.callback_metrics
        value = monitored(metrics, self.monitor, "EarlyStopping", self.strict)
        if value is None:
            if self.verbose:
                log.warning(never_logged("EarlyStopping", self.monitor, metrics))
            return
        should_stop, reason = self._evaluate(torch.as_tensor(value).squeeze().cpu())
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            log.info(reason)

    def _evaluate(self, current: Tensor) -> tuple[bool, str | None]:
        better = MODES[self.mode]
        order = "<" if self.mode == "min" else ">"
        if self.check_finite and not torch.isfinite(current):
            self.stopping_reason = 4
            return True, (
                f"Monitored metric {self.monitor} = {float(current)} is not finite. Previous "
                f"best value was {float(self.best_score):.3f}. Signaling Trainer to stop."
            )
        if self.stopping_threshold is not None and better(current, self.stopping_threshold):
            self.stopping_reason = 1
            return True, (
                f"Stopping threshold reached: {self.monitor} = {float(current)} {order} "
                f"{self.stopping_threshold}. Signaling Trainer to stop."
            )
        if self.divergence_threshold is not None and better(-current, -self.divergence_threshold):
            self.stopping_reason = 2
            return True, (
                f"Divergence threshold reached: {self.monitor} = {float(current)} {order} "
                f"{self.divergence_threshold}. Signaling Trainer to stop."
            )
        # Lightning's sign: an improvement is better(current -/+ min_delta, best)
        delta = self.min_delta if self.mode == "max" else -self.min_delta
        if better(current - delta, self.best_score):
            self.best_score = current
            self.wait_count = 0
            return False, f"Metric {self.monitor} improved. New best score: {float(current):.3f}"
        self.wait_count += 1
        if self.wait_count >= self.patience:
            self.stopping_reason = 3
            return True, (
                f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} "
                f"records. Best score: {float(self.best_score):.3f}. Signaling Trainer to stop."
            )
        return False, None


class ModelSummary(Callback):
    """Log the task's modules to ``max_depth`` (name, type, parameters) at the start of ``fit``.

    The table goes to the ``rnnkit.engine.summary`` logger, which the quiet console keeps for
    the log file (:data:`rnnkit.console.DETAIL`).

    Args:
        max_depth: how many levels of submodules to list (``-1``: all, ``0``: totals only).
    """

    def __init__(self, max_depth: int = 1) -> None:
        self.max_depth = max_depth

    def on_fit_start(self, trainer: Any, task: Any) -> None:
        if trainer.is_global_zero:
            get_logger("rnnkit.engine.summary").info(summary_table(task, self.max_depth))


def summary_table(module: torch.nn.Module, max_depth: int = 1) -> str:
    """The rows ``name  type  parameters`` of ``module``'s submodules down to ``max_depth``
    (dots in the name), then the trainable, frozen and total counts and their size in MB
    (4 bytes a parameter)."""
    rows = [("", "Name", "Type", "Params")]
    if max_depth != 0:
        for i, (name, sub) in enumerate(
            (n, m) for n, m in module.named_modules() if n and n.count(".") < max_depth
        ):
            count = sum(p.numel() for p in sub.parameters())
            rows.append((str(i), name, type(sub).__name__, _count(count)))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    lines += [
        f"{_count(trainable)} trainable params",
        f"{_count(total - trainable)} non-trainable params",
        f"{_count(total)} total params",
        f"{total * 4 / 1e6:.3f} total estimated model params size (MB)",
    ]
    return "\n".join(lines)


def _count(n: int) -> str:
    """``812``, ``12.4 K``, ``3.1 M`` (Lightning's short form)."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)
