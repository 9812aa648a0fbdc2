"""An interrupted Optuna search (or multirun) continues without redoing finished trials."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState
from reliability_helpers import QUICK, compose, script

from rnnkit.utils.sweeps import ResumeOptunaStudy, prepare_study, trial_dir


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sweep' / 'optuna.db'}"


def test_prepare_study_requeues_interrupted_trials(tmp_path):
    storage = _storage(tmp_path)
    assert prepare_study(storage, "s", 5) == 5  # new study; the folder is created
    study = optuna.create_study(study_name="s", storage=storage)
    done = study.ask({"lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-1)})
    study.tell(done, 0.5)
    killed = study.ask({"lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-1)})
    assert prepare_study(storage, "s", 5) == 4  # 1 finished; the killed one runs again

    study = optuna.load_study(study_name="s", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    again = study.ask({"lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-1)})
    assert again.params == killed.params  # same parameters -> same trial folder


def test_callback_lowers_n_trials_of_the_composed_config(tmp_path):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from reliability_helpers import CONFIG_DIR

    import rnnkit.utils.config  # noqa: F401 - registers the resolvers the scripts use

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose(
            "train.yaml",
            overrides=["+experiment=quickstart", "+hparams_search=quickstart_optuna"],
            return_hydra_config=True,
        )
    assert cfg.hydra.sweeper.storage.startswith("sqlite:///")
    assert "resume_optuna" in cfg.hydra.callbacks
    assert (
        OmegaConf.to_container(cfg.hydra.sweep)["subdir"]
        == "${trial_dir:${hydra.job.override_dirname}}"
    )
    storage = _storage(tmp_path)
    (tmp_path / "sweep").mkdir()
    study = optuna.create_study(study_name="quickstart", storage=storage)
    for value in (0.3, 0.2):
        study.tell(study.ask(), value)
    cfg.hydra.sweeper.storage = storage
    ResumeOptunaStudy().on_multirun_start(config=cfg)
    assert cfg.hydra.sweeper.n_trials == 18


def _summaries(sweep: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}


@pytest.mark.slow
def test_killed_optuna_search_continues(tmp_path):
    sweep = tmp_path / "sweep"
    command = [
        "-m",
        *QUICK,
        "+hparams_search=quickstart_optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2",
        f"hydra.sweep.dir={sweep}",
        "resume=true",
        # pause the second trial in its second epoch (once the first trial has finished)
        "+callbacks.pause._target_=reliability_helpers.PauseAt",
        "+callbacks.pause.step=6",
        f"+callbacks.pause.marker={tmp_path / 'paused'}",
        f"+callbacks.pause.when_exists={sweep}/*/summary.json",
    ]
    first = script("train", command)
    deadline = time.monotonic() + 400
    while not (tmp_path / "paused").exists():
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    finished = _summaries(sweep)
    assert len(finished) == 1

    second = script("train", command)  # the same command again
    _, stderr = second.communicate(timeout=500)
    assert second.returncode == 0, stderr[-3000:]
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 1
    after = _summaries(sweep)
    assert len(after) == 3
    for name, stamp in finished.items():
        assert after[name] == stamp  # the finished trial was not run again
    resumed = [
        json.loads(p.read_text())
        for p in sweep.glob("*/run_info.json")
        if json.loads(p.read_text())["attempt"] == 2
    ]
    assert len(resumed) == 1  # the killed trial went on from its last.ckpt


@pytest.mark.slow
def test_multirun_rerun_skips_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    command = ["-m", *QUICK, "model.hidden_size=8,16", f"hydra.sweep.dir={sweep}", "resume=true"]
    proc = script("train", command)
    assert proc.wait(timeout=400) == 0, proc.communicate()[1][-3000:]
    before = _summaries(sweep)
    assert len(before) == 2
    proc = script("train", command)
    assert proc.wait(timeout=400) == 0, proc.communicate()[1][-3000:]
    assert _summaries(sweep) == before


def test_resume_true_on_a_fresh_folder_just_trains(tmp_path):
    from rnnkit.train import train

    metrics = train(
        compose([*QUICK, "trainer.max_epochs=1", "test=false", "resume=true"], tmp_path)
    )
    assert "val/loss" in metrics


def test_trial_dir_is_safe_and_stable():
    name = "model.hidden_size=32,data.train_path=/data/x.csv,+callbacks.p.when=/a/*/b"
    assert trial_dir(name) == trial_dir(name)
    assert "/" not in trial_dir(name) and "*" not in trial_dir(name)
    long = ",".join(f"k{i}=v{i}" for i in range(60))
    assert len(trial_dir(long)) == 120 and trial_dir(long) != trial_dir(long + ",x=1")
