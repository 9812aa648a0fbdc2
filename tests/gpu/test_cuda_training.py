"""Training on one GPU: ``trainer=gpu`` and ``trainer=ddp`` (NCCL, one process) with
``fast_dev_run``, and a checkpoint written on the GPU that evaluates on a machine without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cuda_helpers import CUDA_ONLY

from rnnkit.train import train
from tests.helpers import REPO_ROOT
from tests.test_train_eval_predict import TINY, save_run_config

pytestmark = CUDA_ONLY

ON_ONE_GPU = [
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "extras.print_config=false",
]


def run_script(script: str, *overrides: str, env: dict | None = None) -> str:
    """Run ``scripts/<script>`` with Hydra ``overrides``; its output, after checking success."""
    done = subprocess.run(
        [sys.executable, f"scripts/{script}", *overrides], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def test_trainer_gpu_fast_dev_run_trains_on_the_gpu(compose_cfg):
    cfg = compose_cfg(
        ["+experiment=quickstart", "trainer=gpu", "trainer.fast_dev_run=true", "logger=none",
         *ON_ONE_GPU]
    )  # fmt: skip
    torch.cuda.reset_peak_memory_stats()
    metrics = train(cfg)
    assert torch.cuda.max_memory_allocated() > 0, "nothing was put on the GPU"
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))


def test_trainer_ddp_fast_dev_run_on_one_gpu(tmp_path: Path):
    run_dir = tmp_path / "run"
    output = run_script(
        "train.py", "+experiment=quickstart", "trainer=ddp", "trainer.fast_dev_run=true",
        "logger=none", *ON_ONE_GPU, f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert "GLOBAL_RANK: 0, MEMBER: 1/1" in output  # NCCL's process group of one
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 1
    assert summary["global_step"] == 1  # fast_dev_run: one training batch
    assert "test/acc" in summary["metrics"]


def test_checkpoint_written_on_gpu_evaluates_without_a_gpu(compose_cfg, tmp_path: Path):
    on_gpu = [o for o in TINY if not o.startswith("trainer.accelerator=")]
    cfg = compose_cfg(["+experiment=quickstart", "trainer=gpu", *on_gpu], subdir="train")
    run_dir = Path(cfg.paths.output_dir)
    save_run_config(cfg, run_dir)
    metrics = train(cfg)
    best = json.loads((run_dir / "summary.json").read_text())["best_ckpt"]
    # written from the GPU: its tensors come back as CUDA tensors unless mapped
    weights = torch.load(best, weights_only=True)["state_dict"]
    assert all(t.is_cuda for t in weights.values() if isinstance(t, torch.Tensor))

    eval_dir = tmp_path / "eval"
    run_script(
        "eval.py", f"ckpt_path={best}", "trainer.accelerator=cpu", "trainer.devices=1",
        "trainer.enable_progress_bar=false", "extras.print_config=false",
        f"hydra.run.dir={eval_dir}",
        env={"CUDA_VISIBLE_DEVICES": ""},  # a machine without a GPU
    )  # fmt: skip
    evaluated = json.loads((eval_dir / "summary.json").read_text())["metrics"]
    # the same weights and data; float32 sums in another order on another device
    assert evaluated["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-4, abs=1e-5)
    n_test = round(1797 * 0.15)  # configs/data/digits.yaml: test_fraction of 1797 images
    assert evaluated["test/acc"] == pytest.approx(metrics["test/acc"], abs=1.5 / n_test)
