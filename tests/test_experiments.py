"""Every experiment config is a test: compose ``+experiment=<name>`` and run one fast batch.

Parametrised by glob over ``configs/experiment/*.yaml``, so new experiments are included
automatically. Each runs ``rnnkit.train.train(cfg)`` in-process with ``fast_dev_run`` on CPU.
"""

from __future__ import annotations

import math
import re

import pytest

from rnnkit.train import train
from tests.helpers import CONFIG_DIR, FAST, options

EXPERIMENTS = options("experiment")


def test_there_are_experiments() -> None:
    assert {"quickstart", "adding_rnn", "adding_lstm", "adding_gru"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_file_is_a_global_delta_with_its_command(name: str) -> None:
    text = (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), f"{name}.yaml must start with the package line"
    assert f"+experiment={name}" in text, f"{name}.yaml must give its run command in a comment"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_one_batch(name: str, compose_cfg) -> None:
    cfg = compose_cfg([f"+experiment={name}", *FAST])
    metrics = train(cfg)
    assert metrics, f"{name}: no metrics returned"
    assert any(k.startswith("test/") for k in metrics), f"{name}: no test metrics in {metrics}"
    for key, value in metrics.items():
        assert math.isfinite(value), f"{name}: {key} = {value}"


def test_quickstart_documents_a_measured_result() -> None:
    text = (CONFIG_DIR / "experiment" / "quickstart.yaml").read_text()
    assert re.search(r"Measured.*?test/acc = 0\.\d+", text, re.S), "quickstart.yaml: record it"
