"""The same config and seed give identical metrics on CPU in two fresh processes, and every run
records its seed, the versions and the composed config."""

from __future__ import annotations

import json

import yaml
from reliability_helpers import QUICK, script


def test_same_seed_same_metrics_in_fresh_processes(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [script("train", [*QUICK, f"hydra.run.dir={run}"]) for run in runs]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
    a, b = (json.loads((run / "summary.json").read_text()) for run in runs)
    assert a["metrics"] == b["metrics"]  # exactly, not approximately
    assert {"test/loss", "test/acc", "val/loss"} <= set(a["metrics"])

    for run in runs:
        info = json.loads((run / "run_info.json").read_text())
        assert info["status"] == "completed"
        assert info["seed"] == 12345
        assert {"python", "torch", "lightning", "rnnkit"} <= set(info["versions"])
        config = yaml.safe_load((run / "config.yaml").read_text())  # resolved
        assert config["seed"] == 12345 and config["model"]["hidden_size"] == 16
        assert (run / ".hydra" / "config.yaml").is_file()  # as composed, by Hydra


def test_different_seed_differs(tmp_path):
    """Guards the test above: it would pass trivially if the seed did nothing."""
    from reliability_helpers import compose

    from rnnkit.train import train

    a = train(compose([*QUICK, "trainer.max_epochs=1", "test=false"], tmp_path / "a"))
    b = train(compose([*QUICK, "trainer.max_epochs=1", "test=false", "seed=7"], tmp_path / "b"))
    assert a["val/loss"] != b["val/loss"]
