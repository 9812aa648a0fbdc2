# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Cells by hand
#
# Every rnnkit cell is one small module with one contract: `forward(x_t, state) -> (out_t, new_state)`.
# Here we build each cell, step it through a short sequence ourselves, and check every number
# against `torch.nn` (same parameter names, shapes and gate order, so the weights load as they are)
# and against the update equations written out by hand.

# %%
import torch
from torch import nn

import rnnkit
from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell

_ = torch.manual_seed(0)
B, T, F, H = 2, 5, 3, 4
x = torch.randn(B, T, F)

# %% [markdown]
# ## Elman (simple RNN)
#
# $h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$. The cell returns `(h_t, h_t)`: its output
# *is* its state.

# %%
cell = ElmanCell(F, H)
ref = nn.RNNCell(F, H)
ref.load_state_dict(cell.state_dict())  # same names and shapes: loads as-is

h = cell.init_state(B)
h_ref = torch.zeros(B, H)
for t in range(T):
    out, h_next = cell(x[:, t], h)
    by_hand = torch.tanh(
        x[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    )
    h_ref = ref(x[:, t], h_ref)
    torch.testing.assert_close(out, by_hand)
    torch.testing.assert_close(out, h_ref)
    assert out is h_next
    h = h_next
print("Elman: 5 steps equal nn.RNNCell and the formula; h_T[0] =", h[0])

# %% [markdown]
# ## LSTM
#
# Gates in torch's order $(i, f, g, o)$: $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, $h_t = o_t \odot \tanh(c_t)$.
# The state is the pair $(h_t, c_t)$.

# %%
cell = LSTMCell(F, H)
ref = nn.LSTMCell(F, H)
ref.load_state_dict(cell.state_dict())

state = cell.init_state(B)
state_ref = (torch.zeros(B, H), torch.zeros(B, H))
for t in range(T):
    out, state_next = cell(x[:, t], state)
    h, c = state
    i, f, g, o = (
        x[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
    ).chunk(4, -1)
    c_hand = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h_hand = o.sigmoid() * c_hand.tanh()
    state_ref = ref(x[:, t], state_ref)
    torch.testing.assert_close(state_next, (h_hand, c_hand))
    torch.testing.assert_close(state_next, state_ref)
    state = state_next
print(
    "LSTM: 5 steps equal nn.LSTMCell and the formula; forget gate at the last step:",
    f.sigmoid()[0],
)

# %% [markdown]
# ## GRU
#
# $r_t, z_t$ gates, candidate $n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))$,
# $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ (torch applies the reset *after* $W_{hn}$, and so do we).

# %%
cell = GRUCell(F, H)
ref = nn.GRUCell(F, H)
ref.load_state_dict(cell.state_dict())

h = cell.init_state(B)
h_ref = torch.zeros(B, H)
for t in range(T):
    out, h_next = cell(x[:, t], h)
    xi = (x[:, t] @ cell.weight_ih.T + cell.bias_ih).chunk(3, -1)
    hh = (h @ cell.weight_hh.T + cell.bias_hh).chunk(3, -1)
    r, z = (xi[0] + hh[0]).sigmoid(), (xi[1] + hh[1]).sigmoid()
    n = (xi[2] + r * hh[2]).tanh()
    h_ref = ref(x[:, t], h_ref)
    torch.testing.assert_close(out, (1 - z) * n + z * h)
    torch.testing.assert_close(out, h_ref)
    h = h_next
print("GRU: 5 steps equal nn.GRUCell and the formula")

# %% [markdown]
# ## From a cell to a layer, and back to `torch.nn`
#
# `Recurrent` unrolls a cell over time; `rnnkit.from_torch` turns a `torch.nn.LSTM` (any number of
# layers, bidirectional) into rnnkit layers with the same weights and the same interface.

# %%
torch_lstm = nn.LSTM(F, H, num_layers=2, bidirectional=True, batch_first=True)
ours = rnnkit.from_torch(torch_lstm)
out_ref, (h_n_ref, c_n_ref) = torch_lstm(x)
out, (h_n, c_n) = ours(x)
torch.testing.assert_close(out, out_ref)
torch.testing.assert_close(h_n, h_n_ref)
torch.testing.assert_close(c_n, c_n_ref)
print(ours.stack)
print("2-layer bidirectional LSTM: outputs and final states equal torch's", tuple(out.shape))

# %% [markdown]
# ## Jordan: memory from the output
#
# A Jordan cell remembers its own previous *output* $y_{t-1}$ (not its hidden layer) in memory units
# $m_t = \mu\, m_{t-1} + y_{t-1}$. There is no `torch.nn` counterpart, so we check it against the
# formula. In **closed loop** the cell feeds back its own predictions; with `teacher_force` (open
# loop) it feeds back the true outputs instead.

# %%
cell = JordanCell(F, H, output_size=2, memory_decay=0.5)
state = cell.init_state(B)
y_true = torch.randn(B, T, 2)
m, y_prev = state
for t in range(T):
    y_t, state = cell(x[:, t], state)
    m = 0.5 * m + y_prev
    hidden = torch.tanh(
        x[:, t] @ cell.weight_ih.T + cell.bias_ih + m @ cell.weight_mh.T + cell.bias_mh
    )
    torch.testing.assert_close(y_t, hidden @ cell.weight_ho.T + cell.bias_ho)
    state = cell.teacher_force(state, y_true[:, t])  # open loop: feed back the truth
    y_prev = y_true[:, t]
print("Jordan: 5 teacher-forced steps equal the formula")
