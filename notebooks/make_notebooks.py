"""Write the tutorial notebooks from the cell sources below: `python notebooks/make_notebooks.py`.

The notebooks are generated, committed without outputs, and executed by
``tests/test_notebooks.py`` (which also checks that they match this file). Edit here, then
rerun this script; never edit the ``.ipynb`` files by hand. Every notebook asserts what it
shows, so a change that breaks the story fails the tests.
"""

# ruff: noqa: E501  (notebook cells are written as they read in Jupyter)
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return ("markdown", text.strip("\n"))


def code(text: str):
    return ("code", text.strip("\n"))


CELLS_BY_HAND = [
    md(r"""
# 01 · Cells by hand

Every rnnkit cell is one small module with one contract: `forward(x_t, state) -> (out_t, new_state)`.
Here we build each cell, step it through a short sequence ourselves, and check every number
against `torch.nn` (same parameter names, shapes and gate order, so the weights load as they are)
and against the update equations written out by hand.
"""),
    code(r"""
import torch
from torch import nn

import rnnkit
from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell

_ = torch.manual_seed(0)
B, T, F, H = 2, 5, 3, 4
x = torch.randn(B, T, F)
"""),
    md(r"""
## Elman (simple RNN)

$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$. The cell returns `(h_t, h_t)`: its output
*is* its state.
"""),
    code(r"""
cell = ElmanCell(F, H)
ref = nn.RNNCell(F, H)
ref.load_state_dict(cell.state_dict())  # same names and shapes: loads as-is

h = cell.init_state(B)
h_ref = torch.zeros(B, H)
for t in range(T):
    out, h_next = cell(x[:, t], h)
    by_hand = torch.tanh(x[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh)
    h_ref = ref(x[:, t], h_ref)
    torch.testing.assert_close(out, by_hand)
    torch.testing.assert_close(out, h_ref)
    assert out is h_next
    h = h_next
print("Elman: 5 steps equal nn.RNNCell and the formula; h_T[0] =", h[0])
"""),
    md(r"""
## LSTM

Gates in torch's order $(i, f, g, o)$: $c_t = f_t \odot c_{t-1} + i_t \odot g_t$, $h_t = o_t \odot \tanh(c_t)$.
The state is the pair $(h_t, c_t)$.
"""),
    code(r"""
cell = LSTMCell(F, H)
ref = nn.LSTMCell(F, H)
ref.load_state_dict(cell.state_dict())

state = cell.init_state(B)
state_ref = (torch.zeros(B, H), torch.zeros(B, H))
for t in range(T):
    out, state_next = cell(x[:, t], state)
    h, c = state
    i, f, g, o = (x[:, t] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh).chunk(4, -1)
    c_hand = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h_hand = o.sigmoid() * c_hand.tanh()
    state_ref = ref(x[:, t], state_ref)
    torch.testing.assert_close(state_next, (h_hand, c_hand))
    torch.testing.assert_close(state_next, state_ref)
    state = state_next
print("LSTM: 5 steps equal nn.LSTMCell and the formula; forget gate at the last step:", f.sigmoid()[0])
"""),
    md(r"""
## GRU

$r_t, z_t$ gates, candidate $n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))$,
$h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$ (torch applies the reset *after* $W_{hn}$, and so do we).
"""),
    code(r"""
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
"""),
    md(r"""
## From a cell to a layer, and back to `torch.nn`

`Recurrent` unrolls a cell over time; `rnnkit.from_torch` turns a `torch.nn.LSTM` (any number of
layers, bidirectional) into rnnkit layers with the same weights and the same interface.
"""),
    code(r"""
torch_lstm = nn.LSTM(F, H, num_layers=2, bidirectional=True, batch_first=True)
ours = rnnkit.from_torch(torch_lstm)
out_ref, (h_n_ref, c_n_ref) = torch_lstm(x)
out, (h_n, c_n) = ours(x)
torch.testing.assert_close(out, out_ref)
torch.testing.assert_close(h_n, h_n_ref)
torch.testing.assert_close(c_n, c_n_ref)
print(ours.stack)
print("2-layer bidirectional LSTM: outputs and final states equal torch's", tuple(out.shape))
"""),
    md(r"""
## Jordan: memory from the output

A Jordan cell remembers its own previous *output* $y_{t-1}$ (not its hidden layer) in memory units
$m_t = \mu\, m_{t-1} + y_{t-1}$. There is no `torch.nn` counterpart, so we check it against the
formula. In **closed loop** the cell feeds back its own predictions; with `teacher_force` (open
loop) it feeds back the true outputs instead.
"""),
    code(r"""
cell = JordanCell(F, H, output_size=2, memory_decay=0.5)
state = cell.init_state(B)
y_true = torch.randn(B, T, 2)
m, y_prev = state
for t in range(T):
    y_t, state = cell(x[:, t], state)
    m = 0.5 * m + y_prev
    hidden = torch.tanh(x[:, t] @ cell.weight_ih.T + cell.bias_ih + m @ cell.weight_mh.T + cell.bias_mh)
    torch.testing.assert_close(y_t, hidden @ cell.weight_ho.T + cell.bias_ho)
    state = cell.teacher_force(state, y_true[:, t])  # open loop: feed back the truth
    y_prev = y_true[:, t]
print("Jordan: 5 teacher-forced steps equal the formula")
"""),
]


