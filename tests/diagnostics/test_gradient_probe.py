"""HiddenGradProbe: dL/dh_t and gate activations against a hand-written unroll with autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell, NARXCell
from rnnkit.diagnostics import HiddenGradProbe, gate_activations
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import BACKENDS
from rnnkit.models import build_stack

B, T, F, H = 3, 6, 2, 5


def hand_unroll(cell: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None):
    """Step ``cell`` by hand, keeping every h_t (with its grad) and the gates of every step."""
    state = cell.init_state(x.shape[0])
    hs, gates = [], []
    for t in range(x.shape[1]):
        h_prev = state[0] if isinstance(state, tuple) else state
        gi = x[:, t] @ cell.weight_ih.T + cell.bias_ih
        gh = h_prev @ cell.weight_hh.T + cell.bias_hh
        if isinstance(cell, LSTMCell):
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            gates.append({"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()})
        elif isinstance(cell, GRUCell):
            r = (gi[:, :H] + gh[:, :H]).sigmoid()
            z = (gi[:, H : 2 * H] + gh[:, H : 2 * H]).sigmoid()
            n = (gi[:, 2 * H :] + r * gh[:, 2 * H :]).tanh()
            gates.append({"r": r, "z": z, "n": n})
        out, new_state = cell(x[:, t], state)
        if out.requires_grad:
            out.retain_grad()
        hs.append(out)
        if lengths is not None:  # a finished sequence keeps its state
            keep = (t < lengths)[:, None]
            if isinstance(new_state, tuple):
                new_state = tuple(
                    torch.where(keep, n, s) for n, s in zip(new_state, state, strict=True)
                )
            else:
                new_state = torch.where(keep, new_state, state)
        state = new_state
    return hs, gates


def loss_on(outputs: torch.Tensor) -> torch.Tensor:
    # many-to-one (last step) plus a small per-step term, so both gradient paths matter
    return outputs[:, -1].pow(2).sum() + 0.1 * outputs.sum()


@pytest.mark.parametrize("cell_cls", [ElmanCell, LSTMCell, GRUCell])
def test_grad_norms_match_autograd_by_hand(cell_cls):
    torch.manual_seed(0)
    cell = cell_cls(F, H)
    layer = Recurrent(cell, backend="loop")
    x = torch.randn(B, T, F)
    with HiddenGradProbe(layer) as probe:
        out, _ = layer(x)
        loss_on(out).backward()
    measured = probe.grad_norms()["Recurrent"]

    hs, _ = hand_unroll(cell, x)
    loss_on(torch.stack(hs, dim=1)).backward()
    expected = torch.stack([h.grad.norm(dim=-1).mean() for h in hs])
    assert measured.shape == (T,)
    torch.testing.assert_close(measured, expected)
    # the total derivative, not the direct one: a loss on h_T still reaches h_1
    assert measured[0] > 0


def test_grad_norms_skip_finished_sequences():
    torch.manual_seed(1)
    cell = ElmanCell(F, H)
    layer = Recurrent(cell)
    x, lengths = torch.randn(B, T, F), torch.tensor([T, 2, 4])
    with HiddenGradProbe(layer) as probe:
        out, h_T = layer(x, lengths)
        (h_T.pow(2).sum() + 0.1 * out.sum()).backward()
    measured = probe.grad_norms()["Recurrent"]

    hs, _ = hand_unroll(cell, x, lengths)
    outs = torch.stack(hs, dim=1) * (torch.arange(T)[None, :, None] < lengths[:, None, None])
    finals = torch.stack([hs[int(n) - 1][b] for b, n in enumerate(lengths)])
    (finals.pow(2).sum() + 0.1 * outs.sum()).backward()
    norms = torch.stack([h.grad.norm(dim=-1) for h in hs], dim=1)  # (B, T)
    valid = torch.arange(T)[None] < lengths[:, None]
    expected = (norms * valid).sum(0) / valid.sum(0)
    torch.testing.assert_close(measured, expected)


@pytest.mark.parametrize("cell_cls", [LSTMCell, GRUCell])
def test_gate_means_equal_gates_by_hand(cell_cls):
    torch.manual_seed(2)
    cell = cell_cls(F, H)
    layer = Recurrent(cell)
    x = torch.randn(B, T, F)
    with HiddenGradProbe(layer, gates=True) as probe:
        out, _ = layer(x)
        out.sum().backward()
    measured = probe.gate_means()["Recurrent"]
    with torch.no_grad():
        _, gates = hand_unroll(cell, x)
    assert set(measured) == set(gates[0])
    for name in measured:
        expected = torch.stack([step[name].mean() for step in gates])  # over batch and units
        torch.testing.assert_close(measured[name], expected)


def test_gate_activations_only_for_torch_math_cells():
    x, h = torch.randn(B, F), torch.randn(B, H)
    assert gate_activations(ElmanCell(F, H), x, h) is None
    assert gate_activations(GRUCell(F, H, reset_after=False), x, h) is None
    assert set(gate_activations(GRUCell(F, H), x, h)) == {"r", "z", "n"}


# every backend that can run an LSTM (new backends join automatically), and "auto"
LSTM_BACKENDS = ["auto"] + sorted(n for n, (ok, _) in BACKENDS.items() if ok(LSTMCell(F, H), None))


@pytest.mark.parametrize("backend", LSTM_BACKENDS)
def test_probe_leaves_outputs_and_parameter_grads_unchanged(backend):
    torch.manual_seed(3)
    model = build_stack(LSTMCell, F, H, num_layers=2, bidirectional=True, backend=backend)
    x, lengths = torch.randn(B, T, F), torch.tensor([T, 3, 5])
    out, _ = model(x, lengths)
    out.pow(2).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    with HiddenGradProbe(model) as probe:
        probed, _ = model(x, lengths)
        probed.pow(2).sum().backward()
    torch.testing.assert_close(probed, out)
    for before, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, before)
    norms = probe.grad_norms()
    # every direction of every layer is watched, by its name in the model
    assert set(norms) == {
        f"layers.{i}.{d}_layer" for i in range(2) for d in ("forward", "backward")
    }
    assert all(v.shape == (T,) and torch.isfinite(v).all() for v in norms.values())


def test_probe_is_inert_outside_the_block_and_under_no_grad():
    layer = Recurrent(ElmanCell(F, H))
    x = torch.randn(B, T, F)
    with HiddenGradProbe(layer) as probe:
        with torch.no_grad():
            layer(x)
    layer(x).__getitem__(0).sum().backward()  # after the block: not recorded
    assert probe.grad_norms() == {}
    assert not layer._forward_hooks


def test_output_feedback_cells_open_and_closed_loop():
    torch.manual_seed(4)
    layer = Recurrent(NARXCell(F, 1, H, input_delays=2, output_delays=2))
    x, y = torch.randn(B, T, F), torch.randn(B, T, 1)
    with HiddenGradProbe(layer) as probe:
        out, _ = layer(x, feedback=y)  # open loop: the truth fills the delay line
        out.pow(2).sum().backward()
    torch.testing.assert_close(out, layer(x, feedback=y)[0])
    # teacher forced, y_t reaches the loss only directly: dL/dy_t = 2 y_t
    expected = (2 * out.detach()).norm(dim=-1).mean(0)
    torch.testing.assert_close(probe.grad_norms()["Recurrent"], expected)

    with HiddenGradProbe(layer) as probe:
        out, _ = layer(x)  # closed loop: y_t also feeds the next steps
        out[:, -1].pow(2).sum().backward()
    norms = probe.grad_norms()["Recurrent"]
    assert norms.shape == (T,) and norms[0] > 0  # reached through the fed-back predictions
