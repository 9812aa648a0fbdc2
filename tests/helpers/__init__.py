"""Helpers the tests import: where the repository and its configs are, the overrides that make
an experiment a fast CPU test, composing ``configs/`` in-process (the ``compose_cfg`` fixture of
``tests/conftest.py`` wraps :func:`compose_config`), and one quiet epoch of a task."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"

# the overrides that make any experiment a fast CPU test
FAST = [
    "trainer.fast_dev_run=true",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "logger=none",
    "extras.print_config=false",
]


def compose_config(
    overrides: Sequence[str], output_dir: Path, config_name: str = "train.yaml"
) -> DictConfig:
    """Compose ``configs/<config_name>`` with ``overrides``; outputs go under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def options(group: str) -> list[str]:
    """Every option of a config group (``configs/<group>/*.yaml``), sorted."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


class LightningTrainer:
    """A Lightning ``Trainer`` for rnnkit objects: tasks, data modules and callbacks go in
    through the adapters of :mod:`rnnkit.engine.lightning`; every other attribute is the
    trainer's (``callback_metrics``, ``global_step``, ...)."""

    def __init__(self, **kwargs) -> None:
        import lightning as L

        from rnnkit.engine.lightning import as_lightning_callback

        callbacks = [as_lightning_callback(c) for c in kwargs.pop("callbacks", None) or ()]
        self.trainer = L.Trainer(callbacks=callbacks, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.trainer, name)

    def _run(self, method: str, task, *args, datamodule=None, **kwargs):
        from rnnkit.engine import DataModule, TaskModule
        from rnnkit.engine.lightning import as_lightning_datamodule, as_lightning_module

        if isinstance(task, TaskModule):
            task = as_lightning_module(task)
        if isinstance(datamodule, DataModule):
            datamodule = as_lightning_datamodule(datamodule)
        if datamodule is not None:
            kwargs["datamodule"] = datamodule
        return getattr(self.trainer, method)(task, *args, **kwargs)

    def fit(self, task, *args, **kwargs):
        return self._run("fit", task, *args, **kwargs)

    def validate(self, task, *args, **kwargs):
        return self._run("validate", task, *args, **kwargs)

    def test(self, task, *args, **kwargs):
        return self._run("test", task, *args, **kwargs)

    def predict(self, task, *args, **kwargs):
        return self._run("predict", task, *args, **kwargs)


def fit_one_epoch(task, batch: tuple) -> set[str]:
    """Train ``task`` one epoch on one ``batch`` (also its validation); the metric names logged."""
    from torch.utils.data import DataLoader

    loader = DataLoader([batch], batch_size=None)
    trainer = LightningTrainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, loader, loader)
    return set(trainer.callback_metrics)
