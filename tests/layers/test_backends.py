"""Every execution backend gives the ``loop`` backend's numbers: outputs, final states, and the
gradients of the parameters, the input, the learned initial state and the teacher-forced targets.
"""

from __future__ import annotations

import functools

import pytest
import torch

from rnnkit.cells import (
    ElmanCell,
    GRUCell,
    JordanCell,
    LayerNormLSTMCell,
    LSTMCell,
    MGUCell,
    MinGRUCell,
    MinLSTMCell,
    NARXCell,
    PeepholeLSTMCell,
    SRUCell,
)
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import BACKENDS, choose_backend
from rnnkit.layers.state import map_state
from rnnkit.models import build_stack

F, H = 3, 4
CELLS = {
    "elman_tanh": ElmanCell,
    "elman_relu": functools.partial(ElmanCell, nonlinearity="relu"),
    "lstm": LSTMCell,
    "lstm_nobias": functools.partial(LSTMCell, bias=False),
    "gru": GRUCell,
    "gru_nobias": functools.partial(GRUCell, bias=False),
    "gru_reset_before": functools.partial(GRUCell, reset_after=False),
    "jordan": functools.partial(JordanCell, output_size=2),
    "jordan_learned_decay": functools.partial(
        JordanCell,
        output_size=2,
        memory_decay=0.5,
        learn_decay=True,
        running_average=True,
        nonlinearity="relu",
        output_activation="tanh",
    ),  # fmt: skip
    "narx": functools.partial(NARXCell, output_size=2, input_delays=2, output_delays=3),
    # output size = hidden size: the closed loop runs in state form (feedback._narx_state_form)
    "narx_state_form": functools.partial(
        NARXCell, output_size=H, output_delays=2, nonlinearity="relu"
    ),
    "narx_state_form_nobias": functools.partial(
        NARXCell, output_size=H + 1, output_delays=3, bias=False, nonlinearity="sigmoid"
    ),
    "mgu": MGUCell,
    "mgu_nobias": functools.partial(MGUCell, bias=False),
    # F != H: the highway term is a fourth chunk of W x_t
    "sru_projected_skip": functools.partial(SRUCell, highway_bias=-1.0),
    # the highway term is x_t itself: every layer as wide as its input
    "sru_identity_skip": lambda input_size, hidden_size: SRUCell(input_size, input_size),
    "sru_no_skip": functools.partial(SRUCell, has_skip_term=False),
    "mingru": MinGRUCell,
    "mingru_g_nobias": functools.partial(MinGRUCell, bias=False, candidate="g"),
    "minlstm": MinLSTMCell,
    "minlstm_g": functools.partial(MinLSTMCell, candidate="g"),
    # cells written as a user would (a scriptable step, no kernel)
    "peephole_lstm": PeepholeLSTMCell,
    "layer_norm_lstm": LayerNormLSTMCell,
}
FEEDBACK_CELLS = [
    "jordan",
    "jordan_learned_decay",
    "narx",
    "narx_state_form",
    "narx_state_form_nobias",
]
LENGTHS = torch.tensor([6, 2, 1, 5])
FAST_BACKENDS = ["fused", "bptt", "native", "scan", "scripted", "auto"]


def leaves(state) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda s: out.append(s) or s, state)
    return out


def build(name: str, backend: str, bidirectional: bool):
    torch.manual_seed(0)
    model = build_stack(
        CELLS[name], F, H, num_layers=2 if bidirectional else 1, bidirectional=bidirectional,
        learn_init=True, backend=backend,
    ).double()  # fmt: skip
    with torch.no_grad():  # a learned initial state that is not zero, so its gradient matters
        for pname, p in model.named_parameters():
            if "init_params" in pname:
                p.normal_()
    return model


def run(model, x, lengths, feedback=None):
    """Outputs, final-state leaves and the gradients of every parameter and input."""
    x = x.clone().requires_grad_(True)
    kwargs = {}
    if feedback is not None:
        feedback = feedback.clone().requires_grad_(True)
        kwargs["feedback"] = feedback
    outputs, final = model(x, lengths, **kwargs)
    states = leaves(final)
    weights = torch.linspace(-1, 1, outputs.shape[-1], dtype=x.dtype, device=x.device)
    loss = (outputs * weights).sum() + sum((s.sin()).sum() for s in states)
    inputs = [*model.parameters(), x] + ([feedback] if feedback is not None else [])
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    # an input a backend never reads has gradient zero, whatever the engine reports
    grads = [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs, strict=True)]
    return outputs, states, grads


