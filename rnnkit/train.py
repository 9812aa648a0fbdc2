"""The recipes ``train(cfg)``, ``evaluate(cfg)``, ``predict(cfg)``: the only Hydra-aware module.

``train(cfg)`` is a flat recipe (lightning-hydra-template style):

1. seed everything (``cfg.seed``);
2. instantiate ``cfg.data`` and call ``setup()``;
3. fill every ``???`` key of ``cfg.model`` and ``cfg.task`` from ``datamodule.info`` (sizes and
   small scalars only);
4. instantiate ``cfg.model``, then ``cfg.task`` with ``model=`` and the task's data state
   (vocabularies, label names, scalers: ``Task.data_arguments(info)``), which never enters the
   config, the hyper-parameters or the loggers;
5. instantiate callbacks, loggers and the trainer: ``trainer._target_`` picks the driver
   (:mod:`rnnkit.utils.drivers`: rnnkit's own ``Trainer`` by default, Lightning's for
   ``trainer=ddp``/``ddp_cpu``, which gets the task, data and callbacks through adapters);
6. ``trainer.fit`` (``cfg.train``), then ``trainer.test`` with the best checkpoint (``cfg.test``);
7. write ``summary.json`` in the run directory and return the metrics dict.

The best checkpoint is the best on the task's monitored metric (``task.monitor``,
``task.monitor_mode``: the checkpoint and early-stopping callbacks read them); a run whose task
never logs it stops at the first validation with one line saying what it does log. A data
module without a validation split (``has_validation`` false, e.g. ``data.val_fraction=0``)
trains the given epochs: no validation, no early stopping, ``last.ckpt`` only, and the test
uses that last checkpoint.

Reliability (:mod:`rnnkit.utils.checkpointing`, :mod:`rnnkit.utils.reproducibility`):
checkpoints are written atomically and load with ``weights_only=True``; ``ckpt_path=last``
resumes from ``<run dir>/checkpoints/last.ckpt`` (fresh start if there is none yet);
``resume=true`` does the same and also returns at once when the run directory already holds a
finished run of the same config (a re-launched sweep skips finished jobs). Every run directory
gets ``run_info.json`` (seed, versions, status) and ``config.yaml``; ``summary.json`` is written
only on success, and a failed run gets status ``failed`` and a ``FAILED`` file. A run locks its
folder and refuses one that holds another run unless it continues it; every value is checked
before anything is built (:mod:`rnnkit.utils.preflight`); SIGTERM saves ``interrupted.ckpt`` and
raises :class:`~rnnkit.errors.RunInterruptedError` (:class:`~rnnkit.callbacks.RunGuard`);
eval/predict build only allow-listed targets from a run folder (:mod:`rnnkit.utils.targets`).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from rnnkit import console
from rnnkit.callbacks import MonitorCheck, RunGuard
from rnnkit.engine.callbacks import EarlyStopping, ModelCheckpoint
from rnnkit.engine.interrupt import is_terminated
from rnnkit.engine.seed import seed_everything
from rnnkit.errors import RunInterruptedError
from rnnkit.utils.atomic import write_json_atomic
from rnnkit.utils.checkpointing import check_config_matches, load_checkpoint, resolve_ckpt_path
from rnnkit.utils.config import apply_extras, fill_from_info, register_resolvers
from rnnkit.utils.drivers import build_trainer, driven, uses_lightning
from rnnkit.utils.logging import get_logger, global_rank
from rnnkit.utils.metrics_history import keep_csv_history
from rnnkit.utils.preflight import check_output_file, check_train_config
from rnnkit.utils.reproducibility import RunRecord, finished_run
from rnnkit.utils.targets import check_allowed, check_types, instantiate

log = get_logger(__name__)
register_resolvers()


def instantiate_list(cfg: DictConfig | None, kind: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a group like ``callbacks`` or ``logger``."""
    objects: list[Any] = []
    if not cfg:
        return objects
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"{kind} config must be a mapping of named entries")
    for name, conf in cfg.items():
        if isinstance(conf, DictConfig) and "_target_" in conf:
            log.debug(f"Instantiating {kind} {name} <{conf._target_}>")
            objects.append(instantiate(conf))
    return objects


