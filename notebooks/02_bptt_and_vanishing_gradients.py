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
# # 02 · Backpropagation through time, and vanishing gradients
#
# 1. `rnnkit.bptt.elman_bptt` writes BPTT for an Elman network out by hand, one line per equation;
#    we check every gradient against autograd.
# 2. The gradient that reaches step $t$ from a loss at the end, $\lVert dL/dh_t \rVert$, shrinks
#    geometrically with the distance for a tanh RNN; an LSTM's cell state carries it back. We measure
#    it with `rnnkit.diagnostics.HiddenGradProbe`, the same code the `GradientFlow` training callback
#    uses, and draw it with `rnnkit.plots.plot_gradient_flow`.

# %%
import tempfile
from pathlib import Path

import torch
from IPython.display import Image, display
from torch import nn

from rnnkit.bptt import elman_bptt_modules
from rnnkit.cells import ElmanCell, LSTMCell
from rnnkit.diagnostics import HiddenGradProbe
from rnnkit.layers import Recurrent
from rnnkit.plots import plot_gradient_flow

_ = torch.manual_seed(0)

# %% [markdown]
# ## BPTT by hand against autograd
#
# An Elman cell with a softmax head and a cross-entropy loss at every step. The hand-written
# backward pass walks from $t = T$ down to 1, carrying $\partial L/\partial h_t$ back through
# $W_{hh}^\top$ and $\tanh'$.

# %%
B, T, F, H, C = 3, 8, 4, 6, 5
cell = ElmanCell(F, H).double()
head = nn.Linear(H, C).double()
x = torch.randn(B, T, F, dtype=torch.float64)
targets = torch.randint(0, C, (B, T))

loss, grads, grad_h0 = elman_bptt_modules(cell, head, x, targets)

# the same network through autograd
h0 = torch.zeros(B, H, dtype=torch.float64, requires_grad=True)
h, loss_ag = h0, 0.0
for t in range(T):
    h, _ = cell(x[:, t], h)
    loss_ag = loss_ag + nn.functional.cross_entropy(head(h), targets[:, t], reduction="sum")
modules = nn.ModuleDict({"cell": cell, "head": head})
modules.zero_grad()
loss_ag.backward()

torch.testing.assert_close(loss, loss_ag.detach())
for name, p in modules.named_parameters():
    torch.testing.assert_close(grads[name], p.grad, msg=name)
torch.testing.assert_close(grad_h0, h0.grad)
print(f"loss {loss.item():.4f}; all {len(grads)} parameter gradients and dL/dh_0 equal autograd's")

# %% [markdown]
# ## Vanishing gradients: tanh RNN against LSTM
#
# Adding-problem inputs: $T = 60$ steps of (random value, marker). The loss depends only on the
# last output, so everything the early steps receive has travelled back through the recurrence.
# Both networks are untrained; the LSTM starts with a forget-gate bias of 3, so $f_t \approx 0.95$.

# %%
B, T, H = 32, 60, 32
x = torch.stack([torch.rand(B, T), torch.zeros(B, T)], dim=-1)
x[:, [5, T - 10], 1] = 1.0  # the two marked positions
y = (x[..., 0] * x[..., 1]).sum(1)


def grad_flow(cell):
    layer, head = Recurrent(cell), nn.Linear(H, 1)
    with HiddenGradProbe(layer) as probe:
        out, _ = layer(x)
        loss = (head(out[:, -1]).squeeze(-1) - y).pow(2).mean()
        loss.backward()
    return probe.grad_norms()["Recurrent"]  # (T,) batch mean of ||dL/dh_t||


torch.manual_seed(0)
rnn = grad_flow(ElmanCell(2, H))
lstm = grad_flow(LSTMCell(2, H, forget_bias=3.0))
for name, norms in (("tanh RNN", rnn), ("LSTM", lstm)):
    print(
        f"{name:9s} |dL/dh_1| = {norms[0]:.2e}  |dL/dh_T| = {norms[-1]:.2e}  ratio {norms[0] / norms[-1]:.2e}"
    )

ratio_rnn, ratio_lstm = rnn[0] / rnn[-1], lstm[0] / lstm[-1]
assert ratio_rnn < 1e-8, "the tanh RNN's gradient should have vanished by t = 1"
assert ratio_lstm > 1e-3, "the LSTM should still carry the gradient back to t = 1"
assert (rnn[1:] >= rnn[:-1]).all(), "for the RNN, the norm shrinks with every step back"

# %%
out = Path(tempfile.mkdtemp())
path = plot_gradient_flow(
    torch.stack([rnn, lstm]),
    out / "vanishing.png",
    train_steps=[0, 1],
    kind="lines",
    title="||dL/dh_t|| at initialisation: row 0 tanh RNN, row 1 LSTM",
)
assert path.stat().st_size > 1000
display(Image(filename=str(path)))

# %% [markdown]
# During training the `GradientFlow` callback records the same numbers every N steps:
# `python scripts/train.py +experiment=adding_rnn +diagnostics=gradient_flow` writes a heatmap
# (time step x training step) into the run directory (see the README).
