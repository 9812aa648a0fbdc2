"""Sweeps: a 2-trial Optuna search returns the optimized metric; grid multiruns (slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT

TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "extras.print_config=false",
    "logger=none",
]


def run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "scripts/train.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_optuna_sweep_two_trials_returns_the_metric(tmp_path: Path) -> None:
    run(
        [
            "-m",
            "+experiment=quickstart",
            "+hparams_search=quickstart_optuna",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            f"hydra.sweep.dir={tmp_path}",
            *TINY,
        ]
    )
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    trials = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert len(trials) == 2
    losses = [t["metrics"]["val/loss"] for t in trials]
    assert math.isfinite(results["best_value"])
    assert results["best_value"] == pytest.approx(min(losses), rel=1e-6)
    assert set(results["best_params"]) == {
        "task.optimizer.lr",
        "model.hidden_size",
        "model.num_layers",
        "model.dropout",
        "model.pooling",
    }


@pytest.mark.slow
def test_grid_sweep(tmp_path: Path) -> None:
    run(
        [
            "-m",
            "+experiment=quickstart",
            "model=rnn,gru",
            "model.pooling=last,mean",
            f"hydra.sweep.dir={tmp_path}",
            *TINY,
        ]
    )
    summaries = list(tmp_path.glob("*/summary.json"))
    assert len(summaries) == 4


@pytest.mark.slow
def test_every_experiment_as_one_multirun(tmp_path: Path) -> None:
    run(
        [
            "-m",
            "+experiment=glob(*)",
            "trainer.fast_dev_run=true",
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "logger=none",
            "extras.print_config=false",
            f"hydra.sweep.dir={tmp_path}",
        ],
        timeout=3600,
    )
    experiments = list((REPO_ROOT / "configs" / "experiment").glob("*.yaml"))
    assert len(list(tmp_path.glob("*/summary.json"))) == len(experiments)
