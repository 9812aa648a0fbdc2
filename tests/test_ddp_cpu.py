"""DDP on this CPU machine: ``trainer=ddp_cpu`` trains with two gloo processes to the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT


def test_ddp_cpu_two_ranks_finish(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "+experiment=quickstart",
            "trainer=ddp_cpu",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=2",
            "+trainer.limit_test_batches=2",
            "trainer.enable_progress_bar=false",
            "extras.print_config=false",
            "extras.verbose=true",  # Lightning's "Initializing distributed" lines on the console
            "logger=csv",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    # both processes joined the group and the run finished on rank 0
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in output and "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["global_step"] == 3  # each rank ran 3 steps on its half of the data
    assert "test/acc" in summary["metrics"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
