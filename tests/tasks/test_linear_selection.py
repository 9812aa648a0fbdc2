"""task.select_linear=origin_backtest: the linear skip's structure chosen by forecasting the end
of the training part from the rest, never the test split."""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.cells import GRUCell, NARXCell
from rnnkit.cli import translate
from rnnkit.data import TimeSeriesDataModule
from rnnkit.errors import ConfigError
from rnnkit.models.arx import LinearARX
from rnnkit.models.forecaster import narx_forecaster, rnn_forecaster
from rnnkit.tasks import ForecastingTask
from rnnkit.tasks.linear_selection import candidates, select_linear
from tests.helpers import LightningTrainer

M = 6  # the season
PATTERN = np.array([0.0, 3.0, 5.0, 2.0, -1.0, -4.0])


def seasonal_csv(path: Path, test_values=None, n: int = 120, seed: int = 0) -> str:
    """A pure seasonal series (period M) with small noise; its last 24 rows are the test."""
    rng = np.random.default_rng(seed)
    y = 10 + PATTERN[np.arange(n) % M] + 0.1 * rng.standard_normal(n)
    if test_values is not None:
        y[-24:] = test_values
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t", "y"])
        writer.writerows([t, f"{v:.6f}"] for t, v in enumerate(y))
    return str(path)


def datamodule(path: str) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(
        path, ["y"], time_column="t", window=2 * M, horizon=2, test_size=24, val_size=0,
        season=M, batch_size=16,
    )  # fmt: skip
    dm.setup("fit")
    return dm


def narx(seasonal_lags=()):
    torch.manual_seed(0)
    cell = functools.partial(NARXCell, input_delays=1, output_delays=1)
    return narx_forecaster(cell, 0, 1, hidden_size=4, seasonal_lags=list(seasonal_lags))


def task_for(model, dm, **kwargs):
    return ForecastingTask(
        model,
        functools.partial(torch.optim.Adam, lr=1e-3),
        window=dm.info["window"],
        horizon=dm.info["horizon"],
        **{key: dm.info[key] for key in ForecastingTask.data_state},
        plot=False,
        **kwargs,
    )


def test_the_candidates_are_the_documented_set_within_the_window():
    linear = LinearARX(0, 1, input_delays=1, output_delays=2, seasonal_lags=[12, 13])
    assert candidates(linear, season=12, window=24) == [
        ((12, 13), True), ((12, 13), False), ((), True), ((), False),
        ((12, 24), True), ((12, 24), False),
    ]  # fmt: skip
    # lags 1 .. K are read anyway (lag 2 of [2, 3] is one): no duplicates; nothing past W
    linear = LinearARX(0, 1, input_delays=1, output_delays=2, intercept=False)
    assert candidates(linear, season=2, window=3) == [
        ((), False), ((), True), ((3,), False), ((3,), True),
    ]  # fmt: skip
    assert candidates(linear, season=1, window=3) == [((), False), ((), True)]


def test_the_backtest_holds_out_the_end_of_the_training_part_and_drops_the_test(tmp_path):
    dm = datamodule(seasonal_csv(tmp_path / "s.csv"))
    view = dm.backtest()
    assert len(view.series[0].targets) == 96  # the rows before the first test row
    assert view.splits[0] == ["train"] * 72 + ["test"] * 24  # h = the test span's 24 rows
    np.testing.assert_array_equal(view.series[0].targets, dm.series[0].targets[:96])
    assert view.spans("test") == [(0, 72 - 2 * M, 96)]
    assert dm.splits[0].count("test") == 24 and len(dm.series[0].targets) == 120  # untouched
    # the scaler is the view's own training rows'
    train = dm.series[0].targets[:72, 0]
    np.testing.assert_allclose(view.scaler.shift[0], [train.mean()])


def test_a_pure_seasonal_series_picks_seasonal_lags_and_the_fit_uses_them(tmp_path):
    dm = datamodule(seasonal_csv(tmp_path / "s.csv"))
    model = narx()
    task = task_for(model, dm, select_linear="origin_backtest")
    trainer = LightningTrainer(
        max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(task, datamodule=dm)
    assert M in model.linear.output_lags  # y_{t-6}: the season
    # refitted on the whole training part with the chosen structure
    expected = LinearARX(
        0, 1, 1, 1, seasonal_lags=model.linear.seasonal_lags,
        intercept=model.linear.has_intercept,
    ).fit(dm.split_arrays("train"))  # fmt: skip
    torch.testing.assert_close(model.linear.weight, expected.weight)
    # the seasonal AR(1) alone forecasts the 2-season test span far better than an AR(1)
    scores = dict(select_linear(narx().linear, dm, task.to_data_units))
    assert scores[(), True] > 5 * min(scores[(M, M + 1), True], scores[(M, 2 * M), True])


def test_the_choice_never_reads_the_test_split(tmp_path):
    rng = np.random.default_rng(1)
    a = datamodule(seasonal_csv(tmp_path / "a.csv"))
    b = datamodule(seasonal_csv(tmp_path / "b.csv", test_values=1e3 * rng.standard_normal(24)))
    assert not np.allclose(a.series[0].targets, b.series[0].targets)
    linear_a, linear_b = narx().linear, narx().linear
    scores_a = select_linear(linear_a, a, task_for(narx(), a).to_data_units)
    scores_b = select_linear(linear_b, b, task_for(narx(), b).to_data_units)
    assert scores_a == scores_b and len(scores_a) == 6
    assert linear_a.output_lags == linear_b.output_lags


def test_the_chosen_structure_survives_a_checkpoint(tmp_path):
    dm = datamodule(seasonal_csv(tmp_path / "s.csv"))
    model = narx()
    model.linear.set_structure([M, 2 * M], intercept=False)
    model.fit_linear(dm.split_arrays("train"))
    fresh = narx()  # built from the config: no seasonal lags, an intercept
    fresh.load_state_dict(model.state_dict())
    assert fresh.linear.output_lags == [1, M, 2 * M] and not fresh.linear.has_intercept
    torch.testing.assert_close(fresh.linear.weight, model.linear.weight)
    # a checkpoint from before the structure was saved loads as built from the config
    old = {k: v for k, v in narx().state_dict().items() if not k.endswith(("lags", "intercept"))}
    built = narx()
    built.load_state_dict(old)
    assert built.linear.output_lags == [1] and built.linear.has_intercept


@pytest.mark.parametrize(
    ("model", "value", "message"),
    [
        (narx, "aic", r"^task\.select_linear: expected null or origin_backtest, got 'aic'$"),
        (
            lambda: rnn_forecaster(
                functools.partial(GRUCell), 0, 1, window=4, horizon=2, hidden_size=4
            ),
            "origin_backtest",
            r"^task\.select_linear: it chooses the linear skip of model=forecast_narx",
        ),
    ],
)
def test_a_bad_select_linear_is_one_config_error_line(model, value, message):
    with pytest.raises(ConfigError) as info:
        ForecastingTask(model(), functools.partial(torch.optim.Adam), select_linear=value)
    line = str(translate(info.value))
    assert "\n" not in line
    assert re.match(message, line), line
