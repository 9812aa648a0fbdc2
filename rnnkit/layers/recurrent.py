"""``Recurrent``: unrolls one cell over time, batch-first, with variable lengths."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import Cell, State
from rnnkit.layers.backends import BACKEND_NAMES, run_step, run_unroll
from rnnkit.layers.state import map_state
from rnnkit.layers.validation import check_lengths, check_sequence


class Recurrent(nn.Module):
    r"""Run ``cell`` over every step of a batch of sequences.

    .. math::
        (\text{out}_t, s_t) = \text{cell}(x_t, s_{t-1}), \quad t = 1..T, \quad
        s_0 = \text{init} \text{ (zeros, or learned when ``learn_init``)}

    With ``lengths``, steps past a sequence's end leave its state untouched and its outputs
    zero, so the final state is the state at each sequence's true end and a padded batch gives
    exactly what each sequence gives alone.

    Args:
        cell: any :class:`rnnkit.cells.Cell`.
        learn_init: make the initial state a parameter (:math:`h_{-1}` becomes one of the
            network's parameters, learned like the weights), initialised to zeros.
        backend: how to unroll: ``"loop"`` (readable reference), ``"fused"`` (torch's own
            kernels, for cells whose ``fused_mode`` is set), ``"bptt"`` (precomputed input
            projection and a hand-written backward, for cells whose ``kernel`` is set),
            ``"native"`` (the same with its time loops in C++, on CPU), ``"scan"`` (cells
            whose recurrence is linear in the state: one matmul, then a scan over time),
            ``"scripted"`` (user-style cells: the input projection hoisted, the loop in
            TorchScript), ``"compiled"`` (``torch.compile`` of each step) or ``"auto"`` (the
            fastest correct one, measured by ``scripts/bench.py``). See
            :mod:`rnnkit.layers.backends`.

    Shape:
        x (B, T, F), lengths (B,) in [1, T], state as ``cell.init_state(B)``,
        feedback (B, T, O) true outputs for output-feedback cells (open loop)
        -> outputs (B, T, O), final state.
    """

    def __init__(self, cell: Cell, learn_init: bool = False, backend: str = "auto") -> None:
        super().__init__()
        if backend not in BACKEND_NAMES:
            raise ValueError(f"backend must be one of {sorted(BACKEND_NAMES)}, got {backend!r}")
        self.cell = cell
        self.backend = backend
        self.learn_init = learn_init
        if learn_init:
            template = cell.init_state(1)
            leaves: list[Tensor] = []
            map_state(lambda s: leaves.append(s) or s, template)
            self.init_params = nn.ParameterList(
                nn.Parameter(torch.zeros_like(s[0])) for s in leaves
            )
            self._init_structure = template

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    @property
    def output_size(self) -> int:
        return self.cell.output_size

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros from the cell, or the learned initial state expanded to the batch."""
        if not self.learn_init:
            return self.cell.init_state(batch_size, device=device, dtype=dtype)
        leaves = iter(self.init_params)
        return map_state(
            lambda _: (p := next(leaves)).expand(batch_size, *p.shape), self._init_structure
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        state: State | None = None,
        feedback: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        who = f"Recurrent({type(self.cell).__name__})"
        check_sequence(x, self.cell.input_size, who)
        B, T, _ = x.shape
        lengths = check_lengths(lengths, B, T, who)
        if feedback is not None:
            if not self.cell.output_feedback:
                raise ValueError(f"{who}: feedback= needs a cell with output feedback")
            if feedback.shape != (B, T, self.cell.output_size):
                raise ValueError(
                    f"{who}: feedback must have shape (B, T, output_size) = "
                    f"{(B, T, self.cell.output_size)}, got {tuple(feedback.shape)}"
                )
        if state is None:
            state = self.initial_state(B, device=x.device, dtype=x.dtype)
        return run_unroll(self.backend, self.cell, x, lengths, state, feedback)

    def step(
        self, x_t: Tensor, state: State | None = None, feedback: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """One time step, for streaming: ``x_t (B, F)`` -> ``(out_t (B, O), new state)``.

        Carry the returned state into the next call; ``state=None`` starts from
        :meth:`initial_state`. A run of calls gives exactly what :meth:`forward` gives on the
        whole sequence, one step per call (tested against the ``loop`` backend). ``feedback``
        ``(B, O)``, for output-feedback cells, is the true output of this step: it replaces the
        prediction in the state the next step reads (open loop), as ``forward``'s ``feedback``
        does. For a chunk of several steps at once, call :meth:`forward` with ``state=``.
        """
        who = f"Recurrent({type(self.cell).__name__}).step"
        self.cell.check_input(x_t)
        if state is None:
            state = self.initial_state(x_t.shape[0], device=x_t.device, dtype=x_t.dtype)
        out_t, state = run_step(self.backend, self.cell, x_t, state)
        if feedback is not None:
            if not self.cell.output_feedback:
                raise ValueError(f"{who}: feedback= needs a cell with output feedback")
            state = self.cell.teacher_force(state, feedback)
        return out_t, state

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, learn_init={self.learn_init}"
