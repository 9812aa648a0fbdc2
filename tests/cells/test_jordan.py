"""JordanCell against a naive reference loop, open loop (teacher forced) and closed loop."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.cells import JordanCell
from rnnkit.layers import Recurrent

B, T, F, H, O = 3, 6, 2, 5, 3


def jordan_reference(cell, x, feedback=None):
    """One sequence and one step at a time; the memory and the fed-back output are lists."""
    W_ih, W_mh, W_ho = cell.weight_ih, cell.weight_mh, cell.weight_ho
    zero_h, zero_o = torch.zeros(cell.hidden_size), torch.zeros(cell.output_size)
    b_ih = cell.bias_ih if cell.bias_ih is not None else zero_h
    b_mh = cell.bias_mh if cell.bias_mh is not None else zero_h
    b_ho = cell.bias_ho if cell.bias_ho is not None else zero_o
    mu = cell.decay
    mu = [float(v) for v in mu] if torch.is_tensor(mu) else [mu] * cell.output_size
    phi = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[cell.nonlinearity]
    g = {None: lambda v: v, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[cell.output_activation]
    result = []
    for b in range(x.shape[0]):
        memory = [0.0] * cell.output_size
        previous = [0.0] * cell.output_size
        outputs = []
        for t in range(x.shape[1]):
            for k in range(cell.output_size):
                scale = (1.0 - mu[k]) if cell.running_average else 1.0
                memory[k] = mu[k] * memory[k] + scale * previous[k]
            m = torch.tensor(memory, dtype=x.dtype)
            h = phi(W_ih @ x[b, t] + b_ih + W_mh @ m + b_mh)
            y = g(W_ho @ h + b_ho)
            outputs.append(y)
            fed = feedback[b, t] if feedback is not None else y
            previous = [float(v) for v in fed]
        result.append(torch.stack(outputs))
    return torch.stack(result)  # (B, T, O)


CONFIGS = {
    "plain": dict(),
    "decay": dict(memory_decay=0.7),
    "running_average": dict(memory_decay=0.6, running_average=True),
    "learned_decay": dict(memory_decay=0.4, learn_decay=True, running_average=True),
    "sigmoid_out_relu_nobias": dict(output_activation="sigmoid", nonlinearity="relu", bias=False),
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("loop", ["open", "closed"])
def test_matches_naive_reference(config, loop):
    torch.manual_seed(0)
    cell = JordanCell(F, H, O, **CONFIGS[config]).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    targets = torch.randn(B, T, O, dtype=torch.float64) if loop == "open" else None
    with torch.no_grad():
        expected = jordan_reference(cell, x, targets)
        outputs, (m_T, y_T) = Recurrent(cell)(x, feedback=targets)
    torch.testing.assert_close(outputs, expected, rtol=1e-12, atol=1e-12)
    last_fed = targets[:, -1] if targets is not None else outputs[:, -1]
    torch.testing.assert_close(y_T, last_fed, rtol=0, atol=0)


def test_closed_loop_fed_its_own_outputs_equals_open_loop():
    torch.manual_seed(0)
    layer = Recurrent(JordanCell(F, H, O, memory_decay=0.5)).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    closed, closed_state = layer(x)
    # equal up to rounding: BLAS may round differently for differently aligned buffers
    open_, open_state = layer(x, feedback=closed.detach())
    torch.testing.assert_close(open_, closed, rtol=1e-12, atol=1e-12)
    for a, b in zip(open_state, closed_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # and other targets change every step after the first
    other, _ = layer(x, feedback=closed.detach() + 1.0)
    torch.testing.assert_close(other[:, 0], closed[:, 0])
    assert (other[:, 1:] - closed[:, 1:]).abs().min() > 0


def test_learned_decay_is_sigmoid_of_a_parameter_and_trains():
    cell = JordanCell(F, H, O, memory_decay=0.25, learn_decay=True)
    assert cell.decay_logit.shape == (O,)
    torch.testing.assert_close(cell.decay, torch.full((O,), 0.25))
    torch.testing.assert_close(cell.decay_logit.detach(), torch.full((O,), math.log(1 / 3)))
    outputs, _ = Recurrent(cell)(torch.randn(B, T, F))
    outputs.pow(2).sum().backward()
    assert cell.decay_logit.grad is not None and cell.decay_logit.grad.abs().sum() > 0


def test_output_size_defaults_to_hidden_size():
    cell = JordanCell(F, H)
    assert cell.output_size == H and cell.weight_ho.shape == (H, H)
    assert cell.output_feedback and cell.fused_mode is None
