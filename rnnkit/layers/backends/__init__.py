"""Execution backends: different ways to run the same cell over time, all giving its numbers.

=========== ===================================================================================
``loop``     plain Python over time steps, calling ``cell(x_t, state)``; the readable reference
             every other backend is tested against (outputs, final states, gradients).
``fused``    torch's own kernels (oneDNN / cuDNN) on the cell's own parameters, for cells whose
             ``fused_mode`` is ``RNN_TANH``, ``RNN_RELU``, ``LSTM`` or ``GRU``.
``bptt``     input projection of all steps as one matmul, then a hand-written forward and
             backward loop (:mod:`.bptt`), for cells whose ``kernel`` (or ``fused_mode``) names
             one in :data:`.bptt.KERNELS`.
``native``   the ``bptt`` algorithm with its time loops in C++ (:mod:`.native`), compiled once
             per machine, CPU only: Elman, GRU (both variants), LSTM, MGU, SRU, and the
             closed loops of Jordan and NARX.
``scan``     cells whose recurrence is linear in the state (minGRU, minLSTM): coefficients of
             all steps from one matmul, then a chunked associative scan over time (:mod:`.scan`).
``scripted`` cells you write yourself (``project_input``, ``step_function``,
             ``step_parameters``): the input projection of all steps as one matmul, the time
             loop in TorchScript (:mod:`.scripted`).
``compiled`` the loop with each step compiled by ``torch.compile`` (any cell).
``auto``     the fastest correct one for the cell and device, from ``scripts/bench.py``
             measurements (:data:`AUTO_PREFERENCE`); logged once per cell type and device.
=========== ===================================================================================

A cell declares what it supports through attributes only (``fused_mode``, ``kernel``,
``output_feedback``); no backend looks at a cell's type.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import bptt, compiled, fused, native, native_build, scan, scripted
from rnnkit.layers.backends.loop import unroll_loop
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

Unroll = Callable[[Cell, Tensor, "Tensor | None", State, "Tensor | None"], tuple[Tensor, State]]

#: name -> (supports(cell, feedback) -> bool, unroll function)
BACKENDS: dict[str, tuple[Callable[[Cell, Tensor | None], bool], Unroll]] = {
    "loop": (lambda cell, feedback: True, unroll_loop),
    "fused": (fused.supports, fused.unroll_fused),
    "bptt": (bptt.supports, bptt.unroll_bptt),
    "native": (native.supports, native.unroll_native),
    "compiled": (compiled.supports, compiled.unroll_compiled),
    "scan": (scan.supports, scan.unroll_scan),
    "scripted": (scripted.supports, scripted.unroll_scripted),
}
BACKEND_NAMES = {"auto", *BACKENDS}

#: what ``auto`` tries, in order, per (device type, kernel name, mode), where the kernel name
#: is ``cell.kernel`` or ``cell.fused_mode`` and mode is ``"train"`` when autograd is recording,
#: else ``"inference"``; the first backend that supports the cell wins (``native`` does not
#: when no C++ compiler was found). Chosen from ``scripts/bench.py`` (docs/benchmarks.md): on
#: CPU torch's LSTM is oneDNN's fused kernel, which beats every loop, ours in C++ included;
#: torch's GRU/RNN are a loop of a dozen aten ops per step, which the C++ loop of ``native``
#: (one matmul and one gate pass per step) beats by 25-50%; the paper GRU (no torch kernel)
#: runs there too (30-45% faster than bptt's Python loop); Jordan's and NARX's closed loops
#: run their forward there too (5-15% faster than bptt's). On GPU cuDNN wins wherever it
#: applies. Anything not listed: fused, then bptt, then scripted (a cell written with a
#: scriptable step: as fast as its Python loop or faster, docs/benchmarks.md), then loop.
AUTO_PREFERENCE: dict[tuple[str, str | None, str], tuple[str, ...]] = {
    **{
        ("cpu", kernel, mode): ("native", "bptt", "fused")
        for kernel in ("GRU", "RNN_TANH", "RNN_RELU")
        for mode in ("train", "inference")
    },
    **{("cpu", "GRU_RESET_BEFORE", mode): ("native", "bptt") for mode in ("train", "inference")},
    # minGRU / minLSTM: the scan beats stepping the cell at every length measured
    **{
        (device, "LINEAR_SCAN", mode): ("scan",)
        for device in ("cpu", "cuda")
        for mode in ("train", "inference")
    },
    # MGU, SRU: their loops in C++ beat bptt's Python loops at every size measured
    **{
        ("cpu", kernel, mode): ("native", "bptt")
        for kernel in ("MGU", "SRU")
        for mode in ("train", "inference")
    },
    # closed loops in C++; the open loop is the same pure-PyTorch code either way
    **{
        ("cpu", kernel, mode): ("native", "bptt")
        for kernel in ("JORDAN", "NARX")
        for mode in ("train", "inference")
    },
}
_DEFAULT_PREFERENCE = ("fused", "bptt", "scripted", "loop")
_logged: set = set()


def choose_backend(cell: Cell, device: torch.device, feedback: Tensor | None) -> str:
    """The backend ``auto`` runs for ``cell`` on ``device`` in the current grad mode.

    Logs the choice and why once per cell type, device, mode and thread count. The order is
    the same at 1 and 2 threads and at batch 1 to 256 (docs/benchmarks.md measured all six);
    what depends on the batch is chosen inside a kernel from the work it saves (closed-loop
    NARX's state form, :func:`.feedback.state_form_pays`).
    """
    kernel = getattr(cell, "kernel", None) or getattr(cell, "fused_mode", None)
    mode = "train" if torch.is_grad_enabled() else "inference"
    order = AUTO_PREFERENCE.get((device.type, kernel, mode), _DEFAULT_PREFERENCE)
    name = next(n for n in (*order, "loop") if BACKENDS[n][0](cell, feedback))
    threads = torch.get_num_threads()
    key = (type(cell).__name__, kernel, device.type, mode, threads, name)
    if key not in _logged:
        _logged.add(key)
        skipped = list(order[: order.index(name)]) if name in order else list(order)
        why = f"first that runs it of {order}" + (f" ({skipped} cannot)" if skipped else "")
        log.info("backend auto: %s (kernel %s) on %s, %s, %d threads: %r, %s", *key, why)
    return name


def run_unroll(
    backend: str,
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Unroll ``cell`` over ``x (B, T, F)`` with the chosen backend."""
    if backend == "auto":
        backend = choose_backend(cell, x.device, feedback)
    supports, unroll = BACKENDS[backend]
    if not supports(cell, feedback):
        why = [f"fused_mode={getattr(cell, 'fused_mode', None)!r}",
               f"kernel={getattr(cell, 'kernel', None)!r}"]  # fmt: skip
        if feedback is not None:
            why.append("with feedback")
        if backend in ("bptt", "native") and bptt.autocast_active():
            why.append("not under autocast (mixed precision)")
        if backend == "native" and native_build.unavailable_reason():
            why.append(native_build.unavailable_reason())
        raise ValueError(
            f"backend {backend!r} cannot run {type(cell).__name__} ({', '.join(why)}); "
            "use 'auto' or 'loop'"
        )
    return unroll(cell, x, lengths, state, feedback)


def run_step(backend: str, cell: Cell, x_t: Tensor, state: State) -> tuple[Tensor, State]:
    """One step of ``cell``: ``x_t (B, F)`` -> ``(out_t (B, O), new state)``, the same numbers
    as one step of :func:`run_unroll`. ``auto`` and ``fused`` run torch's one-step kernel for
    a cell with ``fused_mode`` (:func:`.fused.step_fused`); everything else steps the cell
    itself (one call per step is what the other backends' unrolls save; a single step has
    nothing to save)."""
    if backend in ("auto", "fused") and fused.supports(cell, None):
        return fused.step_fused(cell, x_t, state)
    return cell(x_t, state)
