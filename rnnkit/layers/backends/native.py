r"""The ``native`` backend: the kernels of :mod:`.bptt`, their time loops in C++.

Same algorithm, same buffers, same gradients as ``bptt`` (each kernel's one autograd Function
chooses its loop with ``native=True``): the input projection of all steps is one matmul, the
loops do only the recurrent part, and ``dW_hh = dG^T H_{prev}`` is one matmul at the end. What
changes is the loop body: in ``rnnkit/csrc/`` a step is one matmul plus one vectorised pass over
the gates, where torch's own GRU/RNN on CPU (and the Python loops of ``bptt``) dispatch a dozen
small ops. Measured in ``scripts/bench.py``: faster than ``torch.nn.GRU``/``RNN`` for training
and inference (docs/benchmarks.md). Jordan's and NARX's closed loops run their forward and
backward loops in C++ (:mod:`.feedback` prepares the coefficients); their open loop has no
nonlinear recurrence left.
Without a gradient to record, the loops keep no activations.

The per-step matmul in float32 is oneDNN's brgemm micro-kernel (through
``at::native::cpublas::brgemm``) with the output columns split over the intra-op threads: at a
batch of 32 one MKL call keeps to one core, so this is about 2x faster than ``addmm`` at H=128
and at par with oneDNN's packed linear at H=512; float64 uses MKL's ``addmm``. CPU only; the
library is compiled on first use (:mod:`.native_build`), and without a compiler this backend
reports itself unsupported.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import native_build
from rnnkit.layers.backends.bptt import (
    NATIVE_KERNELS,
    autocast_active,
    kernel_of,
    unroll_with_kernel,
)


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    weight = next(cell.parameters())
    return (
        (feedback is None or cell.output_feedback)
        and kernel_of(cell) in NATIVE_KERNELS
        and weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.float64)  # what the loops are compiled for
        and not autocast_active()
        and native_build.load() is not None
    )


def unroll_native(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x (B, T, F)`` with its C++ time loop."""
    if torch.compiler.is_compiling():
        # the C++ ops have no fake-tensor kernels, so dynamo cannot trace into them: this
        # unroll runs eagerly behind a graph break and dynamo compiles the rest. Disabled here,
        # not by a decorator, since torch.compiler.disable imports dynamo (~0.8 s of start-up)
        return torch.compiler.disable(_unroll_native)(cell, x, lengths, state, feedback)
    return _unroll_native(cell, x, lengths, state, feedback)


def _unroll_native(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    if not supports(cell, feedback):
        reason = native_build.unavailable_reason() or "no C++ loop for this cell or device"
        raise ValueError(f"backend 'native' cannot run {type(cell).__name__}: {reason}")
    return unroll_with_kernel(cell, x, lengths, state, feedback, native=True)
