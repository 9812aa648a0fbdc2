"""Recurrent, Bidirectional and Stacked: padding is invisible, gradients are right."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell, NARXCell
from rnnkit.layers import Bidirectional, Recurrent, SlidingWindow, Stacked
from rnnkit.layers.state import map_state, select_batch
from rnnkit.models import build_stack

F, H = 3, 4
CELLS = {
    "elman_relu": lambda: ElmanCell(F, H, nonlinearity="relu"),
    "lstm": lambda: LSTMCell(F, H),
    "gru_reset_before": lambda: GRUCell(F, H, reset_after=False),
    "jordan": lambda: JordanCell(F, H, 2, memory_decay=0.5),
    "narx": lambda: NARXCell(F, 2, H, input_delays=2, output_delays=2),
}
LENGTHS = torch.tensor([5, 2, 1, 4])


def leaves(state) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda s: out.append(s) or s, state)
    return out


def padded_batch(width: int) -> torch.Tensor:
    """Random sequences whose padding is large garbage, so any leak shows."""
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), width, dtype=torch.float64)
    pad = torch.arange(x.shape[1]) >= LENGTHS[:, None]
    return x.masked_fill(pad.unsqueeze(-1), 1e3)


def assert_padding_invisible(layer, x, feedback=None, final_batch_dim=0):
    kwargs = {} if feedback is None else {"feedback": feedback}
    outputs, final = layer(x, LENGTHS, **kwargs)
    for b, n in enumerate(LENGTHS.tolist()):
        alone_kwargs = {} if feedback is None else {"feedback": feedback[b : b + 1, :n]}
        out_b, final_b = layer(x[b : b + 1, :n], **alone_kwargs)
        torch.testing.assert_close(outputs[b : b + 1, :n], out_b, rtol=1e-12, atol=1e-12)
        assert torch.all(outputs[b, n:] == 0), "outputs past the length must be zero"
        index = torch.tensor([b])
        for got, want in zip(leaves(select_batch(final, index)), leaves(final_b), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_recurrent_padded_batch_equals_each_sequence_alone(name):
    torch.manual_seed(0)
    layer = Recurrent(CELLS[name]()).double()
    assert_padding_invisible(layer, padded_batch(F))


@pytest.mark.parametrize("name", ["jordan", "narx"])
def test_recurrent_padding_invisible_with_teacher_forcing(name):
    torch.manual_seed(0)
    layer = Recurrent(CELLS[name]()).double()
    x = padded_batch(F)
    targets = torch.randn(x.shape[0], x.shape[1], 2, dtype=torch.float64)
    assert_padding_invisible(layer, x, feedback=targets)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_bidirectional_padded_batch_equals_each_sequence_alone(name):
    torch.manual_seed(0)
    layer = Bidirectional(Recurrent(CELLS[name]()), Recurrent(CELLS[name]())).double()
    assert_padding_invisible(layer, padded_batch(F))


def test_stacked_bidirectional_with_sliding_window_padding_invisible():
    torch.manual_seed(0)
    stack = Stacked(
        [
            Bidirectional(Recurrent(LSTMCell(F, H)), Recurrent(LSTMCell(F, H))),
            SlidingWindow(2 * H, H, window=3, hidden_size=H),
            Recurrent(GRUCell(H, H)),
        ]
    ).double()
    assert_padding_invisible(stack, padded_batch(F))


def test_backward_direction_reads_each_sequence_from_its_true_end():
    torch.manual_seed(0)
    fwd, bwd = Recurrent(ElmanCell(F, H)), Recurrent(ElmanCell(F, H))
    x = padded_batch(F).float()
    outputs, (_, bwd_final) = Bidirectional(fwd, bwd)(x, LENGTHS)
    b, n = 0, int(LENGTHS[0])
    reversed_out, reversed_final = bwd(x[b : b + 1, :n].flip(1))
    torch.testing.assert_close(outputs[b, :n, H:], reversed_out[0].flip(0))
    torch.testing.assert_close(bwd_final[b], reversed_final[0])


def test_learned_initial_state_is_used_and_expanded():
    torch.manual_seed(0)
    layer = Recurrent(LSTMCell(F, H), learn_init=True)
    assert [p.shape for p in layer.init_params] == [(H,), (H,)]
    with torch.no_grad():
        layer.init_params[0].fill_(0.5)
        layer.init_params[1].fill_(-0.25)
    x = torch.randn(2, 3, F)
    h0 = torch.full((2, H), 0.5), torch.full((2, H), -0.25)
    torch.testing.assert_close(layer(x)[0], Recurrent(layer.cell)(x, state=h0)[0])


def test_feedback_goes_to_the_last_layer_of_a_stack():
    torch.manual_seed(0)
    stack = Stacked([Recurrent(GRUCell(F, H)), Recurrent(NARXCell(H, 2, H))])
    x, targets = torch.randn(2, 5, F), torch.randn(2, 5, 2)
    hidden, _ = stack.layers[0](x)
    expected, _ = stack.layers[1](hidden, feedback=targets)
    torch.testing.assert_close(stack(x, feedback=targets)[0], expected)


# --- gradcheck in float64 (B=2, T=3, H=4), learned initial states included ----------------


def gradcheck_layer(layer, x, lengths=None, fast_mode=False, **kwargs):
    names = [n for n, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def run(x, *weights):
        out, final = torch.func.functional_call(
            layer, dict(zip(names, weights, strict=True)), (x, lengths), kwargs
        )
        return (out, *leaves(final))

    assert torch.autograd.gradcheck(run, (x.requires_grad_(), *params), fast_mode=fast_mode)


LAYER_CELLS = {
    **CELLS,
    "elman_tanh": lambda: ElmanCell(F, H),
    "gru": lambda: GRUCell(F, H),
    "jordan_learned_decay": lambda: JordanCell(F, H, 2, memory_decay=0.3, learn_decay=True),
}


@pytest.mark.parametrize("learn_init", [False, True])
@pytest.mark.parametrize("name", sorted(LAYER_CELLS))
def test_gradcheck_recurrent(name, learn_init):
    torch.manual_seed(0)
    layer = Recurrent(LAYER_CELLS[name](), learn_init=learn_init).double()
    if learn_init:  # start away from zero so the initial state's gradient is exercised
        with torch.no_grad():
            for p in layer.init_params:
                p.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, F, dtype=torch.float64)
    gradcheck_layer(layer, x, torch.tensor([3, 2]))


@pytest.mark.parametrize("name", ["jordan", "narx"])
def test_gradcheck_recurrent_teacher_forced(name):
    torch.manual_seed(0)
    layer = Recurrent(CELLS[name](), learn_init=True).double()
    x = torch.randn(2, 3, F, dtype=torch.float64)
    targets = torch.randn(2, 3, 2, dtype=torch.float64)
    gradcheck_layer(layer, x, torch.tensor([3, 2]), feedback=targets)


def test_gradcheck_stacked_bidirectional_learned_init():
    torch.manual_seed(0)
    stack = build_stack(LSTMCell, F, H, num_layers=2, bidirectional=True, learn_init=True)
    stack = stack.double()
    with torch.no_grad():
        for name, p in stack.named_parameters():
            if "init_params" in name:
                p.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, F, dtype=torch.float64)
    # ~750 inputs: fast mode checks random projections v^T J u instead of every column
    gradcheck_layer(stack, x, torch.tensor([2, 3]), fast_mode=True)


def test_gradcheck_bidirectional_gru_residual_stack():
    torch.manual_seed(0)
    stack = build_stack(GRUCell, F, H // 2, num_layers=2, bidirectional=True, residual=True)
    gradcheck_layer(
        stack.double(), torch.randn(2, 3, F, dtype=torch.float64), torch.tensor([3, 1])
    )
