"""SlidingWindow: the finite-response predictor against a naive window loop."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import GRUCell
from rnnkit.layers import Bidirectional, Recurrent, SlidingWindow, Stacked

B, T, F, O, H = 3, 6, 2, 3, 4
LENGTHS = torch.tensor([6, 2, 4])


def window_reference(layer, x, history=None):
    """y_t = W_hy phi(W_xh [x_t; ...; x_{t-N+1}] + b_h) + b_y, inputs before the start zero."""
    N, Fi = layer.window, layer.input_size
    phi = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[layer.nonlinearity]
    result = []
    for b in range(x.shape[0]):
        past = [torch.zeros(Fi, dtype=x.dtype) for _ in range(N - 1)]  # oldest first
        if history is not None:
            past = list(history[b])
        outputs = []
        for t in range(x.shape[1]):
            window = [x[b, t]] + past[::-1]  # newest first: x_t, x_{t-1}, ...
            a = layer.bias_h.clone()
            for j, x_j in enumerate(window[:N]):
                a = a + layer.weight_xh[:, j * Fi : (j + 1) * Fi] @ x_j
            outputs.append(layer.weight_hy @ phi(a) + layer.bias_y)
            past = (past + [x[b, t]])[1:] if N > 1 else []
        result.append(torch.stack(outputs))
    return torch.stack(result)


@pytest.mark.parametrize("window", [1, 3, 8])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_matches_naive_window_loop(window, nonlinearity):
    torch.manual_seed(0)
    layer = SlidingWindow(F, O, window, H, nonlinearity=nonlinearity).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    outputs, final = layer(x)
    with torch.no_grad():
        torch.testing.assert_close(outputs, window_reference(layer, x), rtol=1e-12, atol=1e-12)
    # the final state is the last N-1 inputs, oldest first (zeros where the sequence is short)
    expected = torch.cat([torch.zeros(B, window - 1, F, dtype=x.dtype), x], 1)[:, T:]
    torch.testing.assert_close(final, expected)
    assert final.shape == (B, window - 1, F)


def test_lengths_zero_outputs_and_final_window_at_true_end():
    torch.manual_seed(0)
    N = 3
    layer = SlidingWindow(F, O, N, H).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    x[torch.arange(T) >= LENGTHS[:, None]] = 1e3
    outputs, final = layer(x, LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        alone, alone_final = layer(x[b : b + 1, :n])
        torch.testing.assert_close(outputs[b : b + 1, :n], alone)
        assert torch.all(outputs[b, n:] == 0)
        torch.testing.assert_close(final[b : b + 1], alone_final)
        torch.testing.assert_close(final[b, -1], x[b, n - 1])  # newest input of the window


def test_state_continues_a_sequence_across_chunks():
    torch.manual_seed(0)
    layer = SlidingWindow(F, O, 4, H).double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    whole, whole_final = layer(x)
    first, state = layer(x[:, :2])
    second, final = layer(x[:, 2:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(final, whole_final)
    with torch.no_grad():
        torch.testing.assert_close(second, window_reference(layer, x[:, 2:], history=state))


def test_has_no_python_loop_over_time():
    """One matmul over all windows: the autograd graph does not grow with T."""

    def graph_size(steps):
        layer = SlidingWindow(F, O, 3, H)
        out, _ = layer(torch.randn(2, steps, F), torch.tensor([steps, 1]))
        seen, todo = set(), [out.grad_fn]
        while todo:
            node = todo.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            todo.extend(n for n, _ in node.next_functions)
        return len(seen)

    assert graph_size(5) == graph_size(50)


def test_usable_inside_stacked_and_bidirectional():
    torch.manual_seed(0)
    bi = Bidirectional(SlidingWindow(F, O, 3, H), SlidingWindow(F, O, 3, H))
    stack = Stacked([bi, Recurrent(GRUCell(2 * O, H)), SlidingWindow(H, O, 2, H)], dropout=0.1)
    assert stack.output_size == O and bi.output_size == 2 * O
    outputs, finals = stack(torch.randn(B, T, F), LENGTHS)
    assert outputs.shape == (B, T, O)
    assert finals[0][0].shape == (B, 2, F) and finals[2].shape == (B, 1, H)
    # the backward window looks ahead: its output at t sees x_t..x_{t+N-1} within the length
    x = torch.randn(1, 5, F)
    out_bwd = bi(x)[0][..., O:]
    expected = bi.backward_layer(x.flip(1))[0].flip(1)
    torch.testing.assert_close(out_bwd, expected)


@pytest.mark.parametrize("where", ["alone", "stacked_bidirectional"])
def test_gradcheck(where):
    torch.manual_seed(0)
    if where == "alone":
        layer = SlidingWindow(F, O, 2, H)
    else:
        layer = Stacked(
            [
                Bidirectional(SlidingWindow(F, O, 2, H), SlidingWindow(F, O, 3, H)),
                SlidingWindow(2 * O, O, 2, H),
            ]
        )
    layer = layer.double()
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    x = torch.randn(2, 3, F, dtype=torch.float64, requires_grad=True)
    state = torch.randn(2, 1, F, dtype=torch.float64, requires_grad=True)

    def run(x, state, *weights):
        args = (x, torch.tensor([3, 2]), state if where == "alone" else None)
        out, final = torch.func.functional_call(
            layer, dict(zip(names, weights, strict=True)), args
        )
        return out, (final if where == "alone" else final[-1])

    assert torch.autograd.gradcheck(run, (x, state, *params))