def build_data_and_model(
    cfg: DictConfig, datamodule_state: dict | None = None, stage: str = "fit"
):
    """Steps 2-4 up to the model: the datamodule (set up), then the model sized from its info.

    Fills every ``???`` key of ``cfg.model`` and ``cfg.task`` in place from ``datamodule.info``.

    Args:
        datamodule_state: a saved ``datamodule.state_dict()`` (vocabularies, label maps) to
            reuse instead of fitting on the training split (evaluation and prediction).
        stage: what the data is set up for (``fit``, ``test``, ``predict``): to predict with
            a restored state, only the predict file is read.

    Returns:
        ``(datamodule, model)``.
    """
    log.debug(f"Instantiating datamodule <{cfg.data._target_}>")
    datamodule = instantiate(cfg.data)
    if datamodule_state:
        datamodule.load_state_dict(datamodule_state)
    datamodule.prepare_data()
    datamodule.setup(stage)
    info = dict(getattr(datamodule, "info", {}) or {})
    filled = fill_from_info(cfg.model, info, "model") + fill_from_info(cfg.task, info, "task")
    if filled:
        log.debug(f"From the data: {', '.join(sorted(set(filled)))}")
    log.debug(f"Instantiating model <{cfg.model._target_}>")
    model = instantiate(cfg.model)
    return datamodule, model


def task_data_arguments(cfg: DictConfig, datamodule) -> dict[str, Any]:
    """The task's data state (``Task.data_arguments``) from ``datamodule.info``."""
    task_cls = get_class(cfg.task._target_)
    from_data = getattr(task_cls, "data_arguments", None)
    return from_data(dict(getattr(datamodule, "info", {}) or {})) if from_data else {}


def build_data_and_task(cfg: DictConfig, datamodule_state: dict | None = None):
    """Steps 2-4: :func:`build_data_and_model`, then the task with the model and data state.

    Returns:
        ``(datamodule, model, task)``.
    """
    datamodule, model = build_data_and_model(cfg, datamodule_state)
    log.debug(f"Instantiating task <{cfg.task._target_}>")
    task = instantiate(cfg.task, model=model, **task_data_arguments(cfg, datamodule))
    return datamodule, model, task


def has_validation(datamodule) -> bool:
    """Whether the data has a validation split (``datamodule.has_validation``; True if absent)."""
    return bool(getattr(datamodule, "has_validation", True))


