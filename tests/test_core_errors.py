"""Bad sizes and arguments fail at once with a ValueError naming the argument and the value."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit import TorchStyleRNN
from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell, NARXCell
from rnnkit.layers import Bidirectional, Recurrent, SlidingWindow, Stacked
from rnnkit.models import build_stack

F, H = 3, 4

CONSTRUCTORS = [
    (lambda: ElmanCell(0, H), r"input_size must be a positive integer, got 0"),
    (lambda: ElmanCell(F, -2), r"hidden_size must be a positive integer, got -2"),
    (lambda: LSTMCell(F, 2.5), r"hidden_size must be a positive integer, got 2\.5"),
    (lambda: GRUCell(True, H), r"input_size must be a positive integer, got True"),
    (lambda: JordanCell(F, H, output_size=0), r"output_size must be a positive integer, got 0"),
    (lambda: NARXCell(F, -1, H), r"output_size must be a positive integer, got -1"),
    (lambda: NARXCell(F, 2, H, input_delays=0), r"input_delays must be a positive integer, got 0"),
    (
        lambda: NARXCell(F, 2, H, output_delays=-3),
        r"output_delays must be a positive integer, got -3",
    ),
    (lambda: SlidingWindow(F, 2, 0, H), r"window must be a positive integer, got 0"),
    (lambda: SlidingWindow(F, 0, 2, H), r"output_size must be a positive integer, got 0"),
    (lambda: ElmanCell(F, H, nonlinearity="sigmoid"), r"nonlinearity.*'sigmoid'"),
    (lambda: JordanCell(F, H, nonlinearity="gelu"), r"nonlinearity.*'gelu'"),
    (lambda: NARXCell(F, 2, H, nonlinearity="Tanh"), r"nonlinearity.*'Tanh'"),
    (lambda: SlidingWindow(F, 2, 2, H, nonlinearity="elu"), r"nonlinearity.*'elu'"),
    (lambda: JordanCell(F, H, output_activation="relu"), r"output_activation.*'relu'"),
    (lambda: JordanCell(F, H, memory_decay=1.0), r"memory_decay must be in \[0, 1\), got 1\.0"),
    (lambda: JordanCell(F, H, memory_decay=-0.1), r"memory_decay .* got -0\.1"),
    (
        lambda: JordanCell(F, H, learn_decay=True),
        r"memory_decay must be in \(0, 1\) with learn_decay=True, got 0\.0",
    ),
    (lambda: LSTMCell(F, H, bias=False, forget_bias=1.0), r"forget_bias needs bias=True"),
    (lambda: Recurrent(ElmanCell(F, H), backend="cuda"), r"backend must be one of .*'cuda'"),
    (lambda: build_stack(GRUCell, F, H, num_layers=0), r"num_layers must be .* got 0"),
    (lambda: Stacked([Recurrent(GRUCell(F, H))], dropout=1.5), r"dropout must be in .* 1\.5"),
    (
        lambda: Stacked([Recurrent(GRUCell(F, H)), Recurrent(GRUCell(F, H))]),
        r"layer 1 expects input_size=3 but layer 0 gives output_size=4",
    ),
    (
        lambda: Bidirectional(Recurrent(GRUCell(F, H)), Recurrent(GRUCell(F + 1, H))),
        r"same input_size, got 3 and 4",
    ),
    (lambda: TorchStyleRNN("TRANSFORMER", F, H), r"mode must be one of .*'TRANSFORMER'"),
]


@pytest.mark.parametrize("build,match", CONSTRUCTORS)
def test_bad_constructor_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


LAYERS = {
    "recurrent": lambda: Recurrent(LSTMCell(F, H)),
    "bidirectional": lambda: Bidirectional(Recurrent(GRUCell(F, H)), Recurrent(GRUCell(F, H))),
    "stacked": lambda: build_stack(ElmanCell, F, H, num_layers=2),
    "sliding_window": lambda: SlidingWindow(F, 2, 3, H),
    "narx": lambda: Recurrent(NARXCell(F, 2, H, input_delays=2)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_wrong_input_width(name):
    with pytest.raises(ValueError, match=r"input_size=3, got x of shape \(2, 5, 7\)"):
        LAYERS[name]()(torch.randn(2, 5, 7))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_not_batch_first_3d(name):
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, 3\), got \(5, 3\)"):
        LAYERS[name]()(torch.randn(5, 3))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize(
    "lengths,match",
    [
        ([5, 6], r"a length of 6 is longer than the sequence \(T=5 steps\)"),
        ([0, 5], r"every length must be >= 1, got a length of 0"),
        ([5, 5, 5], r"lengths must have shape \(B,\) = \(2,\), got \(3,\)"),
        ([5.0, 2.0], r"lengths must be integers, got dtype torch.float32"),
    ],
)
def test_bad_lengths(name, lengths, match):
    with pytest.raises(ValueError, match=match):
        LAYERS[name]()(torch.randn(2, 5, F), torch.tensor(lengths))


@pytest.mark.parametrize("cell", [ElmanCell(F, H), JordanCell(F, H), NARXCell(F, 2, H)])
def test_cell_wrong_input_width(cell):
    with pytest.raises(ValueError, match=r"x_t of shape \(B, input_size=3\), got \(2, 5\)"):
        cell(torch.randn(2, 5), cell.init_state(2))


@pytest.mark.parametrize("cell", [JordanCell(F, H, 2), NARXCell(F, 2, H)])
def test_wrong_feedback_shape(cell):
    layer = Recurrent(cell)
    x = torch.randn(2, 5, F)
    with pytest.raises(
        ValueError, match=r"feedback must have shape .* \(2, 5, 2\), got \(2, 5, 3\)"
    ):
        layer(x, feedback=torch.randn(2, 5, 3))
    with pytest.raises(
        ValueError, match=r"feedback y_t must have shape .* \(2, 2\), got \(2, 3\)"
    ):
        cell.teacher_force(cell.init_state(2), torch.randn(2, 3))


def test_feedback_needs_an_output_feedback_cell():
    with pytest.raises(ValueError, match="needs a cell with output feedback"):
        Recurrent(GRUCell(F, H))(torch.randn(2, 5, F), feedback=torch.randn(2, 5, H))
    with pytest.raises(ValueError, match="has no output feedback"):
        GRUCell(F, H).teacher_force(torch.zeros(2, H), torch.zeros(2, H))
    with pytest.raises(ValueError, match="needs a cell with output feedback"):
        SlidingWindow(F, 2, 3, H)(torch.randn(2, 5, F), feedback=torch.randn(2, 5, 2))


def test_bad_states():
    with pytest.raises(ValueError, match=r"state must have shape .* \(2, 2, 3\), got \(2, 3, 3\)"):
        SlidingWindow(F, 2, 3, H)(torch.randn(2, 5, F), state=torch.zeros(2, 3, F))
    with pytest.raises(ValueError, match=r"one entry per layer \(2\), got 1"):
        build_stack(ElmanCell, F, H, num_layers=2)(torch.randn(2, 5, F), state=[None])
    rnn = TorchStyleRNN("GRU", F, H, num_layers=2)
    with pytest.raises(ValueError, match=r"hx must have shape .* = \(2, 3, 4\), got \(1, 3, 4\)"):
        rnn(torch.randn(5, 3, F), torch.zeros(1, 3, H))
    with pytest.raises(ValueError, match="lengths= or a PackedSequence, not both"):
        packed = nn.utils.rnn.pack_padded_sequence(torch.randn(3, 5, F), [5, 4, 2], True)
        rnn(packed, lengths=torch.tensor([5, 4, 2]))
