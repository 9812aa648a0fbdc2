"""Forecasters: NARX open vs closed loop, free run against hand-written loops, linear ARX."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from rnnkit.cells import GRUCell, NARXCell
from rnnkit.models.arx import DirectARX, LinearARX
from rnnkit.models.forecaster import (
    Forecaster,
    NARXForecaster,
    narx_forecaster,
    rnn_forecaster,
    sliding_window_forecaster,
)

B, I, O, W = 3, 2, 2, 6


def make_narx(input_size=I, closed_loop_training=False):
    torch.manual_seed(0)
    cell = functools.partial(NARXCell, input_delays=3, output_delays=4)
    return narx_forecaster(
        cell,
        input_size,
        O,
        hidden_size=5,
        closed_loop_training=closed_loop_training,
        linear_skip=False,
    ).double()


def test_narx_closed_loop_fed_its_true_outputs_equals_open_loop():
    model = make_narx()
    x = torch.randn(B, W + 9, I, dtype=torch.double)
    context = torch.randn(B, W, O, dtype=torch.double)
    free = model.forecast(x, context)  # closed loop: its own outputs fed back
    # data whose true outputs are exactly what the model predicted: open loop must agree
    y = torch.cat([context, free], dim=1)
    torch.testing.assert_close(model.one_step(x, y, W), free)
    # and on other data the two differ (the test can fail)
    y_other = torch.cat([context, free + 0.1], dim=1)
    assert not torch.allclose(model.one_step(x, y_other, W)[:, 1:], free[:, 1:])


def test_narx_free_run_from_real_initial_conditions_matches_hand_loop():
    model = make_narx()
    cell = model.layer.layers[0].cell
    x = torch.randn(B, W + 8, I, dtype=torch.double)
    y = torch.randn(B, W + 8, O, dtype=torch.double)
    state = cell.init_state(B, dtype=torch.double)
    for t in range(W):  # real initial conditions: the true outputs fill the delay lines
        _, state = cell(x[:, t], state)
        state = cell.teacher_force(state, y[:, t])
    expected = []
    for t in range(W, x.shape[1]):  # then its own predictions
        y_t, state = cell(x[:, t], state)
        expected.append(y_t)
    torch.testing.assert_close(model.forecast(x, y[:, :W]), torch.stack(expected, dim=1))
    # one step ahead: every step from the true past
    state, expected = cell.init_state(B, dtype=torch.double), []
    for t in range(x.shape[1]):
        y_t, state = cell(x[:, t], state)
        state = cell.teacher_force(state, y[:, t])
        expected.append(y_t)
    torch.testing.assert_close(model.one_step(x, y, W), torch.stack(expected[W:], dim=1))


def test_narx_training_mode_open_or_closed_loop():
    x = torch.randn(B, W + 5, I, dtype=torch.double)
    y = torch.randn(B, W + 5, O, dtype=torch.double)
    open_loop, closed_loop = make_narx(), make_narx(closed_loop_training=True)
    torch.testing.assert_close(open_loop(x, y, W), open_loop.one_step(x, y, W))
    torch.testing.assert_close(closed_loop(x, y, W), closed_loop.forecast(x, y[:, :W]))
    # the last step (W + 4) sees x_W only through fed-back predictions (3 input delays):
    # closed loop backpropagates through them (BPTT), open loop feeds back the truth instead
    for model, reaches in ((closed_loop, True), (open_loop, False)):
        x_grad = x.clone().requires_grad_(True)
        model(x_grad, y, W)[:, -1].sum().backward()
        assert bool(x_grad.grad[:, W].abs().sum() > 0) is reaches


def test_narx_without_exogenous_inputs_reads_a_constant():
    model = make_narx(input_size=0)
    x = torch.zeros(B, W + 4, 0, dtype=torch.double)
    y = torch.randn(B, W + 4, O, dtype=torch.double)
    assert model.forecast(x, y[:, :W]).shape == (B, 4, O)
    assert model.one_step(x, y, W).shape == (B, 4, O)


@pytest.mark.parametrize("kind", ["gru", "sliding_window"])
def test_forecaster_free_run_and_one_step_match_hand_loops(kind):
    torch.manual_seed(0)
    H = 2
    if kind == "gru":
        model = rnn_forecaster(GRUCell, I, O, W, H, hidden_size=8).double()
    else:
        model = sliding_window_forecaster(I, O, W, H, hidden_size=8).double()
    T = W + 5  # 5 steps: blocks of 2, 2 and 1 (cut)
    x = torch.randn(B, T, I, dtype=torch.double)
    y = torch.randn(B, T, O, dtype=torch.double)

    def block(xw, yw):
        out, _ = model.encoder(torch.cat([yw, xw], dim=-1))
        return model.head(out[:, -1]).view(B, H, O)

    history = y[:, :W]
    while history.shape[1] < T:
        t = history.shape[1]
        history = torch.cat([history, block(x[:, t - W : t], history[:, t - W : t])], dim=1)
    torch.testing.assert_close(model.forecast(x, y[:, :W]), history[:, W:T])
    expected = torch.stack(
        [block(x[:, t - W : t], y[:, t - W : t])[:, 0] for t in range(W, T)], dim=1
    )
    torch.testing.assert_close(model.one_step(x, y, W), expected)
    # training predicts one direct block of H steps
    assert model(x[:, : W + H], y[:, : W + H], W).shape == (B, H, O)


def test_forecaster_checks_its_inputs():
    model = rnn_forecaster(GRUCell, I, O, W, 1, hidden_size=4)
    with pytest.raises(ValueError, match="context must be"):
        model(torch.zeros(1, 5, I), torch.zeros(1, 5, O), 5)
    with pytest.raises(ValueError, match="needs 6 context rows"):
        model.forecast(torch.zeros(1, 8, I), torch.zeros(1, 3, O))


def test_linear_arx_recovers_a_linear_system_and_free_runs_like_a_hand_loop():
    rng = np.random.default_rng(0)
    n = 400
    u = rng.normal(size=(n, 1))
    y = np.zeros((n, 1))
    for t in range(2, n):  # y_t = 0.5 y_{t-1} - 0.2 y_{t-2} + 0.7 u_t + 0.3 u_{t-1} + 0.1
        y[t] = 0.5 * y[t - 1] - 0.2 * y[t - 2] + 0.7 * u[t] + 0.3 * u[t - 1] + 0.1
    arx = LinearARX(1, 1, input_delays=1, output_delays=2).double().fit([(u, y)])
    torch.testing.assert_close(
        arx.weight, torch.tensor([[0.5, -0.2, 0.7, 0.3, 0.1]], dtype=torch.double)
    )
    x_t, y_t = torch.tensor(u)[None], torch.tensor(y)[None]  # (1, N, 1)
    # an exact model: one step and free run both reproduce the system
    torch.testing.assert_close(arx.one_step(x_t, y_t, 10), y_t[:, 10:])
    torch.testing.assert_close(arx.forecast(x_t, y_t[:, :10]), y_t[:, 10:])
    # free run feeds back its own predictions: a perturbed context propagates
    context = y_t[:, :10] + 1.0
    hand = [context[0, -2, 0].item(), context[0, -1, 0].item()]
    for t in range(10, n):
        hand.append(0.5 * hand[-1] - 0.2 * hand[-2] + 0.7 * u[t, 0] + 0.3 * u[t - 1, 0] + 0.1)
    torch.testing.assert_close(
        arx.forecast(x_t, context)[0, :, 0], torch.tensor(hand[2:], dtype=torch.double)
    )


def make_skip_narx(train_linear=False):
    torch.manual_seed(0)
    cell = functools.partial(NARXCell, input_delays=3, output_delays=4)
    return narx_forecaster(
        cell, I, O, hidden_size=5, linear_skip=True, train_linear=train_linear
    ).double()


def test_narx_linear_skip_starts_as_the_least_squares_arx_on_the_same_delays():
    rng = np.random.default_rng(1)
    u, y = rng.normal(size=(60, I)), rng.normal(size=(60, O))
    model = make_skip_narx()
    model.fit_linear([(u, y)])
    arx = LinearARX(I, O, input_delays=3, output_delays=4).double().fit([(u, y)])
    torch.testing.assert_close(model.linear.weight, arx.weight)
    x_t, y_t = torch.tensor(u)[None], torch.tensor(y)[None]
    # alpha = 0: the model is the linear ARX, open and closed loop
    torch.testing.assert_close(model.one_step(x_t, y_t, W), arx.one_step(x_t, y_t, W))
    torch.testing.assert_close(model.forecast(x_t, y_t[:, :W]), arx.forecast(x_t, y_t[:, :W]))
    # fitted once: a second call (a resumed run) keeps the weights it has
    model.linear.weight.add_(1.0)
    model.fit_linear([(u, y)])
    assert not torch.allclose(model.linear.weight, arx.weight)
    assert bool(model.state_dict()["linear_fitted"])


def test_narx_skip_free_run_feeds_back_the_sum_like_the_native_loop():
    # linear part 0 and alpha 1: the step-by-step closed loop must equal the layer's own loop
    plain, skip = make_narx(), make_skip_narx()
    skip.layer.load_state_dict(plain.layer.state_dict())
    with torch.no_grad():
        skip.correction_scale.fill_(1.0)
    x = torch.randn(B, W + 9, I, dtype=torch.double)
    y = torch.randn(B, W + 9, O, dtype=torch.double)
    torch.testing.assert_close(skip.forecast(x, y[:, :W]), plain.forecast(x, y[:, :W]))
    torch.testing.assert_close(skip.one_step(x, y, W), plain.one_step(x, y, W))
    # with a linear part, what is fed back is the sum: open loop on the model's own
    # forecast reproduces it, and differs from the network alone
    with torch.no_grad():
        skip.linear.weight.normal_(0.0, 0.3)
    free = skip.forecast(x, y[:, :W])
    torch.testing.assert_close(skip.one_step(x, torch.cat([y[:, :W], free], 1), W), free)
    assert not torch.allclose(free, plain.forecast(x, y[:, :W]))


def test_narx_skip_trains_the_correction_and_optionally_the_linear_part():
    x = torch.randn(B, W + 5, I, dtype=torch.double)
    y = torch.randn(B, W + 5, O, dtype=torch.double)
    for train_linear in (False, True):
        model = make_skip_narx(train_linear)
        names = {n for n, p in model.named_parameters()}
        assert ("linear.weight" in names) is train_linear
        (model(x, y, W) - y[:, W:]).pow(2).sum().backward()
        assert model.correction_scale.grad.abs() > 0  # alpha moves first (ReZero)
    with pytest.raises(ValueError, match="the cell's sizes and delays"):
        NARXForecaster(make_narx().layer, I, O, linear=LinearARX(I, O, 1, 1))


def sinusoid(n=80):
    # y_t = 2 cos(w) y_{t-1} - y_{t-2} + const: exactly linear in the last two values
    t = np.arange(n)
    return (np.sin(0.4 * t) + 0.5)[:, None], np.zeros((n, 0))


def test_direct_arx_is_exact_on_a_linear_system_and_forecaster_skip_starts_there():
    y, u = sinusoid()
    H = 3
    direct = DirectARX(0, 1, delays=2, horizon=H).double().fit([(u, y)])
    y_t, x_t = torch.tensor(y)[None], torch.zeros(1, len(y), 0, dtype=torch.double)
    # every block of H from the last two true values is exact (so is its free run)
    torch.testing.assert_close(direct(x_t[:, 30:32], y_t[:, 30:32]), y_t[:, 32 : 32 + H])
    torch.manual_seed(0)
    model = rnn_forecaster(GRUCell, 0, 1, W, H, hidden_size=4, linear_delays=2).double()
    model.fit_linear([(u, y)])
    torch.testing.assert_close(model.linear.weight, direct.weight)
    # alpha = 0: the forecaster is the direct linear forecast, free run and one step
    torch.testing.assert_close(model.forecast(x_t, y_t[:, :W]), y_t[:, W:])
    torch.testing.assert_close(model.one_step(x_t, y_t, W), y_t[:, W:])
    # the network's correction enters once alpha moves, and alpha gets a gradient first
    (model(x_t[:, : W + H], y_t[:, : W + H] + 0.1, W) - 1.0).pow(2).sum().backward()
    assert model.correction_scale.grad.abs() > 0
    with torch.no_grad():
        model.correction_scale.fill_(1.0)
    assert not torch.allclose(model.forecast(x_t, y_t[:, :W]), y_t[:, W:])
    with pytest.raises(ValueError, match="the linear skip must emit"):
        Forecaster(model.encoder, 0, 1, W, H, model.head, DirectARX(0, 1, W + 1, H))


def test_linear_arx_seasonal_lags_recover_a_seasonal_system_and_name_their_columns():
    rng = np.random.default_rng(2)
    n, m = 300, 12
    u, y = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))  # rows before 2m + 1: noise
    for t in range(m + 1, n):  # y_t = 0.4 y_{t-1} + 0.5 y_{t-12} - 0.2 y_{t-13} + 0.3 u_t
        y[t] = 0.4 * y[t - 1] + 0.5 * y[t - m] - 0.2 * y[t - m - 1] + 0.3 * u[t]
    arx = LinearARX(1, 1, 1, 1, seasonal_lags=[m + 1, m]).double()
    assert arx.output_lags == [1, m, m + 1] and arx.memory == m + 1
    arx.fit([(u, y)])
    torch.testing.assert_close(
        arx.weight, torch.tensor([[0.4, 0.5, -0.2, 0.3, 0.0, 0.0]], dtype=torch.double)
    )
    x_t, y_t = torch.tensor(u)[None], torch.tensor(y)[None]
    rows = arx.regressors(x_t, y_t, 20)[0]  # t = 20 + s: y_{t-1}, y_{t-12}, y_{t-13}, u_t, u_{t-1}
    hand = [
        [y[t - 1, 0], y[t - m, 0], y[t - m - 1, 0], u[t, 0], u[t - 1, 0], 1.0]
        for t in range(20, n)
    ]
    torch.testing.assert_close(rows, torch.tensor(hand, dtype=torch.double))
    torch.testing.assert_close(arx.forecast(x_t, y_t[:, :20]), y_t[:, 20:])
    with pytest.raises(ValueError, match="seasonal_lags must be positive"):
        LinearARX(1, 1, 1, 1, seasonal_lags=[0])


def test_linear_arx_without_intercept_and_a_new_structure():
    rng = np.random.default_rng(4)
    n = 200
    u, y = rng.normal(size=(n, 1)), np.zeros((n, 1))
    for t in range(1, n):  # an offset of 5: a model without the intercept cannot fit it
        y[t] = 0.5 * y[t - 1] + 0.3 * u[t] + 5.0 + 0.01 * rng.normal()
    free = LinearARX(1, 1, 1, 1, intercept=False).double().fit([(u, y)])
    assert free.weight.shape == (1, 3) and "intercept=False" in repr(free)
    rows = np.stack([y[:-1, 0], u[1:, 0], u[:-1, 0]], axis=1)  # y_{t-1}, u_t, u_{t-1}; no 1
    expected, *_ = np.linalg.lstsq(rows, y[1:, 0], rcond=None)
    torch.testing.assert_close(free.weight[0], torch.tensor(expected))
    trained = LinearARX(1, 1, 1, 1, trainable=True)
    weight = trained.weight
    trained.set_structure([3], intercept=False)
    assert trained.weight is weight and weight.shape == (1, 4)  # the optimizer's parameter
    assert trained.output_lags == [1, 3] and trained.lags.tolist() == [1, 3]
    assert not trained.intercept and trained.memory == 3


def test_linear_fit_mae_is_the_least_absolute_deviations_solution():
    rng = np.random.default_rng(3)
    u = rng.normal(size=(41, 1))
    y = 2.0 * u + 1.0
    y[::5] += 50.0  # outliers on a fifth of the rows: least squares is pulled, LAD is not
    squares = LinearARX(1, 1, 1, 1).double()
    lad = LinearARX(1, 1, 1, 1).double()
    rows = squares.regressors(torch.tensor(u)[None], torch.tensor(y)[None], 1)[0]
    # reference: the exact line through most rows ([y_{t-1}, u_t, u_{t-1}, 1] -> 0, 2, 0, 1) has
    # the least absolute error of any coefficients near it (LAD's optimum is a vertex)
    squares.fit([(u, y)])
    lad.fit([(u, y)], loss="mae")
    torch.testing.assert_close(
        lad.weight, torch.tensor([[0.0, 2.0, 0.0, 1.0]], dtype=torch.double), atol=1e-4, rtol=0
    )
    assert not torch.allclose(squares.weight, lad.weight, atol=1e-2)
    absolute = (rows @ lad.weight.T - torch.tensor(y)[1:]).abs().sum()
    for step in torch.eye(4, dtype=torch.double) * 1e-3:
        for sign in (1, -1):
            moved = (rows @ (lad.weight + sign * step).T - torch.tensor(y)[1:]).abs().sum()
            assert moved >= absolute - 1e-9
    # one intercept: LAD is the median, least squares the mean
    const = DirectARX(0, 1, delays=1, horizon=1).double()
    values = np.array([[0.0], [0.0], [0.0], [1.0], [3.0], [0.0], [0.0]])
    const.fit([(np.zeros((7, 0)), values)], loss="mae")
    np.testing.assert_allclose(const.weight[0].numpy() @ [0.0, 1.0], 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="loss must be one of"):
        const.fit([(np.zeros((7, 0)), values)], loss="huber")


def test_narx_skip_with_seasonal_lags_needs_them_in_the_context():
    torch.manual_seed(0)
    cell = functools.partial(NARXCell, input_delays=1, output_delays=2)
    model = narx_forecaster(cell, 0, 1, hidden_size=3, linear_skip=True, seasonal_lags=[4, 5])
    assert model.linear.output_lags == [1, 2, 4, 5]
    x, y = torch.zeros(2, 9, 0), torch.randn(2, 9, 1)
    assert model.one_step(x, y, 5).shape == (2, 4, 1)
    assert model.forecast(x, y[:, :5]).shape == (2, 4, 1)
    with pytest.raises(ValueError, match=r"reads 5 past rows .* context of 4 \(data.window\)"):
        model.one_step(x, y, 4)
    with pytest.raises(ValueError, match="seasonal_lags are lags of the linear skip"):
        narx_forecaster(cell, 0, 1, hidden_size=3, linear_skip=False, seasonal_lags=[4])
