"""MGUCell against the formulas of Zhou et al. (2016), written out by hand."""

from __future__ import annotations

import torch

from rnnkit.cells import MGUCell
from rnnkit.layers import Recurrent

F, H, B = 3, 5, 4


def test_step_matches_the_paper_formula():
    torch.manual_seed(0)
    cell = MGUCell(F, H).double()
    W_f, W_h = cell.weight_ih.chunk(2)
    U_f, U_h = cell.weight_hh.chunk(2)
    b_f, b_h = cell.bias.chunk(2)
    x = torch.randn(6, B, F, dtype=torch.float64)
    h = torch.randn(B, H, dtype=torch.float64)
    state = h
    for t in range(x.shape[0]):
        f = torch.sigmoid(x[t] @ W_f.T + h @ U_f.T + b_f)
        h_tilde = torch.tanh(x[t] @ W_h.T + (f * h) @ U_h.T + b_h)
        h = (1 - f) * h + f * h_tilde
        out, state = cell(x[t], state)
        torch.testing.assert_close(out, h, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(state, h, rtol=1e-12, atol=1e-12)


def test_auto_runs_the_hand_written_kernel_with_the_loops_numbers():
    torch.manual_seed(1)
    cell = MGUCell(F, H).double()
    x = torch.randn(B, 40, F, dtype=torch.float64)
    lengths = torch.tensor([40, 7, 1, 33])
    h0 = torch.randn(B, H, dtype=torch.float64)
    want, h_want = Recurrent(cell, backend="loop")(x, lengths, state=h0)
    got, h_got = Recurrent(cell, backend="bptt")(x, lengths, state=h0)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_got, h_want, rtol=1e-12, atol=1e-12)
