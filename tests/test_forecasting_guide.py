"""docs/forecasting.md's commands stay valid: every training command composes, and the worked
example on macrodata (one series with covariates) trains and tests one batch on the stand-in.
"""

from __future__ import annotations

import math
import os
import re
import shlex

import pytest

from rnnkit.train import train
from tests.helpers import FAST, REPO_ROOT

GUIDE = (REPO_ROOT / "docs" / "forecasting.md").read_text()
BLOCKS = re.findall(r"^```\n(.*?)^```", GUIDE, flags=re.S | re.M)
COMMANDS = [" ".join(b.replace("\\\n", " ").split()) for b in BLOCKS]
TRAIN = [c for c in COMMANDS if c.startswith("python scripts/train.py ")]


def _overrides(command: str) -> list[str]:
    """The command's overrides, its data files read from the tests' stand-ins."""
    standin = os.environ["RNNKIT_EXTERNAL_DATA"]
    args = shlex.split(command)[2:]
    return [
        a.replace("data/external", standin, 1) if a.startswith("data.path=") else a for a in args
    ]


def test_the_guide_shows_each_layout() -> None:
    assert len(TRAIN) >= 3, "docs/forecasting.md: the training examples are gone"
    assert any(c.startswith("python scripts/predict.py ") for c in COMMANDS)


@pytest.mark.parametrize("command", TRAIN, ids=lambda c: c.split("data.path=")[-1][:40])
def test_every_training_command_composes(command: str, compose_cfg) -> None:
    cfg = compose_cfg(_overrides(command))
    assert cfg.task._target_ == "rnnkit.tasks.ForecastingTask"


def test_the_covariates_example_trains_and_tests(compose_cfg) -> None:
    command = next(c for c in TRAIN if "input_columns" in c)
    metrics = train(compose_cfg([*_overrides(command), *FAST]))
    assert math.isfinite(metrics["test/origin_mase"]), sorted(metrics)
