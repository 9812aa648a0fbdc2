# ruff: noqa: E501 (one case per line)
"""Items 3, 4, 8, 9 and 10 (runs): one run owns a folder, a resume keeps the metrics history,
SIGTERM saves and exits 143, divergence stops, orphans go, and late checks come early."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from reliability_helpers import QUICK, ToyData, ToyTask, compose, script
from test_resume import _wait_for

from rnnkit import errors as E
from rnnkit.callbacks import NaNGuard
from rnnkit.callbacks.run_guard import _remove_orphans
from rnnkit.cli import EXIT_USER_ERROR, exit_status, translate
from rnnkit.engine import Terminated
from rnnkit.engine.lightning import as_lightning_callback
from rnnkit.utils.checkpointing import load_checkpoint
from rnnkit.utils.reproducibility import RunRecord

LOGGED = [o for o in QUICK if o != "~logger"] + ["logger=csv"]


# --- item 3: one run per folder ---------------------------------------------------------------
def test_a_second_run_in_a_busy_folder_is_refused_and_keeps_the_owners_config(tmp_path):
    hydra = tmp_path / ".hydra"
    hydra.mkdir()
    (hydra / "config.yaml").write_text("owner: A\n")
    with RunRecord(tmp_path) as owner:
        (hydra / "config.yaml").write_text("owner: B\n")  # Hydra of the second run wrote it
        with pytest.raises(
            E.RunDirectoryError, match=rf"{tmp_path} is in use by another run \(pid {os.getpid()}"
        ):
            RunRecord(tmp_path).start()
        assert (hydra / "config.yaml").read_text() == "owner: A\n"
        owner.finish()
    RunRecord(tmp_path, continues=True).start()._release()  # the lock went with the owner


@pytest.mark.parametrize(
    "left", ["summary.json", "checkpoints/last.ckpt", "checkpoints/interrupted.ckpt"]
)
def test_a_fresh_run_in_a_used_folder_is_refused(left, tmp_path):
    (tmp_path / left).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / left).write_text("{}")
    with pytest.raises(
        E.RunDirectoryError, match=r"already holds a run .*continue it with ckpt_path=last"
    ):
        RunRecord(tmp_path).start()
    RunRecord(tmp_path, continues=True).start()._release()  # continuing it is fine


def _rows(path: Path) -> list[tuple]:
    with open(path, newline="") as f:
        return [(r["epoch"], r["step"], r.get("val/loss", "")) for r in csv.DictReader(f)]


def test_rerun_refused_then_resume_keeps_pointers_and_metrics_history(tmp_path):
    from rnnkit.train import train

    run, straight = tmp_path / "run", tmp_path / "straight"
    train(compose([*LOGGED, "trainer.max_epochs=2"], straight))
    train(compose([*LOGGED, "trainer.max_epochs=1"], run))
    with pytest.raises(E.RunDirectoryError, match="already holds a run"):
        train(compose([*LOGGED, "trainer.max_epochs=1"], run))
    train(compose([*LOGGED, "trainer.max_epochs=2", "ckpt_path=last"], run))
    assert sorted(p.name for p in (run / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["last_ckpt"] == str(run / "checkpoints" / "last.ckpt")
    assert load_checkpoint(summary["last_ckpt"])["epoch"] == 1
    # item 4: the resumed metrics.csv reads like the uninterrupted run's
    assert _rows(run / "csv" / "metrics.csv") == _rows(straight / "csv" / "metrics.csv")


# --- item 8: signals, exit codes, divergence --------------------------------------------------
def test_sigterm_saves_a_checkpoint_marks_interrupted_and_exits_143(tmp_path):
    run = tmp_path / "run"
    pause = [
        "+callbacks.pause._target_=reliability_helpers.PauseAt",
        "+callbacks.pause.step=5",
        f"+callbacks.pause.marker={tmp_path / 'paused'}",
        "+callbacks.pause.seconds=2",
    ]
    proc = script("train", [*QUICK, f"hydra.run.dir={run}", *pause])
    _wait_for(tmp_path / "paused", proc, timeout=300)
    os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: interrupted by SIGTERM at step 6; saved "), last
    assert "Traceback" not in stderr
    assert load_checkpoint(run / "checkpoints" / "interrupted.ckpt")["global_step"] == 6
    assert json.loads((run / "run_info.json").read_text())["status"] == "interrupted"
    assert not (run / "summary.json").exists()


def test_exit_status_of_each_kind():
    assert exit_status(E.ConfigError("x")) == EXIT_USER_ERROR == 2
    assert exit_status(E.RunInterruptedError("x", signal.SIGTERM)) == 143
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    assert exit_status(translate(SIGTERMException())) == 143
    assert exit_status(translate(Terminated("SIGTERM"))) == 143  # rnnkit's driver's
    assert translate(RuntimeError("a bug")) is None  # exit 1 with the stack trace


def test_divergence_threshold_stops_the_run(tmp_path):
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[as_lightning_callback(NaNGuard(max_loss=1e-3))],
    )
    with pytest.raises(
        E.NonFiniteLossError,
        match=r"diverged to .* \(above callbacks\.nan_guard\.max_loss=0\.001\)",
    ):
        trainer.fit(ToyTask(), ToyData())


def test_divergence_threshold_must_be_positive():
    with pytest.raises(E.ConfigError, match="max_loss must be a positive number, got -1"):
        NaNGuard(max_loss=-1)


# --- item 10: orphaned checkpoints, late checks -----------------------------------------------
def test_resume_removes_the_best_checkpoint_nobody_tracks(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    callback = ModelCheckpoint(dirpath=tmp_path, filename="best-epoch{epoch:03d}", save_last=True)
    for name in ("best-epoch001.ckpt", "best-epoch002.ckpt", "last.ckpt", "mine.ckpt"):
        (tmp_path / name).write_bytes(b"x")
    callback.best_k_models = {str(tmp_path / "best-epoch002.ckpt"): torch.tensor(0.1)}
    callback.best_model_path = str(tmp_path / "best-epoch002.ckpt")
    callback.last_model_path = str(tmp_path / "last.ckpt")
    _remove_orphans(callback)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best-epoch002.ckpt",
        "last.ckpt",
        "mine.ckpt",
    ]


def test_test_split_shorter_than_the_horizon_fails_at_setup(tmp_path):
    from rnnkit.data.series import TimeSeriesDataModule

    path = tmp_path / "series.csv"
    path.write_text("y\n" + "".join(f"{i}.0\n" for i in range(40)))
    dm = TimeSeriesDataModule(
        path=str(path), target_columns=["y"], window=4, horizon=5, test_size=0.05
    )
    with pytest.raises(
        E.SequenceLengthError,
        match=r"series\.csv:40: series 'series': the test split has 2 rows, fewer than horizon=5",
    ):
        dm.setup("fit")


def test_predict_checks_the_output_before_inference(tmp_path):
    from omegaconf import OmegaConf

    from rnnkit.train import predict

    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    (tmp_path / "x.ckpt").write_bytes(b"never read")
    cfg = OmegaConf.create(
        {
            "ckpt_path": str(tmp_path / "x.ckpt"),
            "input": str(tmp_path / "in.csv"),
            "output": str(tmp_path / "no" / "out.tsv"),
            "data": {},
        }
    )
    with pytest.raises(E.ConfigError, match=r"output=.*out\.tsv: folder .*no does not exist"):
        predict(cfg)


def test_features_one_column_short_at_eval(tmp_path):
    from rnnkit.data import CSVSequenceDataModule

    train = tmp_path / "train.csv"
    rows = "".join(f"s{i // 2},{i},{i + 1},{'xy'[i // 2 % 2]}\n" for i in range(16))
    train.write_text("id,a,b,label\n" + rows)
    kwargs = {"label_column": "label", "sequence_column": "id"}
    dm = CSVSequenceDataModule(
        train_path=str(train), val_fraction=0.25, test_fraction=0.25, **kwargs
    )
    dm.setup("fit")
    short = tmp_path / "short.csv"
    short.write_text("id,a,label\ns0,1,x\n")
    other = CSVSequenceDataModule(test_path=str(short), **kwargs)
    other.load_state_dict(dm.state_dict())
    with pytest.raises(
        E.DataFormatError,
        match=r"short\.csv:2: 1 features per step, but the model was trained on 2",
    ):
        other.encode(other.read(str(short))[0])


@pytest.mark.parametrize(
    "code, text",
    [(13, "Permission denied"), (30, "Read-only file system"), (28, "No space left on device")],
)
def test_unwritable_output_folder_is_one_line(code, text):
    error = translate(
        PermissionError(code, text, "/ro/outputs/run")
        if code == 13
        else OSError(code, text, "/ro/outputs/run")
    )
    assert isinstance(error, E.OutputError)
    assert str(error).startswith(f"/ro/outputs/run: cannot write ({text}); ")
