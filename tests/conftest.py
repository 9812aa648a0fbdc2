"""Fixtures shared by the config, experiment and pipeline tests: compose ``configs/`` in-process.

``compose_cfg(overrides, config_name="train.yaml")`` returns the composed config with every
output path inside the test's ``tmp_path`` and Hydra's runtime set, ready for
``rnnkit.train.train(cfg)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers import compose_config


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg(overrides, config_name="train.yaml", subdir="run")`` inside ``tmp_path``."""

    def make(
        overrides: Sequence[str] = (), config_name: str = "train.yaml", subdir: str = "run"
    ) -> DictConfig:
        return compose_config(overrides, tmp_path / subdir, config_name)

    yield make
    GlobalHydra.instance().clear()
