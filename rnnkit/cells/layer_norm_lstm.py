"""LSTM with layer normalisation (Ba, Kiros & Hinton 2016, "Layer normalization", section 6.2
of the paper's recurrent form), written as a user would: a scriptable step, no kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import ScriptedStepCell, State


def layer_norm_lstm_step(
    xp_t: Tensor, state: list[Tensor], params: list[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """One step from the projected, normalised input ``xp_t (B, 4H)``; ``state = [h, c]``,
    ``params = [weight_hh (4H, H), ln_hh_weight (4H), ln_c_weight (H), ln_c_bias (H)]``
    -> ``(h_t, [h_t, c_t])``."""
    h, c = state[0], state[1]
    weight_hh, gain_hh, gain_c, bias_c = params[0], params[1], params[2], params[3]
    recurrent = F.layer_norm(h @ weight_hh.t(), [weight_hh.shape[0]], gain_hh, None)
    i, f, g, o = (xp_t + recurrent).chunk(4, dim=-1)
    c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    normed = F.layer_norm(c_t, [c_t.shape[-1]], gain_c, bias_c)
    h_t = torch.sigmoid(o) * torch.tanh(normed)
    return h_t, [h_t, c_t]


class LayerNormLSTMCell(ScriptedStepCell):
    r"""LSTM whose input and recurrent products and cell state are layer-normalised.

    .. math::
        \begin{aligned}
        (a^i, a^f, a^g, a^o) &= \mathrm{LN}(W_{ih} x_t; \gamma_{ih}) +
            \mathrm{LN}(W_{hh} h_{t-1}; \gamma_{hh}) + b \\
        c_t &= \sigma(a^f) \odot c_{t-1} + \sigma(a^i) \odot \tanh(a^g) \\
        h_t &= \sigma(a^o) \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))
        \end{aligned}

    with :math:`\mathrm{LN}(z; \gamma, \beta) = \gamma \odot (z - \mu(z)) / \sqrt{\sigma^2(z) +
    \epsilon} + \beta` (:math:`\epsilon = 10^{-5}`, torch's default) over the features of each
    row (the two products over all ``4H`` features at once, as in Ba et al.). Normalising each
    product separately keeps the input part a function of ``x_t`` alone, so a layer computes
    it for all steps at once (:meth:`project_input`) and runs the rest of the step
    (:func:`layer_norm_lstm_step`) in
    TorchScript (the ``scripted`` backend, ``auto``'s pick for it).

    Args:
        input_size: F. hidden_size: H.

    Shape:
        x_t (B, F), state (h, c) each (B, H) -> out h_t (B, H), state (h_t, c_t).

    Attributes:
        weight_ih (4H, F), weight_hh (4H, H), bias (4H), chunks (i, f, g, o), all
        U(-1/sqrt(H), 1/sqrt(H)); ln_ih_weight, ln_hh_weight (4H) and ln_c_weight (H) ones,
        ln_c_bias (H) zeros.
    """

    step_function = staticmethod(layer_norm_lstm_step)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        G = 4 * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))
        self.bias = nn.Parameter(torch.empty(G))
        self.ln_ih_weight = nn.Parameter(torch.empty(G))
        self.ln_hh_weight = nn.Parameter(torch.empty(G))
        self.ln_c_weight = nn.Parameter(torch.empty(hidden_size))
        self.ln_c_bias = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = self.hidden_size**-0.5
        with torch.no_grad():
            for weight in (self.weight_ih, self.weight_hh, self.bias):
                weight.uniform_(-bound, bound)
            for gain in (self.ln_ih_weight, self.ln_hh_weight, self.ln_c_weight):
                gain.fill_(1.0)
            self.ln_c_bias.zero_()

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        h = self._zeros(batch_size, self.hidden_size, device, dtype)
        return h, torch.zeros_like(h)

    def project_input(self, x: Tensor) -> Tensor:
        """``x (..., F)`` -> ``(..., 4H)``: the normalised input product plus the bias."""
        product = F.linear(x, self.weight_ih)
        return F.layer_norm(product, [product.shape[-1]], self.ln_ih_weight, self.bias)

    def step_parameters(self) -> list[Tensor]:
        return [self.weight_hh, self.ln_hh_weight, self.ln_c_weight, self.ln_c_bias]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"
