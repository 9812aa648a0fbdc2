"""Every backend on the GPU gives the ``loop`` backend's numbers on the CPU.

The same cells, sizes and checks as ``tests/layers/test_backends.py`` (outputs, final states,
gradients of the parameters, the input, the learned initial state and the teacher-forced
targets; with and without ``lengths``, held on the CPU or on the GPU; one layer and two
bidirectional layers): the reference is ``loop`` on the CPU in float64, the GPU runs float32
with TF32 off, compared at :data:`cuda_helpers.FLOAT32` (rtol 1e-4, atol 2e-5).
"""

from __future__ import annotations

import pytest
import torch
from cuda_helpers import DEVICE, FLOAT32, ON_DEVICE, cuda_only, to_cpu64

from rnnkit.layers import Recurrent
from rnnkit.layers.backends import choose_backend, fused
from tests.layers.test_backends import (
    CELLS,
    FEEDBACK_CELLS,
    LENGTHS,
    F,
    H,
    assert_same,
    build,
    reference,
    run,
    sequences,
    supported,
)

pytestmark = ON_DEVICE

#: ``native`` is CPU only (its C++ loops): tested to refuse below
GPU_BACKENDS = ["loop", "fused", "bptt", "auto"]
#: where ``lengths`` lives: nowhere (full sequences), on the CPU (what DataLoaders give), or
#: on the GPU next to the batch
LENGTHS_ON = {"full": None, "lengths_cpu": "cpu", "lengths_gpu": DEVICE}


def on_device(model: torch.nn.Module) -> torch.nn.Module:
    return model.float().to(DEVICE)


def lengths_on(where) -> torch.Tensor | None:
    return None if where is None else LENGTHS.to(where)


@pytest.mark.parametrize(
    "name,backend,where,bidir",
    [
        pytest.param(name, backend, where, bidir, id=f"{name}-{backend}-{tag}-{shape}")
        for name in CELLS
        for backend in GPU_BACKENDS
        if supported(name, backend, False)
        for tag, where in LENGTHS_ON.items()
        for bidir, shape in [(False, "1layer"), (True, "2layer_bidir")]
    ],
)
def test_backend_on_gpu_matches_loop_on_cpu(name, backend, where, bidir):
    model = on_device(build(name, backend, bidir))
    got = run(model, sequences().float().to(DEVICE), lengths_on(where))
    assert got[0].device.type == DEVICE.type
    assert_same(to_cpu64(got), reference(name, where is not None, bidir), **FLOAT32)


@pytest.mark.parametrize("where", ["full", "lengths_gpu"])
@pytest.mark.parametrize("backend", ["loop", "bptt", "auto"])
@pytest.mark.parametrize("name", FEEDBACK_CELLS)
def test_teacher_forced_backend_on_gpu_matches_loop_on_cpu(name, backend, where):
    torch.manual_seed(2)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64)
    O = CELLS[name](input_size=F, hidden_size=H).output_size
    feedback = torch.randn(len(LENGTHS), int(LENGTHS.max()), O, dtype=torch.float64)
    lengths = lengths_on(LENGTHS_ON[where])
    want = run(build(name, "loop", False), x, None if lengths is None else LENGTHS, feedback)
    model = on_device(build(name, backend, False))
    got = run(model, x.float().to(DEVICE), lengths, feedback.float().to(DEVICE))
    assert_same(to_cpu64(got), want, **FLOAT32)


# torch.compile on CUDA generates Triton kernels: a few seconds per graph, so two cells only
# (a torch-kernel cell and an output-feedback one)
@pytest.mark.parametrize("name", ["lstm", "jordan"])
def test_compiled_backend_on_gpu_matches_loop_on_cpu(name):
    model = on_device(build(name, "compiled", False))
    got = run(model, sequences().float().to(DEVICE), LENGTHS.to(DEVICE))
    assert_same(to_cpu64(got), reference(name, True, False), **FLOAT32)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("mode", ["train", "inference"])
@cuda_only
def test_auto_on_gpu_picks_cudnn_else_bptt(name, mode):
    """On CUDA ``auto`` is ``fused`` (cuDNN) wherever a cell has a torch kernel, else ``bptt``
    (docs/benchmarks.md); never ``native``, which is CPU only."""
    cell = CELLS[name](input_size=F, hidden_size=H).to(DEVICE)
    with torch.set_grad_enabled(mode == "train"):
        picked = choose_backend(cell, DEVICE, None)
    assert picked == ("fused" if fused.supports(cell, None) else "bptt")


@cuda_only
def test_native_refuses_a_gpu_cell_with_a_clear_error():
    layer = Recurrent(CELLS["lstm"](input_size=F, hidden_size=H), backend="native").to(DEVICE)
    with pytest.raises(ValueError, match="native"):
        layer(torch.randn(2, 3, F, device=DEVICE))
