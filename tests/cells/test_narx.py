"""NARXCell against a deliberately naive loop with explicit delay lists."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import NARXCell
from rnnkit.layers import Recurrent

B, T, F, O, H = 3, 7, 2, 2, 5


def narx_reference(cell, x, feedback=None):
    """y_t = W_hy phi(sum_j W_xh[j] x_{t-j} + sum_k W_yh[k] y_{t-k} + b_h) + b_y, step by step."""
    L, K = cell.input_delays, cell.output_delays
    Fi, Oo = cell.input_size, cell.output_size
    phi = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[cell.nonlinearity]
    b_h = cell.bias_h if cell.bias_h is not None else torch.zeros(cell.hidden_size)
    b_y = cell.bias_y if cell.bias_y is not None else torch.zeros(Oo)
    result = []
    for b in range(x.shape[0]):
        past_inputs = [torch.zeros(Fi, dtype=x.dtype) for _ in range(L)]  # x_{t-1}..x_{t-L}
        past_outputs = [torch.zeros(Oo, dtype=x.dtype) for _ in range(K)]  # y_{t-1}..y_{t-K}
        outputs = []
        for t in range(x.shape[1]):
            taps = [x[b, t]] + past_inputs
            a = b_h.clone()
            for j, x_j in enumerate(taps):
                a = a + cell.weight_xh[:, j * Fi : (j + 1) * Fi] @ x_j
            for k, y_k in enumerate(past_outputs):
                a = a + cell.weight_yh[:, k * Oo : (k + 1) * Oo] @ y_k
            y = cell.weight_hy @ phi(a) + b_y
            outputs.append(y)
            fed = feedback[b, t] if feedback is not None else y
            past_inputs = [x[b, t]] + past_inputs[:-1]
            past_outputs = [fed] + past_outputs[:-1]
        result.append(torch.stack(outputs))
    return torch.stack(result)  # (B, T, O)


@pytest.mark.parametrize("delays", [(1, 1), (3, 2), (2, 4)])
@pytest.mark.parametrize("loop", ["open", "closed"])
def test_matches_naive_reference(delays, loop):
    torch.manual_seed(0)
    L, K = delays
    cell = NARXCell(F, O, H, input_delays=L, output_delays=K).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    targets = torch.randn(B, T, O, dtype=torch.float64) if loop == "open" else None
    with torch.no_grad():
        expected = narx_reference(cell, x, targets)
        outputs, (x_taps, y_taps) = Recurrent(cell)(x, feedback=targets)
    torch.testing.assert_close(outputs, expected, rtol=1e-12, atol=1e-12)
    # the final delay lines hold the last L inputs and K fed-back outputs, newest first
    torch.testing.assert_close(x_taps, x[:, -L:].flip(1))
    fed = targets if targets is not None else outputs
    torch.testing.assert_close(y_taps, fed[:, -K:].flip(1))


@pytest.mark.parametrize("options", [dict(nonlinearity="relu"), dict(bias=False)])
def test_options_match_reference(options):
    torch.manual_seed(1)
    cell = NARXCell(F, O, H, input_delays=2, output_delays=2, **options).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(Recurrent(cell)(x)[0], narx_reference(cell, x))


def test_closed_loop_fed_its_own_outputs_equals_open_loop():
    torch.manual_seed(0)
    layer = Recurrent(NARXCell(F, O, H, input_delays=2, output_delays=3)).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    closed, closed_state = layer(x)
    # equal up to rounding: BLAS may round differently for differently aligned buffers
    open_, open_state = layer(x, feedback=closed.detach())
    torch.testing.assert_close(open_, closed, rtol=1e-12, atol=1e-12)
    for a, b in zip(open_state, closed_state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    other, _ = layer(x, feedback=closed.detach() + 1.0)
    torch.testing.assert_close(other[:, 0], closed[:, 0])
    assert (other[:, 1] - closed[:, 1]).abs().min() > 0


def test_teacher_force_replaces_only_the_newest_output_tap():
    cell = NARXCell(F, O, H, input_delays=2, output_delays=3)
    x_taps, y_taps = torch.randn(B, 2, F), torch.randn(B, 3, O)
    y_true = torch.randn(B, O)
    new_x, new_y = cell.teacher_force((x_taps, y_taps), y_true)
    assert new_x is x_taps
    torch.testing.assert_close(new_y[:, 0], y_true)
    torch.testing.assert_close(new_y[:, 1:], y_taps[:, 1:])


def test_parameter_shapes():
    cell = NARXCell(F, O, H, input_delays=3, output_delays=2)
    shapes = {n: tuple(p.shape) for n, p in cell.named_parameters()}
    assert shapes == {
        "weight_xh": (H, 4 * F),
        "weight_yh": (H, 2 * O),
        "weight_hy": (O, H),
        "bias_h": (H,),
        "bias_y": (O,),
    }
