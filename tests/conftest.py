"""Fixtures shared by the config, experiment and pipeline tests: compose ``configs/`` in-process.

``compose_cfg(overrides, config_name="train.yaml")`` returns the composed config with every
output path inside the test's ``tmp_path`` and Hydra's runtime set, ready for
``rnnkit.train.train(cfg)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg(overrides, config_name="train.yaml", subdir="run")`` inside ``tmp_path``."""

    def make(
        overrides: Sequence[str] = (), config_name: str = "train.yaml", subdir: str = "run"
    ) -> DictConfig:
        return compose_config(overrides, tmp_path / subdir, config_name)

    yield make
    GlobalHydra.instance().clear()


def options(group: str) -> list[str]:
    """Every option of a config group (``configs/<group>/*.yaml``), sorted."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
