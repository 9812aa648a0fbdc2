"""The peephole and layer-norm LSTMs (cells written as a user would, a scriptable step) against
references written out here and torch.nn.LSTMCell, and the ``scripted`` backend that runs them:
gradcheck in float64, one scripted unroll per cell type whatever the length, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.cells import GRUCell, LayerNormLSTMCell, PeepholeLSTMCell
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import scripted

CELLS = {"peephole_lstm": PeepholeLSTMCell, "layer_norm_lstm": LayerNormLSTMCell}


def randomised(cell):
    """Every parameter random (gains and peepholes included), so every term matters."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0, 0.5)
    return cell.double()


def test_peephole_lstm_without_peepholes_is_torchs_lstm_cell():
    cell = randomised(PeepholeLSTMCell(3, 4))
    with torch.no_grad():
        cell.peephole.zero_()
    ref = nn.LSTMCell(3, 4).double()
    with torch.no_grad():
        ref.weight_ih.copy_(cell.weight_ih)
        ref.weight_hh.copy_(cell.weight_hh)
        ref.bias_ih.copy_(cell.bias)
        ref.bias_hh.zero_()
    x, h, c = torch.randn(2, 3).double(), torch.randn(2, 4).double(), torch.randn(2, 4).double()
    out, (h_t, c_t) = cell(x, (h, c))
    want_h, want_c = ref(x, (h, c))
    torch.testing.assert_close((out, h_t, c_t), (want_h, want_h, want_c))


def test_peephole_lstm_step_is_the_formula():
    cell = randomised(PeepholeLSTMCell(3, 4))
    x, h, c = torch.randn(2, 3).double(), torch.randn(2, 4).double(), torch.randn(2, 4).double()
    a = x @ cell.weight_ih.T + cell.bias + h @ cell.weight_hh.T
    a_i, a_f, a_g, a_o = a.split(4, dim=-1)
    p_i, p_f, p_o = cell.peephole
    c_t = torch.sigmoid(a_f + p_f * c) * c + torch.sigmoid(a_i + p_i * c) * torch.tanh(a_g)
    h_t = torch.sigmoid(a_o + p_o * c_t) * torch.tanh(c_t)
    torch.testing.assert_close(cell(x, (h, c)), (h_t, (h_t, c_t)))


def test_layer_norm_lstm_step_is_the_formula():
    cell = randomised(LayerNormLSTMCell(3, 4))
    x, h, c = torch.randn(2, 3).double(), torch.randn(2, 4).double(), torch.randn(2, 4).double()

    def norm(z, gain, bias=None):  # written out: mean and biased variance over the features
        mu, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        out = gain * (z - mu) / torch.sqrt(var + 1e-5)
        return out if bias is None else out + bias

    a = norm(x @ cell.weight_ih.T, cell.ln_ih_weight) + cell.bias
    a = a + norm(h @ cell.weight_hh.T, cell.ln_hh_weight)
    a_i, a_f, a_g, a_o = a.split(4, dim=-1)
    c_t = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    h_t = torch.sigmoid(a_o) * torch.tanh(norm(c_t, cell.ln_c_weight, cell.ln_c_bias))
    torch.testing.assert_close(cell(x, (h, c)), (h_t, (h_t, c_t)))


def test_layer_norm_lstm_starts_with_unit_gains_and_zero_norm_bias():
    cell = LayerNormLSTMCell(3, 4)
    for gain in (cell.ln_ih_weight, cell.ln_hh_weight, cell.ln_c_weight):
        assert torch.equal(gain, torch.ones_like(gain))
    assert torch.equal(cell.ln_c_bias, torch.zeros(4))
    assert cell.weight_hh.abs().max() <= 0.5 and cell.weight_hh.std() > 0  # U(-1/sqrt(H), ..)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_scripted_gradcheck_float64(name):
    layer = Recurrent(randomised(CELLS[name](2, 3)), backend="scripted", learn_init=True).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *params):
        out, (h, c) = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x, lengths)
        )
        return out, h, c

    # fast mode (random projections of the Jacobian): every evaluation is a scripted unroll
    assert torch.autograd.gradcheck(f, (x, *layer.parameters()), fast_mode=True)


def test_one_scripted_unroll_per_cell_type_whatever_the_length():
    layer = Recurrent(PeepholeLSTMCell(3, 4), backend="scripted")
    layer(torch.randn(2, 5, 3))
    before = scripted._make_unroll.cache_info()
    for T in (1, 7, 13):
        layer(torch.randn(3, T, 3))[0].sum().backward()
    after = scripted._make_unroll.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 3


def test_scripted_refuses_a_cell_without_a_scriptable_step():
    with pytest.raises(ValueError, match="backend 'scripted' cannot run GRUCell"):
        Recurrent(GRUCell(3, 4), backend="scripted")(torch.randn(2, 3, 3))


def test_a_projected_input_of_all_steps_equals_one_step_at_a_time():
    cell = randomised(LayerNormLSTMCell(3, 4))
    x = torch.randn(2, 5, 3).double()
    whole = cell.project_input(x)
    torch.testing.assert_close(whole[:, 2], cell.project_input(x[:, 2]))
    torch.testing.assert_close(whole[:, 2], F.layer_norm(
        x[:, 2] @ cell.weight_ih.T, [16], cell.ln_ih_weight, cell.bias
    ))  # fmt: skip
