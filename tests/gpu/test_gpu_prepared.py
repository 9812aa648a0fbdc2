"""The GPU checks are ready to run on a machine without a GPU (these tests are not ``gpu``):
the gpu tests collect, skip saying why, and their code runs on the CPU in a dry run;
``bench.py --device cuda`` and ``gpu_check.sh`` stop with one ``error:`` line.

Each check runs in a subprocess with CUDA hidden (``CUDA_VISIBLE_DEVICES=""``), so it means the
same on a GPU machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cuda_helpers import NO_CUDA

from tests.helpers import REPO_ROOT
from tests.layers.test_backends import CELLS

GPU_TESTS = str(Path(__file__).parent)


def run_without_cuda(*command: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "RNNKIT_GPU_TESTS_DEVICE"}
    return subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**environ, "CUDA_VISIBLE_DEVICES": "", **env},
    )  # fmt: skip


def pytest_summary(done: subprocess.CompletedProcess) -> dict[str, int]:
    """``{"passed": 3, "skipped": 2, ...}`` from pytest's last line."""
    last = done.stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_without_cuda_every_gpu_test_skips_saying_why():
    done = run_without_cuda(
        sys.executable, "-m", "pytest", GPU_TESTS, "-m", "gpu", "-q", "-rs", "-p",
        "no:cacheprovider",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counts = pytest_summary(done)
    # at least the parity of every cell on `loop`: three kinds of lengths, two shapes
    assert counts.get("skipped", 0) >= 6 * len(CELLS), counts
    assert not {"passed", "failed", "error", "errors"} & counts.keys(), counts
    assert NO_CUDA in done.stdout


@pytest.mark.slow  # a second collection of tests/gpu; run it before spending GPU minutes
def test_gpu_test_code_runs_on_the_cpu_in_a_dry_run():
    # the LSTM cases of every tensor-level file (torch.compile's are too slow for the CPU)
    done = run_without_cuda(
        sys.executable, "-m", "pytest", GPU_TESTS, "-m", "gpu", "-q", "-p", "no:cacheprovider",
        "-k", "lstm and not compiled", RNNKIT_GPU_TESTS_DEVICE="cpu",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counts = pytest_summary(done)
    assert counts.get("passed", 0) >= 40 and "failed" not in counts, counts


def test_bench_on_cuda_without_cuda_is_one_error_line():
    done = run_without_cuda(sys.executable, "scripts/bench.py", "--device", "cuda", "--quick")
    assert done.returncode == 1
    assert done.stdout == ""
    assert re.fullmatch(r"error: --device cuda: no CUDA GPU is available \(.*\)\n", done.stderr)


def test_gpu_check_parses_and_stops_without_cuda(tmp_path):
    syntax = subprocess.run(["bash", "-n", "scripts/gpu_check.sh"], cwd=REPO_ROOT)
    assert syntax.returncode == 0
    results = tmp_path / "results"
    done = run_without_cuda("bash", "scripts/gpu_check.sh", str(results), PYTHON=sys.executable)
    assert done.returncode == 1
    assert re.fullmatch(r"error: no CUDA GPU is visible to .*\n", done.stderr), done.stderr
    assert not results.exists(), "nothing may run, or be written, without a GPU"