BPTT_AND_VANISHING = [
    md(r"""
# 02 · Backpropagation through time, and vanishing gradients

1. `rnnkit.bptt.elman_bptt` writes BPTT for an Elman network out by hand, one line per equation;
   we check every gradient against autograd.
2. The gradient that reaches step $t$ from a loss at the end, $\lVert dL/dh_t \rVert$, shrinks
   geometrically with the distance for a tanh RNN; an LSTM's cell state carries it back. We measure
   it with `rnnkit.diagnostics.HiddenGradProbe`, the same code the `GradientFlow` training callback
   uses, and draw it with `rnnkit.plots.plot_gradient_flow`.
"""),
    code(r"""
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
"""),
    md(r"""
## BPTT by hand against autograd

An Elman cell with a softmax head and a cross-entropy loss at every step. The hand-written
backward pass walks from $t = T$ down to 1, carrying $\partial L/\partial h_t$ back through
$W_{hh}^\top$ and $\tanh'$.
"""),
    code(r"""
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
"""),
    md(r"""
## Vanishing gradients: tanh RNN against LSTM

Adding-problem inputs: $T = 60$ steps of (random value, marker). The loss depends only on the
last output, so everything the early steps receive has travelled back through the recurrence.
Both networks are untrained; the LSTM starts with a forget-gate bias of 3, so $f_t \approx 0.95$.
"""),
    code(r"""
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
    print(f"{name:9s} |dL/dh_1| = {norms[0]:.2e}  |dL/dh_T| = {norms[-1]:.2e}  ratio {norms[0] / norms[-1]:.2e}")

ratio_rnn, ratio_lstm = rnn[0] / rnn[-1], lstm[0] / lstm[-1]
assert ratio_rnn < 1e-8, "the tanh RNN's gradient should have vanished by t = 1"
assert ratio_lstm > 1e-3, "the LSTM should still carry the gradient back to t = 1"
assert (rnn[1:] >= rnn[:-1]).all(), "for the RNN, the norm shrinks with every step back"
"""),
    code(r"""
out = Path(tempfile.mkdtemp())
path = plot_gradient_flow(
    torch.stack([rnn, lstm]), out / "vanishing.png", train_steps=[0, 1], kind="lines",
    title="||dL/dh_t|| at initialisation: row 0 tanh RNN, row 1 LSTM",
)
assert path.stat().st_size > 1000
display(Image(filename=str(path)))
"""),
    md(r"""
During training the `GradientFlow` callback records the same numbers every N steps:
`python scripts/train.py +experiment=adding_rnn +diagnostics=gradient_flow` writes a heatmap
(time step x training step) into the run directory (see the README).
"""),
]