def assert_same(got, want, rtol=1e-9, atol=1e-10):
    """Outputs, states and gradients of :func:`run` agree (float64 tolerances by default)."""
    (out_g, st_g, gr_g), (out_w, st_w, gr_w) = got, want
    torch.testing.assert_close(out_g, out_w, rtol=rtol, atol=atol)
    assert len(st_g) == len(st_w)
    for a, b in zip(st_g, st_w, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    for a, b in zip(gr_g, gr_w, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def supported(name: str, backend: str, feedback: bool) -> bool:
    if backend == "auto":
        return True
    cell = CELLS[name](input_size=F, hidden_size=H)
    probe = torch.zeros(1) if feedback else None
    return BACKENDS[backend][0](cell, probe)


CASES = [
    pytest.param(name, backend, with_lengths, bidir, id=f"{name}-{backend}-{tag}-{shape}")
    for name in CELLS
    for backend in FAST_BACKENDS
    if supported(name, backend, False)
    for with_lengths, tag in [(False, "full"), (True, "lengths")]
    for bidir, shape in [(False, "1layer"), (True, "2layer_bidir")]
]


def sequences() -> torch.Tensor:
    return torch.randn(
        len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip


@functools.cache
def reference(name: str, with_lengths: bool, bidir: bool):
    """The loop backend's results, computed once per case and shared by every backend."""
    return run(build(name, "loop", bidir), sequences(), LENGTHS if with_lengths else None)


@pytest.mark.parametrize("name,backend,with_lengths,bidir", CASES)
def test_backend_matches_loop(name, backend, with_lengths, bidir):
    lengths = LENGTHS if with_lengths else None
    got = run(build(name, backend, bidir), sequences(), lengths)
    assert_same(got, reference(name, with_lengths, bidir))


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("backend", ["bptt", "native", "auto"])
@pytest.mark.parametrize("name", FEEDBACK_CELLS)
def test_teacher_forced_backend_matches_loop(name, backend, with_lengths):
    torch.manual_seed(2)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64)
    O = CELLS[name](input_size=F, hidden_size=H).output_size
    feedback = torch.randn(len(LENGTHS), int(LENGTHS.max()), O, dtype=torch.float64)
    lengths = LENGTHS if with_lengths else None
    want = run(build(name, "loop", False), x, lengths, feedback)
    got = run(build(name, backend, False), x, lengths, feedback)
    assert_same(got, want)


@pytest.mark.parametrize("name", ["elman_relu", "narx_state_form"])
@pytest.mark.parametrize("backend", ["bptt", "native"])
def test_padding_garbage_never_reaches_a_gradient(backend, name):
    # huge padding drives a ReLU state to inf after the end; nothing may leak back
    torch.manual_seed(3)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64)
    pad = torch.arange(x.shape[1]) >= LENGTHS[:, None]
    x = x.masked_fill(pad.unsqueeze(-1), 1e300)
    got = run(build(name, backend, False), x, LENGTHS)
    want = run(build(name, "loop", False), x, LENGTHS)
    assert all(torch.isfinite(g).all() for g in got[2][:-1])  # the input's padding aside
    assert_same((got[0], got[1], got[2][:-1]), (want[0], want[1], want[2][:-1]))


def test_fused_gradients_reach_the_cells_own_parameters():
    layer = Recurrent(LSTMCell(F, H), backend="fused")
    outputs, _ = layer(torch.randn(2, 3, F))
    outputs.sum().backward()
    for name, p in layer.cell.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("name", sorted(CELLS))
def test_auto_picks_a_backend_that_supports_the_cell(name):
    cell = CELLS[name](input_size=F, hidden_size=H)
    for feedback in [None, torch.zeros(1)] if cell.output_feedback else [None]:
        picked = choose_backend(cell, torch.device("cpu"), feedback)
        assert BACKENDS[picked][0](cell, feedback)
        assert picked != "loop", "every rnnkit cell has a faster path than the loop"


def test_unsupported_backend_is_a_clear_error():
    layer = Recurrent(GRUCell(F, H, reset_after=False), backend="fused")
    with pytest.raises(ValueError, match="fused"):
        layer(torch.randn(2, 3, F))
    with pytest.raises(ValueError, match="backend must be one of"):
        Recurrent(LSTMCell(F, H), backend="cudnn")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "gru_reset_before", "jordan"])
def test_compiled_backend_matches_loop(name):
    torch.manual_seed(4)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, dtype=torch.float64)
    want = run(build(name, "loop", False), x, LENGTHS)
    got = run(build(name, "compiled", False), x, LENGTHS)
    assert_same(got, want)


@pytest.mark.parametrize(
    "name,backend",
    [(n, b) for n in CELLS for b in FAST_BACKENDS if supported(n, b, False)],
)
def test_single_step_single_sequence(name, backend):
    torch.manual_seed(5)
    x = torch.randn(1, 1, F, dtype=torch.float64)
    want = run(build(name, "loop", False), x, torch.tensor([1]))
    got = run(build(name, backend, False), x, torch.tensor([1]))
    assert_same(got, want)
