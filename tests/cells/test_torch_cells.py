"""Elman, LSTM and GRU cells against torch.nn's cells: same state_dict, same numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell

F, H, B = 3, 5, 4

PAIRS = {
    "rnn_tanh": (lambda b: ElmanCell(F, H, bias=b), lambda b: nn.RNNCell(F, H, bias=b)),
    "rnn_relu": (
        lambda b: ElmanCell(F, H, bias=b, nonlinearity="relu"),
        lambda b: nn.RNNCell(F, H, bias=b, nonlinearity="relu"),
    ),
    "lstm": (lambda b: LSTMCell(F, H, bias=b), lambda b: nn.LSTMCell(F, H, bias=b)),
    "gru": (lambda b: GRUCell(F, H, bias=b), lambda b: nn.GRUCell(F, H, bias=b)),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_state_dict_loads_into_torch_cell_and_outputs_match(name, bias):
    torch.manual_seed(0)
    make_ours, make_theirs = PAIRS[name]
    ours, theirs = make_ours(bias), make_theirs(bias)
    theirs.load_state_dict(ours.state_dict(), strict=True)  # names and shapes are torch's
    assert dict(ours.named_parameters()).keys() == dict(theirs.named_parameters()).keys()
    x = torch.randn(6, B, F)
    state = tuple(torch.randn(B, H) for _ in range(2)) if name == "lstm" else torch.randn(B, H)
    s_ours, s_theirs = state, state
    for t in range(x.shape[0]):
        out, s_ours = ours(x[t], s_ours)
        s_theirs = theirs(x[t], s_theirs)
        h_theirs = s_theirs[0] if name == "lstm" else s_theirs
        torch.testing.assert_close(out, h_theirs, rtol=1e-5, atol=1e-6)
    if name == "lstm":
        torch.testing.assert_close(s_ours[1], s_theirs[1], rtol=1e-5, atol=1e-6)
    # and the gradients of every parameter
    loss_ours = (out * torch.linspace(-1, 1, H)).sum()
    loss_theirs = (h_theirs * torch.linspace(-1, 1, H)).sum()
    loss_ours.backward()
    loss_theirs.backward()
    for (n, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=n)


def test_lstm_forget_bias_shifts_only_the_forget_chunk():
    torch.manual_seed(0)
    plain = LSTMCell(F, H)
    torch.manual_seed(0)
    shifted = LSTMCell(F, H, forget_bias=1.0)
    delta = shifted.bias_ih.detach() - plain.bias_ih.detach()
    expected = torch.zeros(4 * H)
    expected[H : 2 * H] = 1.0
    torch.testing.assert_close(delta, expected)


def test_gru_reset_before_matches_the_paper_formula():
    torch.manual_seed(0)
    cell = GRUCell(F, H, reset_after=False)
    x, h = torch.randn(B, F), torch.randn(B, H)
    W_ir, W_iz, W_in = cell.weight_ih.chunk(3)
    W_hr, W_hz, W_hn = cell.weight_hh.chunk(3)
    b_ir, b_iz, b_in = cell.bias_ih.chunk(3)
    b_hr, b_hz, b_hn = cell.bias_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    out, _ = cell(x, h)
    torch.testing.assert_close(out, (1 - z) * n + z * h)
