"""Recurrent.step (streaming, one step a call): the same outputs, states and gradients as the
``loop`` backend over the whole sequence."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell, NARXCell
from rnnkit.layers import Recurrent
from rnnkit.layers.state import map_state

F, H, B, T = 3, 4, 2, 5
CELLS = {
    "elman": lambda: ElmanCell(F, H),
    "elman_relu_nobias": lambda: ElmanCell(F, H, nonlinearity="relu", bias=False),
    "lstm": lambda: LSTMCell(F, H),
    "gru": lambda: GRUCell(F, H),
    "gru_reset_before": lambda: GRUCell(F, H, reset_after=False),
    "jordan": lambda: JordanCell(F, H, 2, memory_decay=0.5),
    "narx": lambda: NARXCell(F, 2, H, input_delays=2, output_delays=2),
}


def leaves(state) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda s: out.append(s) or s, state)
    return out


def layer(name: str, backend: str) -> Recurrent:
    torch.manual_seed(0)
    model = Recurrent(CELLS[name](), learn_init=True, backend=backend).double()
    with torch.no_grad():  # a learned initial state that is not zero
        for p in model.init_params:
            p.normal_()
    return model


def streamed(model: Recurrent, x: torch.Tensor, feedback: torch.Tensor | None):
    state, outputs = None, []
    for t in range(x.shape[1]):
        fed = None if feedback is None else feedback[:, t]
        out_t, state = model.step(x[:, t], state, feedback=fed)
        outputs.append(out_t)
    return torch.stack(outputs, dim=1), state


def results(model, x, feedback, run):
    """Outputs, final-state leaves and the gradients of every parameter and of x."""
    x = x.clone().requires_grad_(True)
    outputs, final = run(model, x, feedback)
    states = leaves(final)
    loss = (outputs * outputs.new_tensor([1.0, -0.5, 2.0, 0.3][: outputs.shape[-1]])).sum()
    loss = loss + sum(s.sin().sum() for s in states)
    grads = torch.autograd.grad(loss, [*model.parameters(), x], allow_unused=True)
    return [outputs, *states, *(g for g in grads if g is not None)]


FEEDBACK_CELLS = {"jordan", "narx"}
CASES = [
    pytest.param(name, backend, forced, id=f"{name}-{backend}-{'forced' if forced else 'free'}")
    for name in CELLS
    for backend in ("auto", "loop")
    for forced in ([False, True] if name in FEEDBACK_CELLS else [False])
]


@pytest.mark.parametrize("name,backend,forced", CASES)
def test_step_matches_loop(name, backend, forced):
    cell = CELLS[name]()
    assert cell.output_feedback == (name in FEEDBACK_CELLS)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, F, dtype=torch.float64, generator=g)
    feedback = torch.randn(B, T, cell.output_size, dtype=torch.float64, generator=g)
    feedback = feedback if forced else None
    want = results(layer(name, "loop"), x, feedback, lambda m, x, f: m(x, feedback=f))
    got = results(layer(name, backend), x, feedback, streamed)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_step_checks_its_input():
    model = Recurrent(LSTMCell(F, H))
    with pytest.raises(ValueError, match=r"x_t of shape \(B, input_size=3\)"):
        model.step(torch.zeros(1, 1, F))
    with pytest.raises(ValueError, match="feedback= needs a cell with output feedback"):
        model.step(torch.zeros(1, F), feedback=torch.zeros(1, H))
