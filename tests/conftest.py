"""Fixtures shared by the config, experiment and pipeline tests: compose ``configs/`` in-process.

``compose_cfg(overrides, config_name="train.yaml")`` returns the composed config with every
output path inside the test's ``tmp_path`` and Hydra's runtime set, ready for
``rnnkit.train.train(cfg)``.

``$RNNKIT_EXTERNAL_DATA`` is set to ``tests/data/external_standin/`` for the whole session
(child processes inherit it): experiments on the real datasets read small files of the same
formats there, never ``data/external/`` (which a test machine need not have).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.helpers import REPO_ROOT, compose_config

os.environ["RNNKIT_EXTERNAL_DATA"] = str(REPO_ROOT / "tests" / "data" / "external_standin")


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg(overrides, config_name="train.yaml", subdir="run")`` inside ``tmp_path``."""

    def make(
        overrides: Sequence[str] = (), config_name: str = "train.yaml", subdir: str = "run"
    ) -> DictConfig:
        return compose_config(overrides, tmp_path / subdir, config_name)

    yield make
    GlobalHydra.instance().clear()
