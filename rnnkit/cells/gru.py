"""Gated recurrent unit (Cho et al. 2014)."""

from __future__ import annotations

from torch import Tensor

from rnnkit.cells.base import Cell, State, uniform_init_


class GRUCell(Cell):
    r"""GRU cell with torch's gate order and reset placement.

    .. math::
        \begin{aligned}
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    Symbols: :math:`r` reset gate, :math:`z` update gate, :math:`n` candidate state (often
    :math:`\tilde h_t`). Torch's (and here) :math:`z` keeps the *old* state, as in Cho et al.
    2014; Chung, Gulcehre, Cho & Bengio 2014 ("Empirical evaluation of gated recurrent neural
    networks on sequence modeling") write :math:`h_t = (1-z) h_{t-1} + z \tilde h_t`: the same
    model with :math:`z \to 1-z`.

    Args:
        input_size: F. hidden_size: H. bias: add ``b_ih`` and ``b_hh``.
        reset_after: ``True`` (torch, cuDNN) applies :math:`r_t` after :math:`W_{hn} h_{t-1}`;
            ``False`` is the paper's variant :math:`n_t = \tanh(W_{in} x_t + b_{in} +
            W_{hn}(r_t \odot h_{t-1}) + b_{hn})`, which torch's kernels cannot run.

    Shape:
        x_t (B, F), state h (B, H) -> out h_t (B, H), state h_t (B, H).

    Attributes:
        weight_ih (3H, F), weight_hh (3H, H), bias_ih (3H), bias_hh (3H), chunks (r, z, n)
        as in ``torch.nn.GRUCell``. Initialised U(-1/sqrt(H), 1/sqrt(H)).
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, reset_after: bool = True
    ) -> None:
        super().__init__(input_size, hidden_size, hidden_size)
        self.reset_after = reset_after
        self.fused_mode = "GRU" if reset_after else None
        # the paper variant has its own hand-written kernel (rnnkit.layers.backends.bptt)
        self.kernel = "GRU" if reset_after else "GRU_RESET_BEFORE"
        self._add_torch_weights(3, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> State:
        return self._zeros(batch_size, self.hidden_size, device, dtype)

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        h = state
        H = self.hidden_size
        gi = x_t @ self.weight_ih.T  # (B, 3H)
        if self.bias_ih is not None:
            gi = gi + self.bias_ih
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        if self.reset_after:
            gh = h @ self.weight_hh.T  # (B, 3H)
            if self.bias_hh is not None:
                gh = gh + self.bias_hh
            h_r, h_z, h_n = gh.chunk(3, dim=-1)
            r_t = (i_r + h_r).sigmoid()
            z_t = (i_z + h_z).sigmoid()
            n_t = (i_n + r_t * h_n).tanh()
        else:
            # the reset gate acts before W_hn, so the n-chunk needs its own matmul
            gh = h @ self.weight_hh[: 2 * H].T  # (B, 2H)
            if self.bias_hh is not None:
                gh = gh + self.bias_hh[: 2 * H]
            h_r, h_z = gh.chunk(2, dim=-1)
            r_t = (i_r + h_r).sigmoid()
            z_t = (i_z + h_z).sigmoid()
            h_n = (r_t * h) @ self.weight_hh[2 * H :].T
            if self.bias_hh is not None:
                h_n = h_n + self.bias_hh[2 * H :]
            n_t = (i_n + h_n).tanh()
        h_t = (1 - z_t) * n_t + z_t * h
        return h_t, h_t

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reset_after={self.reset_after}"
