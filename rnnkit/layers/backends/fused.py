"""The ``fused`` backend: torch's own RNN kernels, run on the cell's own parameters.

When a cell says its math is exactly torch's (``cell.fused_mode`` in ``RNN_TANH``, ``RNN_RELU``,
``LSTM``, ``GRU``), the layer calls the kernel ``torch.nn.RNN``/``GRU``/``LSTM`` call,
``torch._VF.{rnn_tanh, rnn_relu, gru, lstm}``: oneDNN's fused LSTM on CPU, cuDNN on GPU. The
parameters are passed as they are (no copies), so gradients land on the cell's ``weight_ih``,
``weight_hh``, ``bias_ih`` and ``bias_hh``. Variable lengths go through a packed batch
(``batch_sizes``), as ``torch.nn`` does, so the final state is each sequence's state at its true
end and outputs past the end are zero.

Why ``torch._VF`` and not the public route, ``torch.func.functional_call`` on an ``nn.LSTM``
shell (meta device) with the cell's parameters: the shell costs a fixed ~0.1-0.25 ms a call
(re-parametrising the module, then ``RNNBase.forward``'s checks), measured with one thread at
B=32, H=64: a one-step call (what a decoder runs every step) took 2.1x as long for LSTM and
1.9x for GRU; at B=32, T=100, H=128 it is within noise (~1%). A decoding step must not get
slower, so the call stays. It is the one ``nn.RNNBase.forward`` itself makes, with the same
arguments (``torch/nn/modules/rnn.py``); ``tests/layers/test_backends.py`` compares this backend
with ``loop`` (outputs, states, gradients, with and without lengths), so a change of that
signature fails there.

On GPU, cuDNN wants all weights in one flat buffer; with the cell's separate parameters it
copies them per call (torch warns once). That copy is small next to the unroll.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells.base import Cell, State

#: one step of each: ``(x_t, hx, w_ih, w_hh, b_ih, b_hh)``, the kernels ``nn.LSTMCell`` & co call
_STEP_FUNCS = {
    "LSTM": torch._VF.lstm_cell,
    "GRU": torch._VF.gru_cell,
    "RNN_TANH": torch._VF.rnn_tanh_cell,
    "RNN_RELU": torch._VF.rnn_relu_cell,
}
_FUNCS = {
    "LSTM": torch._VF.lstm,
    "GRU": torch._VF.gru,
    "RNN_TANH": torch._VF.rnn_tanh,
    "RNN_RELU": torch._VF.rnn_relu,
}


def supports(cell: Cell, feedback: Tensor | None) -> bool:
    return getattr(cell, "fused_mode", None) in _FUNCS and feedback is None


def unroll_fused(
    cell: Cell,
    x: Tensor,
    lengths: Tensor | None,
    state: State,
    feedback: Tensor | None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x (B, T, F)`` with torch's fused kernel for ``cell.fused_mode``."""
    mode = getattr(cell, "fused_mode", None)
    if mode not in _FUNCS or feedback is not None:
        raise ValueError(
            f"backend 'fused' needs a cell with fused_mode in {sorted(_FUNCS)} and no feedback; "
            f"{type(cell).__name__} has fused_mode={mode!r}"
        )
    func = _FUNCS[mode]
    has_bias = cell.bias_ih is not None
    weights = [cell.weight_ih, cell.weight_hh]
    if has_bias:
        weights += [cell.bias_ih, cell.bias_hh]
    is_lstm = mode == "LSTM"
    leaves = tuple(state) if is_lstm else (state,)
    hx = [s.unsqueeze(0) for s in leaves]  # (1, B, H) each: one layer, one direction
    train = torch.is_grad_enabled()
    T = x.shape[1]
    if lengths is not None and bool((lengths == T).all()):
        lengths = None
    if lengths is None:
        hx = [h.contiguous() for h in hx]
        result = func(
            x, tuple(hx) if is_lstm else hx[0], weights, has_bias, 1, 0.0, train, False, True
        )
        out, finals = result[0], result[1:]
    else:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hx = [h.index_select(1, packed.sorted_indices) for h in hx]
        result = func(
            packed.data, packed.batch_sizes, tuple(hx) if is_lstm else hx[0], weights, has_bias,
            1, 0.0, train, False,
        )  # fmt: skip
        out, _ = pad_packed_sequence(
            packed._replace(data=result[0]), batch_first=True, total_length=T
        )
        finals = [f.index_select(1, packed.unsorted_indices) for f in result[1:]]
    finals = [f[0] for f in finals]  # (B, H) each
    return out, (tuple(finals) if is_lstm else finals[0])


def step_fused(cell: Cell, x_t: Tensor, state: State) -> tuple[Tensor, State]:
    """One step of ``cell`` with torch's one-step kernel for its ``fused_mode``:
    ``x_t (B, F)``, ``state`` as ``cell.init_state(B)`` -> ``(out_t (B, H), new state)``.

    Streaming inference (batch 1, a step a call) pays a fixed cost per call, not per element:
    this is one aten call, where the cell's own ``forward`` dispatches about ten ops and
    ``torch.nn.LSTM`` on a ``(1, 1, F)`` input goes through ``RNNBase.forward``'s checks."""
    func = _STEP_FUNCS[cell.fused_mode]
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    if cell.fused_mode == "LSTM":
        h, c = func(x_t, state, *weights)
        return h, (h, c)
    h = func(x_t, state, *weights)
    return h, h
