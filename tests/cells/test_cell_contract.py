"""The cell contract, checked on every cell: shapes, determinism, dtype/device of init_state."""

from __future__ import annotations

import inspect

import pytest
import torch

import rnnkit.cells as cells_module
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
from rnnkit.cells.base import Cell, ScriptedStepCell
from rnnkit.layers.state import map_state

F, H = 3, 4
# every cell rnnkit.cells exports, in each of its distinct configurations
CELLS = {
    "elman_tanh": lambda: ElmanCell(F, H),
    "elman_relu_nobias": lambda: ElmanCell(F, H, bias=False, nonlinearity="relu"),
    "lstm": lambda: LSTMCell(F, H, forget_bias=1.0),
    "gru": lambda: GRUCell(F, H),
    "gru_reset_before": lambda: GRUCell(F, H, reset_after=False),
    "jordan": lambda: JordanCell(F, H, output_size=2),
    "jordan_learned_decay": lambda: JordanCell(
        F,
        H,
        2,
        memory_decay=0.3,
        learn_decay=True,
        running_average=True,
        output_activation="tanh",
    ),
    "narx": lambda: NARXCell(F, 2, H, input_delays=2, output_delays=3),
    "mgu": lambda: MGUCell(F, H),
    "mgu_nobias": lambda: MGUCell(F, H, bias=False),
    "sru_projected_skip": lambda: SRUCell(F, H, highway_bias=-1.0),
    "sru_identity_skip": lambda: SRUCell(H, H),
    "sru_no_skip": lambda: SRUCell(F, H, has_skip_term=False),
    "mingru": lambda: MinGRUCell(F, H),
    "mingru_g": lambda: MinGRUCell(F, H, candidate="g", bias=False),
    "minlstm": lambda: MinLSTMCell(F, H),
    "minlstm_g": lambda: MinLSTMCell(F, H, candidate="g"),
    "peephole_lstm": lambda: PeepholeLSTMCell(F, H),
    "layer_norm_lstm": lambda: LayerNormLSTMCell(F, H),
}
# cells initialised otherwise than torch's U(-1/sqrt(H), 1/sqrt(H)), tested where named
OWN_INIT = {"sru_projected_skip", "sru_identity_skip", "sru_no_skip"}  # tests/cells/test_sru.py
OWN_INIT |= {"layer_norm_lstm"}  # gains 1, biases 0: tests/cells/test_user_style_lstm.py


def leaves(state) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    map_state(lambda s: out.append(s) or s, state)
    return out


def test_every_exported_cell_is_covered():
    exported = {
        obj
        for obj in vars(cells_module).values()
        if inspect.isclass(obj) and issubclass(obj, Cell) and obj not in (Cell, ScriptedStepCell)
    }
    covered = {type(make()) for make in CELLS.values()}
    assert exported <= covered, f"add {exported - covered} to CELLS in this file"


@pytest.mark.parametrize("name", sorted(CELLS))
def test_init_state_then_forward_shapes(name):
    torch.manual_seed(0)
    cell = CELLS[name]()
    B = 5
    state = cell.init_state(B)
    assert all(float(s.abs().sum()) == 0.0 for s in leaves(state)), "init_state must be zeros"
    out, new_state = cell(torch.randn(B, cell.input_size), state)
    assert out.shape == (B, cell.output_size)
    assert [s.shape for s in leaves(new_state)] == [s.shape for s in leaves(state)]
    assert type(new_state) is type(state)
    if cell.output_feedback:
        forced = cell.teacher_force(new_state, torch.randn(B, cell.output_size))
        assert [s.shape for s in leaves(forced)] == [s.shape for s in leaves(state)]


@pytest.mark.parametrize("name", sorted(CELLS))
def test_same_seed_same_outputs(name):
    def run():
        torch.manual_seed(123)
        cell = CELLS[name]()
        x = torch.randn(2, 6, cell.input_size)
        state = cell.init_state(2)
        outs = []
        for t in range(x.shape[1]):
            out, state = cell(x[:, t], state)
            outs.append(out)
        return torch.stack(outs, 1), leaves(state)

    (a, sa), (b, sb) = run(), run()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    for u, v in zip(sa, sb, strict=True):
        torch.testing.assert_close(u, v, rtol=0, atol=0)
    torch.manual_seed(124)
    other = CELLS[name]()
    torch.manual_seed(123)
    first = CELLS[name]()
    assert any(
        not torch.equal(p, q) for p, q in zip(first.parameters(), other.parameters(), strict=True)
    ), "another seed must give other weights"


@pytest.mark.parametrize("name", sorted(CELLS))
def test_init_state_follows_dtype_and_device(name):
    cell = CELLS[name]()
    # by default the state follows the parameters
    assert all(s.dtype == torch.float32 for s in leaves(cell.init_state(2)))
    assert all(s.dtype == torch.float64 for s in leaves(cell.double().init_state(2)))
    # explicit arguments win over the parameters
    cell = CELLS[name]()
    state = cell.init_state(3, dtype=torch.float64, device="meta")
    assert all(s.dtype == torch.float64 and s.device.type == "meta" for s in leaves(state))
    assert all(s.shape[0] == 3 for s in leaves(state))
    # a float64 cell runs a float64 state end to end
    cell = CELLS[name]().double()
    out, new_state = cell(torch.randn(3, cell.input_size, dtype=torch.float64), cell.init_state(3))
    assert out.dtype == torch.float64
    assert all(s.dtype == torch.float64 for s in leaves(new_state))


@pytest.mark.parametrize("name", sorted(set(CELLS) - OWN_INIT))
def test_reset_parameters_is_torch_uniform(name):
    torch.manual_seed(0)
    cell = CELLS[name]()
    bound = 1.0 / cell.hidden_size**0.5
    for pname, p in cell.named_parameters():
        if pname == "decay_logit":  # starts at logit(memory_decay), not a weight
            continue
        extra = getattr(cell, "forget_bias", 0.0) if pname == "bias_ih" else 0.0
        p = p.detach()
        assert float(p.min()) >= -bound - 1e-7 and float(p.max()) <= bound + extra + 1e-7


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradcheck_float64(name):
    """Gradients w.r.t. the input, every state tensor and every parameter, over two steps."""
    torch.manual_seed(0)
    cell = CELLS[name]().double()
    B = 2
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    state = map_state(lambda s: torch.randn_like(s).requires_grad_(), cell.init_state(B))
    state_leaves = leaves(state)
    x = torch.randn(B, 2, cell.input_size, dtype=torch.float64, requires_grad=True)

    def two_steps(x, *tensors):
        n_state = len(state_leaves)
        it = iter(tensors[:n_state])
        s = map_state(lambda _: next(it), state)
        weights = dict(zip(names, tensors[n_state:], strict=True))
        out_1, s = torch.func.functional_call(cell, weights, (x[:, 0], s))
        out_2, s = torch.func.functional_call(cell, weights, (x[:, 1], s))
        return (out_1, out_2, *leaves(s))

    assert torch.autograd.gradcheck(two_steps, (x, *state_leaves, *params))
