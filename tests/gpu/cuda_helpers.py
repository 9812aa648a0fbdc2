"""What the tests under ``tests/gpu/`` share: the device they run on, their marks, float32.

Every test here is marked ``gpu`` (deselected by default: ``make test-gpu`` or
``pytest -m gpu tests/gpu`` runs them; ``scripts/gpu_check.sh`` does so on a GPU machine).
Without CUDA each one skips with :data:`NO_CUDA` as its reason.

``RNNKIT_GPU_TESTS_DEVICE=cpu`` runs the tensor-level tests on the CPU instead: a dry run of
the test code on a machine without a GPU, so that GPU minutes are not spent on a typo. It
proves nothing about CUDA; the tests that only mean something on CUDA (cuDNN, trainers,
checkpoints moved between devices) stay ``CUDA_ONLY`` and skip in it.
"""

from __future__ import annotations

import os

import pytest
import torch

DEVICE = torch.device(os.environ.get("RNNKIT_GPU_TESTS_DEVICE", "cuda"))
NO_CUDA = (
    f"CUDA is not available (torch {torch.__version__}, CUDA build {torch.version.cuda}): "
    "the gpu tests need an NVIDIA GPU (scripts/gpu_check.sh runs them on one)"
)
_cuda_missing = not torch.cuda.is_available()

#: module marks for tests that run on :data:`DEVICE` (CUDA, or the CPU in a dry run)
ON_DEVICE = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE.type == "cuda" and _cuda_missing, reason=NO_CUDA),
]
#: a test that only means something on CUDA (it skips in the CPU dry run too)
cuda_only = pytest.mark.skipif(_cuda_missing, reason=NO_CUDA)
#: module marks for a module of such tests
CUDA_ONLY = [pytest.mark.gpu, cuda_only]

#: float32 on the device against float64 on the CPU, at the sizes of
#: tests/layers/test_backends.py (T <= 6, H = 4): float32 on the CPU is off by at most
#: 3.6e-6 there (every backend, outputs, states and gradients); five times that, plus a
#: relative term for the larger gradients
FLOAT32 = dict(rtol=1e-4, atol=2e-5)


def to_cpu64(result):
    """:func:`tests.layers.test_backends.run`'s ``(outputs, states, grads)`` on the CPU in
    float64, to compare with the float64 reference."""
    outputs, states, grads = result
    return _cpu64(outputs), [_cpu64(s) for s in states], [_cpu64(g) for g in grads]


def _cpu64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float64)