NARX_OPEN_CLOSED = [
    md(r"""
# 03 · NARX: open loop against closed loop

System identification: a nonlinear system (NARMA-10) is driven by a random input $u_t$; we learn
$y_t$ from the last inputs and outputs with a NARX network
$\hat y_t = f(u_t, \dots, u_{t-10}, \tilde y_{t-1}, \dots, \tilde y_{t-10})$.

- **Open loop** (series-parallel): the delay line holds the *true* past outputs, $\tilde y = y$.
  Training this way is fast and stable; it scores one-step-ahead prediction.
- **Closed loop** (parallel, free run): the delay line holds the network's *own* predictions,
  $\tilde y = \hat y$. This is how a model of the system is used for simulation, and errors
  compound, so the free-run error is the honest one.

The baseline is a linear ARX model with the same lags, fitted by least squares.
"""),
    code(r"""
import tempfile
from functools import partial
from pathlib import Path

import torch
from IPython.display import Image, display

from rnnkit.cells import NARXCell
from rnnkit.data.system_id import narma
from rnnkit.models.arx import LinearARX
from rnnkit.models.forecaster import narx_forecaster
from rnnkit.plots import plot_forecast

torch.set_num_threads(1)  # tiny model: threads cost more than they bring
_ = torch.manual_seed(0)
DELAYS, CONTEXT = 10, 10

u_train, y_train = narma(3000, order=10, seed=0)
u_test, y_test = narma(400, order=10, seed=1)
mean, std = y_train.mean(), y_train.std()  # scaler fitted on the training series only

def as_batch(u, y):
    x = torch.tensor(u, dtype=torch.float32)[None, :, None]  # (1, N, 1)
    return x, torch.tensor((y - mean) / std, dtype=torch.float32)[None, :, None]

U, Y = as_batch(u_train, y_train)
x_test, y_test_n = as_batch(u_test, y_test)
print(f"train {U.shape[1]} steps, test {x_test.shape[1]} steps")
"""),
    md(r"""
## Train open loop

Random windows of 60 steps; the first 10 only fill the delay lines. `model(x, y, context)` runs
the layer with `feedback=y`: every step sees the true previous outputs.
"""),
    code(r"""
model = narx_forecaster(
    partial(NARXCell, input_delays=DELAYS, output_delays=DELAYS),
    input_size=1, output_size=1, hidden_size=16,
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
g = torch.Generator().manual_seed(0)
W = 60
for step in range(600):
    starts = torch.randint(0, U.shape[1] - W, (32,), generator=g).tolist()
    x = torch.cat([U[:, s : s + W] for s in starts])  # (32, W, 1)
    y = torch.cat([Y[:, s : s + W] for s in starts])
    loss = (model(x, y, CONTEXT) - y[:, CONTEXT:]).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final training loss (open loop, scaled units): {loss.item():.4f}")
"""),
    md(r"""
## Evaluate both ways on an unseen series

Both start from the same 10 true steps; after them `one_step` keeps feeding the truth and
`forecast` feeds back its own predictions for all 390 remaining steps.
"""),
    code(r"""
truth = y_test_n[:, CONTEXT:]
mse = lambda pred: (pred - truth).pow(2).mean().item()
with torch.no_grad():
    narx_open = model.one_step(x_test, y_test_n, CONTEXT)
    narx_closed = model.forecast(x_test, y_test_n[:, :CONTEXT])

arx = LinearARX(1, 1, DELAYS, DELAYS).fit([(u_train[:, None], ((y_train - mean) / std)[:, None])])
arx_open = arx.one_step(x_test, y_test_n, CONTEXT)
arx_closed = arx.forecast(x_test, y_test_n[:, :CONTEXT])

results = {
    "NARX open loop": mse(narx_open), "NARX closed loop": mse(narx_closed),
    "ARX open loop": mse(arx_open), "ARX closed loop": mse(arx_closed),
    "predict the mean": truth.var(unbiased=False).item(),
}
for name, value in results.items():
    print(f"{name:18s} MSE {value:.4f}")

assert results["NARX open loop"] < results["NARX closed loop"], "free run should be harder"
assert results["NARX closed loop"] < results["ARX closed loop"], "NARX should beat linear ARX"
assert results["NARX closed loop"] < 0.25 * results["predict the mean"]
"""),
    code(r"""
out = Path(tempfile.mkdtemp())
for name, pred in (("open loop", narx_open), ("closed loop", narx_closed)):
    path = plot_forecast(
        truth[0, :150], pred[0, :150], out / f"{name.replace(' ', '_')}.png",
        context=y_test_n[0, :CONTEXT], title=f"NARX, {name}: NARMA-10 test series (scaled)",
    )
    display(Image(filename=str(path)))
"""),
]


