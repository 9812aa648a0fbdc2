"""Crash and resume: a run killed with SIGKILL mid-epoch resumes and ends as if never stopped.

The fast variant trains a tiny model through the same machinery train() uses
(:class:`AtomicCheckpointIO`, :class:`RNGState`, ``ckpt_path=last``) in a real subprocess that a
real ``SIGKILL`` stops in the middle of an epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from reliability_helpers import toy_run

from rnnkit.utils.checkpointing import load_checkpoint

HERE = Path(__file__).resolve().parent


def _start(out: Path, epochs: int, pause_step: int | None = None) -> subprocess.Popen:
    args = [sys.executable, str(HERE / "reliability_helpers.py"), str(out), str(epochs)]
    if pause_step is not None:
        args += [str(pause_step), str(out / "paused")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    # a hang guard, not a timing: a loaded 2-core machine needs minutes to import and reach a step
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out = proc.stdout.read()
            raise AssertionError(
                f"run ended early:\n{out if isinstance(out, str) else out.decode()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    # 64 examples / batch 8 = 8 steps per epoch; step 13 is in the middle of epoch 1
    killed = tmp_path / "killed"
    proc = _start(killed, epochs=3, pause_step=13)
    _wait_for(killed / "paused", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "result.json").exists()
    last = killed / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["epoch"] == 0  # the epoch-0 checkpoint survived the kill

    resumed = _start(killed, epochs=3)  # same folder, ckpt_path=last
    straight = toy_run(tmp_path / "straight", max_epochs=3)  # meanwhile, in this process
    assert resumed.wait(timeout=120) == 0, resumed.stdout.read().decode()

    a = json.loads((killed / "result.json").read_text())
    b = json.loads(json.dumps(straight))
    assert a["global_step"] == b["global_step"] == 24
    assert a == b  # bit-identical metrics and weights


def test_resume_in_process_is_exact(tmp_path):
    """Without the RNGState callback the resumed run would shuffle differently."""
    full = toy_run(tmp_path / "full", max_epochs=3)
    toy_run(tmp_path / "split", max_epochs=1)
    resumed = toy_run(tmp_path / "split", max_epochs=3)
    assert resumed == full


def test_last_checkpoint_loads_with_weights_only(tmp_path):
    toy_run(tmp_path, max_epochs=1)
    path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["rnnkit"]["config"]["model"] == {"hidden_size": 16}
    assert "torch" in checkpoint["rnnkit"]["versions"]
    leftovers = [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def test_resume_refuses_a_different_model_config(tmp_path):
    from rnnkit.errors import CheckpointMismatchError

    toy_run(tmp_path, max_epochs=1, hidden_size=16)
    with pytest.raises(
        CheckpointMismatchError, match=r"model\.hidden_size is 16 in the checkpoint but 8"
    ):
        toy_run(tmp_path, max_epochs=2, hidden_size=8)


# --- the real pipeline: rnnkit.train.train and scripts/train.py ---------------------------------
def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


def test_pipeline_resume_matches_uninterrupted(tmp_path):
    """train() stopped after epoch 0, resumed with ckpt_path=last, equals a straight run."""
    from reliability_helpers import QUICK, compose

    from rnnkit.train import train

    straight = train(compose(QUICK, tmp_path / "straight"))
    train(compose([*QUICK, "trainer.max_epochs=1"], tmp_path / "split"))
    resumed = train(compose([*QUICK, "ckpt_path=last"], tmp_path / "split"))
    assert resumed == straight
    assert _metrics(tmp_path / "split") == _metrics(tmp_path / "straight")
    info = json.loads((tmp_path / "split" / "run_info.json").read_text())
    assert info["status"] == "completed" and info["attempt"] == 2


def test_pipeline_checkpoint_is_plain_data(tmp_path):
    from reliability_helpers import QUICK, compose

    from rnnkit.train import train

    train(compose([*QUICK, "trainer.max_epochs=1", "test=false"], tmp_path))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["optimizer"]["_target_"] == "torch.optim.adam.Adam"
    assert checkpoint["rnnkit"]["config"]["model"]["hidden_size"] == 16
    fitted = checkpoint["CSVSequenceDataModule"]["fitted"]
    assert json.loads(json.dumps(fitted)) == fitted  # the scaler and labels are JSON data
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["seed"] == 12345
    assert {"python", "torch", "lightning", "rnnkit"} <= set(info["versions"])
    assert (tmp_path / "config.yaml").is_file()


def test_pipeline_resume_refuses_other_model(tmp_path):
    from reliability_helpers import QUICK, compose

    from rnnkit.errors import CheckpointMismatchError
    from rnnkit.train import train

    train(compose([*QUICK, "trainer.max_epochs=1", "test=false"], tmp_path))
    cfg = compose([*QUICK, "ckpt_path=last", "model.hidden_size=32"], tmp_path)
    with pytest.raises(CheckpointMismatchError, match=r"model\.hidden_size is 16 .* but 32"):
        train(cfg)
    assert not (tmp_path / "summary.json").exists()
    assert json.loads((tmp_path / "run_info.json").read_text())["status"] == "failed"


def test_resume_true_skips_a_finished_run(tmp_path):
    from reliability_helpers import QUICK, compose

    from rnnkit.errors import ConfigError
    from rnnkit.train import train

    first = train(compose([*QUICK, "trainer.max_epochs=1"], tmp_path))
    stamp = (tmp_path / "summary.json").stat().st_mtime_ns
    again = train(compose([*QUICK, "trainer.max_epochs=1", "resume=true"], tmp_path))
    assert again == pytest.approx(first)
    assert (tmp_path / "summary.json").stat().st_mtime_ns == stamp  # nothing was redone
    with pytest.raises(ConfigError, match=r"model\.hidden_size=16, but this run has .*=32"):
        train(compose([*QUICK, "model.hidden_size=32", "resume=true"], tmp_path))


@pytest.mark.slow
def test_pipeline_sigkill_then_resume(tmp_path):
    """scripts/train.py killed with SIGKILL mid-epoch, resumed with ckpt_path=last."""
    from reliability_helpers import QUICK, script

    run = tmp_path / "run"
    pause = [
        "+callbacks.pause._target_=reliability_helpers.PauseAt",
        "+callbacks.pause.step=6",  # 4 steps per epoch: the middle of epoch 1
        f"+callbacks.pause.marker={tmp_path / 'paused'}",
    ]
    proc = script("train", [*QUICK, f"hydra.run.dir={run}", *pause])
    straight = script("train", [*QUICK, f"hydra.run.dir={tmp_path / 'straight'}"])
    _wait_for(tmp_path / "paused", proc, timeout=240)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run / "summary.json").exists()
    assert json.loads((run / "run_info.json").read_text())["status"] == "running"
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 0

    resumed = script("train", [*QUICK, f"hydra.run.dir={run}", "ckpt_path=last"])
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1][-3000:]
    assert straight.wait(timeout=300) == 0, straight.communicate()[1][-3000:]
    assert _metrics(run) == _metrics(tmp_path / "straight")