def last_only(callbacks: list[Any], checkpoint_dir: Path) -> list[Any]:
    """The callbacks of a run without validation: no early stopping, ``last.ckpt`` only.

    Every :class:`ModelCheckpoint` becomes one that writes ``last.ckpt`` at each epoch end (its
    ``best_model_path``, so that the test and ``summary.json`` name the last checkpoint).
    """
    kept: list[Any] = [c for c in callbacks if not isinstance(c, EarlyStopping | ModelCheckpoint)]
    if any(isinstance(c, ModelCheckpoint) for c in callbacks):
        kept.insert(
            0,
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                filename="last",
                monitor=None,
                save_top_k=1,
                enable_version_counter=False,
                verbose=False,
            ),
        )
    return kept


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` (rank zero only), atomically: it marks a finished run."""
    write_json_atomic(path, summary)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and test a model as ``cfg`` says; return the logged metrics (train/val/test).

    ``cfg`` is the composed ``configs/train.yaml``. See the module docstring for the steps.
    """
    check_train_config(cfg)  # types, ranges, optimizer: before anything is built
    console.setup(cfg)  # quiet unless extras.verbose
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("resume"):
        done = finished_run(output_dir, cfg)
        if done is not None:
            log.info(f"{output_dir} already holds this finished run (resume=true): skipping")
            return done["metrics"]
    continues = bool(cfg.get("resume") or cfg.get("ckpt_path"))
    record = RunRecord(output_dir, cfg, cfg.get("seed"), global_rank() == 0, continues)
    with record:
        metrics = _train(cfg)
        record.finish()
    return metrics


def _train(cfg: DictConfig) -> dict[str, float]:
    start = time.time()
    if cfg.get("seed") is not None:
        seed_everything(cfg.seed, workers=True)
    apply_extras(cfg)  # config tree on rank zero, warning filters (configs/extras)

    datamodule, model, task = build_data_and_task(cfg)
    checkpoint_dir = Path(cfg.paths.output_dir) / "checkpoints"
    guard = RunGuard(checkpoint_dir)  # SIGTERM saves a checkpoint; resume drops orphans
    callbacks = instantiate_list(cfg.get("callbacks"), "callback")
    validation = has_validation(datamodule)
    trainer_overrides: dict[str, Any] = {}
    if validation:
        # before EarlyStopping, so a monitor that is never logged gets rnnkit's one line
        selects = any(
            isinstance(c, EarlyStopping | ModelCheckpoint) and c.monitor == task.monitor
            for c in callbacks
        )
        check = [MonitorCheck(task.monitor)] if selects else []
        callbacks = [*check, *callbacks, guard]
    else:
        callbacks = [*last_only(callbacks, checkpoint_dir), guard]
        trainer_overrides = {"limit_val_batches": 0, "num_sanity_val_steps": 0}
        log.info(
            "No validation split: training all trainer.max_epochs epochs without early "
            "stopping, keeping last.ckpt only and testing it (no val/ metric to optimize)"
        )
    if not (uses_lightning(cfg.trainer) and cfg.trainer.get("enable_progress_bar", True)):
        callbacks.append(console.EpochLines())  # one line per epoch instead of a bar
    log.debug(f"Instantiating trainer <{cfg.trainer._target_}>")
    trainer, loggers = build_trainer(
        cfg.trainer,
        callbacks,
        instantiate_list(cfg.get("logger"), "logger"),
        config=cfg,  # in every checkpoint, compared on resume
        **trainer_overrides,
    )

    ckpt_path = cfg.get("ckpt_path") or ("last" if cfg.get("resume") else None)
    ckpt_path = resolve_ckpt_path(ckpt_path, checkpoint_dir) if cfg.get("train", True) else None
    if ckpt_path:  # the rows logged before the checkpoint stay in metrics.csv
        keep_csv_history(loggers, int(load_checkpoint(ckpt_path).get("global_step", 0)))
    hparams = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    for logger in loggers:
        logger.log_hyperparams(hparams)  # type: ignore[arg-type]

    module, data = driven(trainer, task, datamodule)
    if cfg.get("train", True):
        log.debug("Starting training")
        if ckpt_path:
            log.info(f"Resuming from {ckpt_path}")
        try:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
        except BaseException as exc:
            if not is_terminated(exc):
                raise
            raise RunInterruptedError(
                f"interrupted by SIGTERM at step {trainer.global_step}; saved {guard.saved}; "
                "continue with ckpt_path=last (from the last epoch end) or "
                f"ckpt_path={guard.saved} (from the moment of the signal)",
                signal.SIGTERM,
            ) from None
        if (
            validation
            and ckpt_path
            and not any(k.startswith("val/") for k in trainer.callback_metrics)
        ):
            # resumed a run that had already finished: fit trained nothing, so validate once
            # to report (and hand sweepers) the val metrics of the restored weights; no logger
            # gets that row, so metrics.csv stays the uninterrupted run's
            loggers, trainer.loggers = trainer.loggers, []
            try:
                trainer.validate(module, datamodule=data, verbose=False)
            finally:
                trainer.loggers = loggers
    metrics = _floats(trainer.callback_metrics)

    best_ckpt = ""
    ckpt_label = "best checkpoint" if validation else "last checkpoint"
    if trainer.checkpoint_callback is not None:
        best_ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") or ""
    if cfg.get("test", True):
        log.debug("Starting testing")
        ckpt = best_ckpt or None
        if ckpt is None:
            log.warning(f"No {ckpt_label} found; testing the current weights")
        trainer.test(
            module,
            datamodule=data,
            ckpt_path=ckpt,
            weights_only=True,
            verbose=console.verbose(cfg),  # quiet: the summary line says it
        )
        metrics.update(_floats(trainer.callback_metrics))

    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        write_summary(
            output_dir / "summary.json",
            {
                "task_name": cfg.get("task_name"),
                "metrics": metrics,
                "best_ckpt": best_ckpt,
                "last_ckpt": str(output_dir / "checkpoints" / "last.ckpt")
                if (output_dir / "checkpoints" / "last.ckpt").exists()
                else "",
                "epochs": trainer.current_epoch,
                "global_step": trainer.global_step,
                "world_size": trainer.world_size,
                "seconds": round(time.time() - start, 2),
                "optimized_metric": cfg.get("optimized_metric"),
            },
        )
        name = str(cfg.get("task_name"))
        log.info(
            console.summary_line(
                name, metrics, output_dir, best_ckpt, ckpt_label, task.summary_metrics
            )
        )
    return metrics


# ----- evaluation and prediction from a checkpoint ---------------------------------------------
def load_run(cfg: DictConfig) -> tuple[DictConfig, Path, dict[str, Any]]:
    """The training run behind ``cfg.ckpt_path``: its config, the checkpoint path and content.

    The run's config is ``cfg.run_config`` or ``<run dir>/.hydra/config.yaml`` where the
    checkpoint is ``<run dir>/checkpoints/*.ckpt``; ``cfg.data`` is merged onto its ``data``.
    """
    ckpt = Path(str(cfg.ckpt_path))
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path: {ckpt}: checkpoint not found")
    run_config = (
        Path(str(cfg.run_config))
        if cfg.get("run_config")
        else (ckpt.resolve().parent.parent / ".hydra" / "config.yaml")
    )
    if not run_config.is_file():
        raise FileNotFoundError(
            f"{run_config}: the training run's config was not found next to the checkpoint; "
            "pass run_config=<run dir>/.hydra/config.yaml"
        )
    run_cfg = OmegaConf.load(run_config)
    if not isinstance(run_cfg, DictConfig) or "data" not in run_cfg or "model" not in run_cfg:
        raise ValueError(f"{run_config}: not a training config (needs data, model and task)")
    run_cfg.data = OmegaConf.merge(run_cfg.data, cfg.get("data") or {})
    for key in ("trainer", "paths", "extras", "task_name", "tags"):
        if key in cfg:
            run_cfg[key] = cfg[key]
    run_cfg.callbacks = None
    run_cfg.logger = cfg.get("logger")
    check_allowed(run_cfg, run_config)  # a run folder is shared: what it builds must not run code
    check_types(run_cfg)
    checkpoint = load_checkpoint(ckpt)  # weights_only=True; a clear error if broken
    return run_cfg, ckpt, checkpoint


def _datamodule_state(run_cfg: DictConfig, checkpoint: dict[str, Any]) -> dict | None:
    # Lightning stores datamodule.state_dict() under the class's __qualname__
    name = str(run_cfg.data._target_).rsplit(".", 1)[-1]
    return checkpoint.get(name)


def load_task(cfg: DictConfig, stage: str):
    """Rebuild ``(run_cfg, datamodule, task)`` from a checkpoint (see :func:`load_run`), the
    data set up for ``stage`` (``test`` or ``predict``).

    The model is built from the run's config and sized by the datamodule restored from the
    checkpoint, which also gives the task its data state; weights and hyperparameters come
    from the checkpoint: ``Task.load_from_checkpoint(ckpt, model=..., **data_state)``.
    """
    run_cfg, ckpt, checkpoint = load_run(cfg)
    state = _datamodule_state(run_cfg, checkpoint)
    datamodule, model = build_data_and_model(run_cfg, state, stage)
    check_config_matches(checkpoint, run_cfg, path=ckpt)  # names the first differing model key
    task_cls = get_class(run_cfg.task._target_)
    task = task_cls.load_from_checkpoint(
        ckpt,
        model=model,
        map_location="cpu",
        weights_only=True,
        **task_data_arguments(run_cfg, datamodule),
    )
    return run_cfg, datamodule, task


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test a checkpoint (``cfg`` is the composed ``configs/eval.yaml``); return test metrics."""
    console.setup(cfg)  # quiet unless extras.verbose
    apply_extras(cfg)  # config tree on rank zero, warning filters (configs/extras)
    run_cfg, datamodule, task = load_task(cfg, "test")
    loggers = instantiate_list(run_cfg.get("logger"), "logger")
    trainer, _ = build_trainer(run_cfg.trainer, loggers=loggers)
    module, data = driven(trainer, task, datamodule)
    trainer.test(module, datamodule=data, verbose=console.verbose(cfg))
    metrics = _floats(trainer.callback_metrics)
    if trainer.is_global_zero:
        write_summary(
            Path(cfg.paths.output_dir) / "summary.json",
            {
                "task_name": cfg.get("task_name"),
                "ckpt_path": str(cfg.ckpt_path),
                "metrics": metrics,
            },
        )
        log.info(
            console.summary_line(
                "eval",
                metrics,
                cfg.paths.output_dir,
                str(cfg.ckpt_path),
                "checkpoint",
                task.summary_metrics,
            )  # fmt: skip
        )
    return metrics


def predict(cfg: DictConfig) -> list[str]:
    """Predict on ``cfg.input`` with ``cfg.ckpt_path``; write lines to ``cfg.output`` or stdout.

    Returns:
        The lines written, as the task formats them (``Task.format_predictions``):
        classification ``label<TAB>probability<TAB>input``, regression ``value<TAB>input``,
        tagging ``token<TAB>tag`` with a blank line after each sentence, seq2seq
        ``output<TAB>input`` (``beam_size``, ``nbest`` and ``min_decode_length`` override the
        decoding settings; ``nbest=N`` writes N ranked lines per source). Generation (language
        models) takes ``prompt=TEXT`` (or a list) instead of ``input``; ``temperature``,
        ``top_k`` and ``max_new_tokens`` override the task's sampling settings; the output is
        the generated text of each prompt.
    """
    console.setup(cfg)  # quiet unless extras.verbose
    prompt = cfg.get("prompt")
    if prompt is None and not cfg.get("input"):
        raise ValueError(
            "predict: give input=<file> (same format as the training data), or prompt=TEXT "
            "for a language model"
        )
    if prompt is None and not Path(str(cfg.input)).is_file():
        raise FileNotFoundError(f"input: {cfg.input}: file not found")
    if cfg.get("output"):
        check_output_file(str(cfg.output))  # before inference, not after
    with open_dict(cfg):
        if prompt is not None:  # generation: the data module's `prompts` are what is continued
            prompts = list(prompt) if OmegaConf.is_list(prompt) else [str(prompt)]
            cfg.data = OmegaConf.merge(cfg.get("data") or {}, {"prompts": prompts})
        else:
            cfg.data = OmegaConf.merge(cfg.get("data") or {}, {"predict_path": str(cfg.input)})
    run_cfg, datamodule, task = load_task(cfg, "predict")
    # sampling settings (generation) and decoding settings (seq2seq)
    for key in (
        "temperature",
        "top_k",
        "max_new_tokens",
        "beam_size",
        "nbest",
        "min_decode_length",
    ):
        if cfg.get(key) is not None:
            task.hparams[key] = cfg[key]
    trainer, _ = build_trainer(run_cfg.trainer, enable_progress_bar=False)
    module, data = driven(trainer, task, datamodule)
    batches = trainer.predict(module, datamodule=data) or []
    predictions = [p for batch in batches for p in batch]
    lines = task.format_predictions(predictions, datamodule)
    text = "\n".join(lines) + "\n"
    if cfg.get("output"):
        Path(str(cfg.output)).write_text(text)
        log.info(f"Wrote {len(predictions)} predictions to {cfg.output}")
    else:
        sys.stdout.write(text)
    return lines