SEQ2SEQ_ATTENTION = [
    md(r"""
# 04 · Sequence to sequence with attention

Transduction: reverse a string, `"cfab" -> "bafc"`. The first output symbol depends on the last
input symbol, so a plain encoder-decoder must squeeze the whole source into one context vector;
with attention the decoder looks back at every source position at every step, and what it looks
at is the alignment (here: the anti-diagonal).

We train the same model with Luong "general" attention and without attention, on the same data.
"""),
    code(r"""
import tempfile
from pathlib import Path

import torch
from IPython.display import Image, display
from torch import nn

from rnnkit.models.seq2seq import build_seq2seq
from rnnkit.plots import plot_attention

torch.set_num_threads(1)  # tiny model: threads cost more than they bring
PAD, BOS, EOS = 0, 1, 2
SYMBOLS = "abcdefgh"
V = 3 + len(SYMBOLS)  # specials, then one index per symbol

def make_batch(n, generator, lo=6, hi=10):
    # n random strings of lo..hi symbols: src (n, S), lengths (n,), tgt (n, S + 2) = <bos> reversed <eos>
    lengths = torch.randint(lo, hi + 1, (n,), generator=generator)
    S = int(lengths.max())
    src, tgt = torch.full((n, S), PAD), torch.full((n, S + 2), PAD)
    for b, L in enumerate(lengths.tolist()):
        s = torch.randint(3, V, (L,), generator=generator)
        src[b, :L] = s
        tgt[b, 0], tgt[b, 1 : L + 1], tgt[b, L + 1] = BOS, s.flip(0), EOS
    return src, lengths, tgt

def text(indices):
    return "".join(SYMBOLS[i - 3] for i in indices if i >= 3)
"""),
    code(r"""
def train(attention):
    torch.manual_seed(0)
    model = build_seq2seq(V, V, embedding_size=16, hidden_size=32, attention=attention,
                          pad_index=PAD, bos_index=BOS, eos_index=EOS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for step in range(400):
        src, lengths, tgt = make_batch(32, g)
        logits, _ = model(src, lengths, tgt[:, :-1])  # teacher forcing: <bos> y_1 .. y_{T-1}
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()

test_src, test_lengths, test_tgt = make_batch(200, torch.Generator().manual_seed(99))

def exact_match(model):
    hyp = model.generate(test_src, test_lengths, max_length=13)  # greedy decoding
    right = [
        hyp.tokens[b, : L + 1].tolist() == test_tgt[b, 1 : L + 2].tolist()
        for b, L in enumerate(test_lengths.tolist())
    ]
    return sum(right) / len(right), hyp

models = {name: train(name) for name in ("general", "none")}
scores = {}
for name, model in models.items():
    scores[name], hyp = exact_match(model)
    print(f"attention={name:8s} exact match on 200 unseen strings: {scores[name]:.1%}")
    if name == "general":
        attended = hyp
assert scores["general"] > 0.8, "attention should learn reversal"
assert scores["general"] > scores["none"] + 0.3, "attention should beat one context vector"
"""),
    md(r"""
## Where does the decoder look?

For output step $t$ of a length-$L$ string the right source position is $L - 1 - t$. Count how
often the attention's largest weight lands there, then draw one example.
"""),
    code(r"""
hits = total = 0
for b, L in enumerate(test_lengths.tolist()):
    for t in range(L):
        hits += int(attended.attention[b, t, :L].argmax()) == L - 1 - t
        total += 1
print(f"attention peaks on the mirrored source position for {hits / total:.1%} of output symbols")
assert hits / total > 0.9

b = 0
L = int(test_lengths[b])
source, output = text(test_src[b, :L].tolist()), text(attended.tokens[b].tolist())
print(f"{source!r} -> {output!r}")
path = plot_attention(
    attended.attention[b, : L + 1, :L], Path(tempfile.mkdtemp()) / "attention.png",
    source_tokens=list(source), target_tokens=list(output) + ["</s>"],
    title="Luong general attention, reversal",
)
display(Image(filename=str(path)))
"""),
]


NOTEBOOKS = {
    "01_cells_by_hand.ipynb": CELLS_BY_HAND,
    "02_bptt_and_vanishing_gradients.ipynb": BPTT_AND_VANISHING,
    "03_narx_open_vs_closed_loop.ipynb": NARX_OPEN_CLOSED,
    "04_seq2seq_attention.ipynb": SEQ2SEQ_ATTENTION,
}


def build(cells) -> nbformat.NotebookNode:
    """A notebook (no outputs, stable cell ids) from ``[(kind, source)]``."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "markdown" else new_code_cell(source)
        cell.id = f"cell-{index:02d}"  # nbformat draws random ids: fix them so files are stable
        nb.cells.append(cell)
    return nb


def render(cells) -> str:
    return nbformat.writes(build(cells)) + "\n"


def main() -> int:
    for name, cells in NOTEBOOKS.items():
        (HERE / name).write_text(render(cells))
        print(HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
