"""A run killed (SIGKILL) around an epoch's checkpoint and resumed with ``last.ckpt`` ends with
the uninterrupted run's ``metrics.csv``, row for row: no row missing, none duplicated.

The kill lands just before or just after the checkpoint callback writes ``last.ckpt`` at an
epoch's end, when that epoch's rows are already in ``metrics.csv`` (the trainer writes them
first). A resume keeps the rows before the checkpoint's ``global_step``
(:func:`~rnnkit.utils.metrics_history.keep_csv_history`) and logs the rest again.

Run as a script: ``python test_metrics_history.py FOLDER EPOCHS [KILL_EPOCH before|after]``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _train(folder: Path, epochs: int, kill_epoch: int = -1, when: str = "") -> None:
    """The engine's toy run with rnnkit's CSV logger, resumed from ``last.ckpt`` if it exists;
    SIGKILL itself at the end of epoch ``kill_epoch``, ``before`` or ``after`` last.ckpt."""
    from rnnkit.callbacks import RNGState
    from rnnkit.engine import Trainer
    from rnnkit.engine.callbacks import ModelCheckpoint
    from rnnkit.engine.loggers import CSVLogger
    from rnnkit.engine.seed import seed_everything
    from rnnkit.utils.checkpointing import load_checkpoint, resolve_ckpt_path
    from rnnkit.utils.metrics_history import keep_csv_history
    from tests.engine.toy import ToyData, ToyTask

    class KillAround(ModelCheckpoint):
        def on_train_epoch_end(self, trainer, task) -> None:
            kill = trainer.current_epoch == kill_epoch
            if kill and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            super().on_train_epoch_end(trainer, task)
            if kill and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)

    seed_everything(7)
    checkpoints = folder / "checkpoints"
    logger = CSVLogger(folder, name="csv", version="")
    ckpt_path = resolve_ckpt_path("last", checkpoints)
    if ckpt_path:  # what rnnkit.train does
        keep_csv_history([logger], int(load_checkpoint(ckpt_path)["global_step"]))
    trainer = Trainer(
        max_epochs=epochs,
        default_root_dir=folder,
        accelerator="cpu",
        logger=logger,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[KillAround(dirpath=checkpoints, save_last=True), RNGState()],
    )
    trainer.fit(ToyTask(), ToyData(), ckpt_path=ckpt_path)
    logger.finalize("success")


def _run(folder: Path, epochs: int, *kill: str) -> int:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, __file__, str(folder), str(epochs), *kill]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=120).returncode


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> str:
    """The uninterrupted run's metrics.csv: a validation and a training row an epoch."""
    folder = tmp_path_factory.mktemp("straight")
    assert _run(folder, 3) == 0
    history = (folder / "csv" / "metrics.csv").read_text()
    assert len(history.splitlines()) == 1 + 3 * 2
    return history


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigkill_at_an_epochs_checkpoint_then_resume_keeps_the_same_history(
    tmp_path, straight, when
):
    assert _run(tmp_path, 3, "1", when) == -signal.SIGKILL
    assert _run(tmp_path, 3) == 0
    assert (tmp_path / "csv" / "metrics.csv").read_text() == straight


def test_resuming_a_finished_run_adds_no_row(tmp_path):
    """``ckpt_path=last`` of a finished run validates (to report val metrics) and tests again:
    its metrics.csv is the finished run's, without a second validation row."""
    from reliability_helpers import QUICK, compose

    from rnnkit.train import train

    overrides = [o for o in QUICK if o != "~logger"] + ["logger=csv", "trainer.max_epochs=1"]
    train(compose(overrides, tmp_path))
    history = (tmp_path / "csv" / "metrics.csv").read_text()
    train(compose([*overrides, "ckpt_path=last"], tmp_path))
    assert (tmp_path / "csv" / "metrics.csv").read_text() == history


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def test_a_resume_killed_while_it_puts_the_history_back_loses_no_row(tmp_path, monkeypatch):
    from rnnkit.engine.loggers import CSVLogger
    from rnnkit.utils import metrics_history

    folder = tmp_path / "csv"
    folder.mkdir()
    rows = ["epoch,step,train/loss,val/loss", "0,7,,2.5", "0,7,1.5,", "1,15,,2.0", "1,15,1.0,"]
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")

    def killed(path, data):
        raise Killed

    monkeypatch.setattr(metrics_history, "atomic_write_bytes", killed)
    with pytest.raises(Killed):  # after the logger started (and deleted metrics.csv)
        metrics_history.keep_csv_history([CSVLogger(tmp_path, name="csv", version="")], 8)
    monkeypatch.undo()
    logger = CSVLogger(tmp_path, name="csv", version="")
    metrics_history.keep_csv_history([logger], 8)  # the next resume
    assert (folder / "metrics.csv").read_text().splitlines() == rows[:3]
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.csv"]
    logger.log_metrics({"val/loss": 1.75, "epoch": 1}, step=15)
    logger.save()
    assert (folder / "metrics.csv").read_text().splitlines() == [*rows[:3], "1,15,,1.75"]


if __name__ == "__main__":
    kill = (int(sys.argv[3]), sys.argv[4]) if len(sys.argv) > 4 else ()
    _train(Path(sys.argv[1]), int(sys.argv[2]), *kill)
