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
# # 03 · NARX: open loop against closed loop
#
# System identification: a nonlinear system (NARMA-10) is driven by a random input $u_t$; we learn
# $y_t$ from the last inputs and outputs with a NARX network
# $\hat y_t = f(u_t, \dots, u_{t-10}, \tilde y_{t-1}, \dots, \tilde y_{t-10})$.
#
# - **Open loop** (series-parallel): the delay line holds the *true* past outputs, $\tilde y = y$.
#   Training this way is fast and stable; it scores one-step-ahead prediction.
# - **Closed loop** (parallel, free run): the delay line holds the network's *own* predictions,
#   $\tilde y = \hat y$. This is how a model of the system is used for simulation, and errors
#   compound, so the free-run error is the honest one.
#
# The baseline is a linear ARX model with the same lags, fitted by least squares.

# %%
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

# %% [markdown]
# ## Train open loop
#
# Random windows of 60 steps; the first 10 only fill the delay lines. `model(x, y, context)` runs
# the layer with `feedback=y`: every step sees the true previous outputs.

# %%
model = narx_forecaster(
    partial(NARXCell, input_delays=DELAYS, output_delays=DELAYS),
    input_size=1,
    output_size=1,
    hidden_size=16,
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
g = torch.Generator().manual_seed(0)
W = 60
for _step in range(600):
    starts = torch.randint(0, U.shape[1] - W, (32,), generator=g).tolist()
    x = torch.cat([U[:, s : s + W] for s in starts])  # (32, W, 1)
    y = torch.cat([Y[:, s : s + W] for s in starts])
    loss = (model(x, y, CONTEXT) - y[:, CONTEXT:]).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final training loss (open loop, scaled units): {loss.item():.4f}")

# %% [markdown]
# ## Evaluate both ways on an unseen series
#
# Both start from the same 10 true steps; after them `one_step` keeps feeding the truth and
# `forecast` feeds back its own predictions for all 390 remaining steps.

# %%
truth = y_test_n[:, CONTEXT:]


def mse(pred):
    return (pred - truth).pow(2).mean().item()


with torch.no_grad():
    narx_open = model.one_step(x_test, y_test_n, CONTEXT)
    narx_closed = model.forecast(x_test, y_test_n[:, :CONTEXT])

arx = LinearARX(1, 1, DELAYS, DELAYS).fit([(u_train[:, None], ((y_train - mean) / std)[:, None])])
arx_open = arx.one_step(x_test, y_test_n, CONTEXT)
arx_closed = arx.forecast(x_test, y_test_n[:, :CONTEXT])

results = {
    "NARX open loop": mse(narx_open),
    "NARX closed loop": mse(narx_closed),
    "ARX open loop": mse(arx_open),
    "ARX closed loop": mse(arx_closed),
    "predict the mean": truth.var(unbiased=False).item(),
}
for name, value in results.items():
    print(f"{name:18s} MSE {value:.4f}")

assert results["NARX open loop"] < results["NARX closed loop"], "free run should be harder"
assert results["NARX closed loop"] < results["ARX closed loop"], "NARX should beat linear ARX"
assert results["NARX closed loop"] < 0.25 * results["predict the mean"]

# %%
out = Path(tempfile.mkdtemp())
for name, pred in (("open loop", narx_open), ("closed loop", narx_closed)):
    path = plot_forecast(
        truth[0, :150],
        pred[0, :150],
        out / f"{name.replace(' ', '_')}.png",
        context=y_test_n[0, :CONTEXT],
        title=f"NARX, {name}: NARMA-10 test series (scaled)",
    )
    display(Image(filename=str(path)))
