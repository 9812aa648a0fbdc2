"""The soak test: 20 interruptions (SIGKILL and SIGTERM, at random moments of a training), each
followed by a resume with ``ckpt_path=last``, end with the metrics of an uninterrupted run and a
complete ``metrics.csv`` history."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from reliability_helpers import QUICK, script

RUN = [o for o in QUICK if o not in ("~logger", "trainer.max_epochs=2")]
RUN += ["logger=csv", "trainer.max_epochs=80", "callbacks.early_stopping=null"]


def _history(run: Path) -> list[tuple]:
    """The rows of metrics.csv (a run resumed after it finished validates once more: the same
    row again, so rows are compared as a set)."""
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return sorted({tuple(sorted(row.items())) for row in csv.DictReader(f)})


def _scores(run: Path) -> dict:
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    return {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}


def _start(run: Path, resume: bool):
    return script("train", [*RUN, f"hydra.run.dir={run}", *(["ckpt_path=last"] if resume else [])])


@pytest.mark.slow
def test_twenty_interruptions_then_the_same_result(tmp_path):
    rng = random.Random(14)
    straight = _start(tmp_path / "straight", resume=False)
    run = tmp_path / "soak"
    kinds = []
    while len(kinds) < 20:
        proc = _start(run, resume=True)
        started = time.time()
        # a random moment: during this attempt's set-up for a quarter of them, else after it
        # has written a checkpoint (so every attempt makes progress), up to 1 s later
        deadline = time.monotonic() + 300
        last = run / "checkpoints" / "last.ckpt"
        during_setup = rng.random() < 0.25
        while not during_setup and not (last.exists() and last.stat().st_mtime >= started):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            break  # finished before we could interrupt it: the rest are not needed
        kind = rng.choice([signal.SIGKILL, signal.SIGTERM])
        os.kill(proc.pid, kind)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode in (-signal.SIGKILL, -signal.SIGTERM, 143, 0), stderr[-2000:]
        kinds.append(kind)
    final = _start(run, resume=True)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-2000:]
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-2000:]
    assert len(kinds) == 20, f"the training ended after {len(kinds)} interruptions"
    assert _scores(run) == _scores(tmp_path / "straight")
    assert _history(run) == _history(tmp_path / "straight")
