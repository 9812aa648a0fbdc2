r"""The ``scripted`` backend: cells you write yourself, the input projection hoisted and the
time loop in TorchScript.

A cell opts in with three members (CONTRIBUTING.md, "Cells you write yourself"):

- ``project_input(x (..., F)) -> (..., P)``: everything that reads only the input, for all
  steps at once (one matmul instead of ``T``);
- ``step_function(xp_t (B, P), state: List[Tensor], params: List[Tensor]) -> (out_t,
  new_state)``: the rest of a step, a free function TorchScript can compile (type-annotated,
  tensors and lists of tensors only), the same one the cell's ``forward`` calls;
- ``step_parameters() -> List[Tensor]``: the parameters ``step_function`` reads.

The unroll (:func:`_make_unroll`) is scripted once per step function and cached for the life of
the process: no recompilation for a new sequence length, a new batch size or a new run of the
same cell type (scripting takes well under a second). TorchScript runs the loop without the
Python interpreter, which is what a step of a dozen small ops mostly costs on CPU; autograd
records it as usual, so gradients are those of the eager step. Measured in
``scripts/bench_user_cell.py`` against the eager loop and ``torch.compile`` of the step
(docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.cells.base import Cell, State


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    return (
        feedback is None
        and callable(getattr(cell, "project_input", None))
        and callable(getattr(cell, "step_function", None))
        and callable(getattr(cell, "step_parameters", None))
    )


@functools.cache
def _make_unroll(step: Callable) -> torch.jit.ScriptFunction:
    """``unroll(xp (T, B, P), state, params, valid (T, B) | None) -> (outs (T, B, O), state)``
    around ``step``, scripted (once per step function)."""

    def unroll(
        xp: Tensor, state: list[Tensor], params: list[Tensor], valid: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        outs: list[Tensor] = []
        t = 0
        for xp_t in xp.unbind(0):  # unbound once: xp[t] would make the backward O(T^2)
            out, new_state = step(xp_t, state, params)
            if valid is not None:  # past a sequence's end its state stays, its output is 0
                keep = valid[t].unsqueeze(-1)
                new_state = [torch.where(keep, new_state[k], state[k]) for k in range(len(state))]
                out = torch.where(keep, out, torch.zeros_like(out))
            outs.append(out)
            state = new_state
            t += 1
        return torch.stack(outs), state

    with warnings.catch_warnings():  # TorchScript's deprecation notice, once per cell type
        warnings.simplefilter("ignore")
        return torch.jit.script(unroll)


def unroll_scripted(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x (B, T, F)``: the projection of all steps, then the scripted loop."""
    if not supports(cell, feedback):
        raise ValueError(
            f"backend 'scripted' cannot run {type(cell).__name__}: it needs project_input, "
            "step_function and step_parameters (CONTRIBUTING.md, 'Cells you write yourself')"
        )
    xp = cell.project_input(x.transpose(0, 1))  # (T, B, P)
    valid = None
    if lengths is not None:
        valid = torch.arange(x.shape[1], device=x.device)[:, None] < lengths.to(x.device)
    is_tuple = isinstance(state, tuple)
    states = list(state) if is_tuple else [state]
    unroll = _make_unroll(type(cell).step_function)
    outs, final = unroll(xp, states, cell.step_parameters(), valid)
    return outs.transpose(0, 1), tuple(final) if is_tuple else final[0]
