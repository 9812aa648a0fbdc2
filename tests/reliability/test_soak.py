"""The soak test: 20 interruptions (SIGKILL and SIGTERM) spread over one training, each
followed by a resume with ``ckpt_path=last``, end with the metrics of an uninterrupted run and
its ``metrics.csv``, row for row.

The plan is drawn up front from a seeded generator: a quarter of the attempts are interrupted
during their set-up (imports, config, data, restoring the checkpoint and the metrics history);
the others once the run has reached their target epoch (targets spread evenly over the run,
each attempt training at least one epoch), a random moment within the next epoch or so later
(inside a training step, the validation, the row writes or the checkpoint write). The moments
are measured in the run's own time (its set-up and epoch durations, observed from
``metrics.csv``), so a busy machine or a fast one changes nothing, and the run cannot end
before the 20th interruption.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import statistics
import time
from pathlib import Path

import pytest
from reliability_helpers import QUICK, script

EPOCHS = 100
INTERRUPTIONS = 20
#: the last target epoch, far enough from the end that an attempt cannot finish before its kill
LAST_TARGET = EPOCHS - 15
RUN = [o for o in QUICK if o not in ("~logger", "trainer.max_epochs=2")]
RUN += ["logger=csv", f"trainer.max_epochs={EPOCHS}", "callbacks.early_stopping=null"]


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _epochs_done(run: Path) -> int:
    """The training epochs with a row in metrics.csv (-1: none yet)."""
    try:
        rows = _rows(run)
    except (OSError, csv.Error):  # not there yet, or moved aside by a resume
        return -1
    return max((int(r["epoch"]) for r in rows if r.get("train/loss")), default=-1)


def _scores(run: Path) -> dict:
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    return {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}


def _start(run: Path, resume: bool):
    return script("train", [*RUN, f"hydra.run.dir={run}", *(["ckpt_path=last"] if resume else [])])


def _plan(rng: random.Random) -> list[int | None]:
    """Each interruption's target epoch, ``None`` for one during the set-up."""
    during_setup = [rng.random() < 0.25 for _ in range(INTERRUPTIONS)]
    n = during_setup.count(False)
    targets = iter(int((k + rng.random()) * LAST_TARGET / n) for k in range(n))
    return [None if setup else next(targets) for setup in during_setup]


class Attempts:
    """Start attempts and wait for their progress, timing the set-up and the epochs."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.setup_seconds: list[float] = []  # from the start to the first epoch's row
        self.epoch_seconds: list[float] = []

    def start(self):
        self.started = time.monotonic()
        return _start(self.run, resume=True)

    def wait_for(self, proc, epoch: int, number: int) -> None:
        """Until metrics.csv has the training row of ``epoch``."""
        seen, changed = _epochs_done(self.run), None
        deadline = self.started + 300
        while seen < epoch:
            if proc.poll() is not None:
                pytest.fail(f"attempt {number} ended: {proc.communicate()[1][-2000:]}")
            assert time.monotonic() < deadline, f"attempt {number} made no progress"
            time.sleep(0.005)
            now = _epochs_done(self.run)
            if now > seen:
                moment = time.monotonic()
                if changed is None:
                    self.setup_seconds.append(moment - self.started)
                elif seen >= 0:
                    self.epoch_seconds.append((moment - changed) / (now - seen))
                seen, changed = now, moment

    def setup(self) -> float:
        return min(self.setup_seconds, default=1.0)

    def epoch(self) -> float:
        return statistics.median(self.epoch_seconds[-20:]) if self.epoch_seconds else 0.05


@pytest.mark.slow
def test_twenty_interruptions_then_the_same_result(tmp_path):
    rng = random.Random(14)
    straight = _start(tmp_path / "straight", resume=False)
    run = tmp_path / "soak"
    attempts, done = Attempts(run), []
    for number, target in enumerate(_plan(rng), 1):
        before = _epochs_done(run)
        proc = attempts.start()
        if target is None:
            time.sleep(rng.uniform(0.0, attempts.setup()))
        else:
            attempts.wait_for(proc, max(target, before + 1), number)
            time.sleep(rng.uniform(0.0, 1.5 * attempts.epoch()))
        assert proc.poll() is None, f"attempt {number} finished before its interruption"
        kind = rng.choice([signal.SIGKILL, signal.SIGTERM])
        os.kill(proc.pid, kind)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode in (-signal.SIGKILL, -signal.SIGTERM, 143), stderr[-2000:]
        done.append((kind.name, target, _epochs_done(run)))
    final = _start(run, resume=True)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-2000:]
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-2000:]
    print(f"set-up {attempts.setup():.2f} s, epoch {attempts.epoch():.3f} s; interruptions {done}")
    assert len(done) == INTERRUPTIONS
    assert {kind for kind, _, _ in done} == {"SIGKILL", "SIGTERM"}
    assert max(epochs for _, _, epochs in done) >= LAST_TARGET * 0.8, done  # spread over the run
    assert _scores(run) == _scores(tmp_path / "straight")
    assert _rows(run) == _rows(tmp_path / "straight")
    assert len(_rows(run)) == 2 * EPOCHS + 1  # a validation and a training row an epoch, a test
