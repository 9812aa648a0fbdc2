"""ForecastingTask: M4 MASE per series by hand, baselines, evaluations, splits, outputs."""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnnkit.cells import NARXCell
from rnnkit.data.series import TimeSeriesDataModule
from rnnkit.data.system_id import NARMADataModule
from rnnkit.models.forecaster import narx_forecaster, rnn_forecaster
from rnnkit.tasks.forecasting import PER_SERIES_CSV, ForecastingTask
from tests.helpers import LightningTrainer

TRAIN = [0, 2] * 5  # in-sample naive MAE: exactly 2
TEST = [3, 5, 4, 8, 8]


class ZeroForecaster(nn.Module):
    """Forecasts 0 in model space for every step (the training mean when scaled)."""

    input_size = 0

    def __init__(self, output_size: int = 1) -> None:
        super().__init__()
        self.output_size = output_size
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x, y, context):
        return self.forecast(x, y[:, :context])

    def forecast(self, x, y_context):
        zeros = x.new_zeros(x.shape[0], x.shape[1] - y_context.shape[1], self.output_size)
        return zeros + 0.0 * self.unused

    def one_step(self, x, y, context):
        return self.forecast(x, y[:, :context])


class Persistence(ZeroForecaster):
    """Naive forecaster: holds the last context value (free run), or the previous true value
    (one step): its scores must equal the naive baseline's of the same evaluation."""

    def forecast(self, x, y_context):
        return y_context[:, -1:].expand(-1, x.shape[1] - y_context.shape[1], -1) + 0 * self.unused

    def one_step(self, x, y, context):
        return y[:, context - 1 : -1]


def make_task(model, dm, **kwargs):
    info = dm.info
    return ForecastingTask(
        model,
        functools.partial(torch.optim.Adam, lr=1e-3),
        window=info["window"],
        horizon=info["horizon"],
        **ForecastingTask.data_arguments(info),
        **kwargs,
    )


def trainer(tmp_path, **kwargs):
    return LightningTrainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
    )


def run_test(task, dm, tmp_path):
    t = trainer(tmp_path)
    t.test(task, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in t.callback_metrics.items()}


def hand_made(tmp_path, **kwargs):
    path = tmp_path / "hand.csv"
    rows = [f"{2000 + i},{v}" for i, v in enumerate(TRAIN + TEST)]
    path.write_text("year,y\n" + "\n".join(rows) + "\n")
    kwargs = {"window": 2, "test_size": 5, "val_size": 0, "scale": "none", **kwargs}
    dm = TimeSeriesDataModule(path, ["y"], time_column="year", **kwargs)
    dm.setup("fit")
    return dm


def test_mase_and_baselines_on_a_hand_made_series(tmp_path):
    dm = hand_made(tmp_path)
    assert dm.info["mase_scale"] == [2.0]
    m = run_test(make_task(ZeroForecaster(), dm, plot=False), dm, tmp_path)
    # windows of H = 1: each test row from the rows before it; naive = the row before
    # targets 3 5 4 8 8, previous rows 2 3 5 4 8 -> errors 1 2 1 4 0
    assert m["test/naive_mae"] == pytest.approx(8 / 5)
    assert m["test/naive_rmse"] == pytest.approx(math.sqrt(22 / 5))
    assert m["test/naive_mase"] == pytest.approx(8 / 5 / 2)
    # the zero forecast: errors 3 5 4 8 8
    assert m["test/mae"] == pytest.approx(28 / 5)
    assert m["test/mse"] == pytest.approx(178 / 5)
    assert m["test/mase"] == pytest.approx(28 / 5 / 2)
    assert m["test/smape"] == pytest.approx(200.0)
    assert m["test/mape"] == pytest.approx(100.0)
    # origin: the whole test span from its start; naive holds the last value before it (2)
    assert m["test/origin_naive_mae"] == pytest.approx(18 / 5)
    assert m["test/origin_naive_mase"] == pytest.approx(18 / 10)
    assert m["test/origin_mean_mae"] == pytest.approx(23 / 5)  # the training mean is 1
    drift = 2 + (2 - 0) / 9 * np.arange(1, 6)  # y_T + k (y_T - y_1) / (T - 1)
    assert m["test/origin_drift_mae"] == pytest.approx(np.mean(np.abs(TEST - drift)))
    assert m["test/origin_mae"] == pytest.approx(28 / 5)
    assert m["test/one_step_mase"] == pytest.approx(28 / 10)


def test_one_step_and_origin_are_what_their_names_say(tmp_path):
    dm = hand_made(tmp_path, window=3)
    m = run_test(make_task(Persistence(), dm, plot=False), dm, tmp_path)
    for name in ("mae", "rmse", "mase", "smape"):
        assert m[f"test/{name}"] == pytest.approx(m[f"test/naive_{name}"])
        assert m[f"test/one_step_{name}"] == pytest.approx(m[f"test/one_step_naive_{name}"])
        assert m[f"test/origin_{name}"] == pytest.approx(m[f"test/origin_naive_{name}"])
    assert m["test/one_step_mae"] == pytest.approx(8 / 5)  # from the true previous row
    assert m["test/origin_mae"] == pytest.approx(18 / 5)  # from the origin, nothing seen


def test_metrics_undo_the_transforms(tmp_path):
    # a forecast of "no change" in log differences is the naive forecast, in the data's units
    dm = hand_made(tmp_path, window=3, transform="log1p", difference=1)
    assert dm.info["transform"] == "log1p" and dm.info["difference"] == 1
    m = run_test(make_task(ZeroForecaster(), dm, plot=False), dm, tmp_path)
    for evaluation in ("", "origin_"):
        for name in ("mae", "rmse", "mase"):
            assert m[f"test/{evaluation}{name}"] == pytest.approx(
                m[f"test/{evaluation}naive_{name}"], rel=1e-5
            )


def test_per_series_mase_is_the_mean_over_series_not_pooled(tmp_path):
    # two series of very different scales; the zero forecast in "none" scaling
    a = [0, 1] * 6 + [1, 1, 1, 1]  # naive MAE on 12 training rows: 1
    b = [100 * t for t in range(12)] + [1200, 1300, 1400, 1500]  # naive MAE 100
    rows = [f"a,{t},{v}" for t, v in enumerate(a)] + [f"b,{t},{v}" for t, v in enumerate(b)]
    path = tmp_path / "two.csv"
    path.write_text("id,t,y\n" + "\n".join(rows[::-1]) + "\n")  # any row order
    dm = TimeSeriesDataModule(
        path, ["y"], series_column="id", time_column="t", window=2, test_size=4, val_size=0,
        scale="none",
    )  # fmt: skip
    dm.setup("fit")
    m = run_test(make_task(ZeroForecaster(), dm, plot=False), dm, tmp_path)
    mase_a = np.mean(np.abs(a[12:])) / 1.0
    mase_b = np.mean(np.abs(b[12:])) / 100.0
    assert m["test/mase"] == pytest.approx((mase_a + mase_b) / 2)
    pooled_den = (11 * 1 + 11 * 100) / 22
    pooled_mae = np.mean(np.abs(a[12:] + b[12:]))
    assert m["test/mase_pooled"] == pytest.approx(pooled_mae / pooled_den)
    with open(tmp_path / PER_SERIES_CSV) as f:
        table = list(csv.DictReader(f))
    model = {
        r["series"]: r
        for r in table
        if r["forecaster"] == "model" and r["evaluation"] == "windows"
    }
    assert float(model["a"]["mase"]) == pytest.approx(mase_a, rel=1e-5)
    assert float(model["b"]["mase"]) == pytest.approx(mase_b, rel=1e-5)
    assert {r["forecaster"] for r in table} == {
        "model",
        "naive",
        "seasonal_naive",
        "drift",
        "mean",
    }


def test_two_targets_with_a_batch_of_one_window(tmp_path):
    path = tmp_path / "two.csv"
    rng = np.random.default_rng(0)
    path.write_text("y1,y2\n" + "".join(f"{v[0]},{v[1]}\n" for v in rng.normal(size=(40, 2))))
    dm = TimeSeriesDataModule(path, ["y1", "y2"], window=4, horizon=2, test_size=6, batch_size=1)
    dm.setup("fit")
    model = rnn_forecaster(functools.partial(__import__("rnnkit").cells.GRUCell), 0, 2, 4, 2, 3)
    m = run_test(make_task(model, dm, arx_input_delays=1, arx_output_delays=2), dm, tmp_path)
    for key in (
        "test/mae",
        "test/origin_mase",
        "test/one_step_rmse",
        "test/arx_mase",
        "test/naive_mase",
    ):
        assert math.isfinite(m[key]), key
    assert (tmp_path / "test_origin.png").stat().st_size > 0


def test_named_test_splits_and_training_without_validation(tmp_path):
    labels = ["train"] * 40 + ["test1"] * 6 + ["test2"] * 6
    path = tmp_path / "s.csv"
    path.write_text(
        "y,part\n" + "".join(f"{np.sin(i / 3):.4f},{s}\n" for i, s in enumerate(labels))
    )
    dm = TimeSeriesDataModule(path, ["y"], split_column="part", window=4, batch_size=8)
    dm.setup("fit")
    assert not dm.has_validation
    task = make_task(ZeroForecaster(), dm, plot=False)
    t = trainer(tmp_path, max_epochs=1, limit_train_batches=2)
    t.fit(task, datamodule=dm)
    t.test(task, datamodule=dm, verbose=False)
    keys = set(t.callback_metrics)
    for split in ("test1", "test2"):
        assert {f"{split}/mase", f"{split}/origin_mase", f"{split}/naive_mase"} <= keys
    assert not any(k.startswith("test/") for k in keys)


def test_narx_trains_validates_and_baselines_are_cached(tmp_path):
    torch.manual_seed(0)
    dm = NARMADataModule(length=300, window=4, horizon=3, batch_size=16, test_size=0.15)
    dm.setup("fit")
    info = dm.info
    model = narx_forecaster(
        functools.partial(NARXCell, input_delays=2, output_delays=2), 1, 1, hidden_size=4
    )
    task = make_task(model, dm, arx_input_delays=2, arx_output_delays=2, plot=False)
    calls = []
    original = task._baseline_scores
    task._baseline_scores = lambda *a, **k: calls.append(a[1]) or original(*a, **k)
    t = trainer(tmp_path, max_epochs=2, limit_train_batches=2)
    t.fit(task, datamodule=dm)
    assert {"train/loss", "val/loss", "val/mase", "val/naive_mase"} <= set(t.callback_metrics)
    assert calls == ["val"]  # once, not per epoch (nor per batch)
    t.test(task, datamodule=dm, verbose=False)
    assert task.arx.weight.abs().sum() > 0  # fitted by least squares on the training rows
    assert info["input_size"] == 1


def test_predict_writes_forecasts_past_the_end_with_dates(tmp_path):
    path = tmp_path / "shop.csv"
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(30)]
    path.write_text("month,sales\n" + "".join(f"{m},{10 + i}\n" for i, m in enumerate(months)))
    dm = TimeSeriesDataModule(
        path, ["sales"], time_column="month", window=3, horizon=2, predict_steps=4
    )
    dm.setup("fit")
    task = make_task(Persistence(), dm, plot=False)
    batches = trainer(tmp_path).predict(task, datamodule=dm)
    lines = task.format_predictions([p for b in batches for p in b], dm)
    assert lines == [
        "series_id,time,step,forecast",
        "shop,2002-07,1,39",
        "shop,2002-08,2,39",
        "shop,2002-09,3,39",
        "shop,2002-10,4,39",
    ]


def test_predict_needs_future_covariates_and_reads_them(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("t,y,u\n" + "".join(f"{i},{i},{2 * i}\n" for i in range(20)))
    dm = TimeSeriesDataModule(path, ["y"], ["u"], time_column="t", window=3, predict_steps=2)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"data\.future_path: the model reads covariates \['u'\]"):
        dm.predict_dataloader()
    future = tmp_path / "future.csv"
    future.write_text("t,u\n21,42\n22,44\n")
    dm.hparams.future_path = str(future)
    with pytest.raises(ValueError, match=r"future\.csv:2: series 'u': future rows start at '21'"):
        dm.predict_dataloader()
    future.write_text("t,u\n20,40\n21,42\n")
    batch = next(iter(dm.predict_dataloader()))
    scaled = (torch.tensor([40.0, 42.0]) - dm.scaler.input_mean[0, 0]) / dm.scaler.input_std[0, 0]
    torch.testing.assert_close(batch.x[0, 3:, 0], scaled.float())
    assert dm.describe("predict", 0) == ("u", ["20", "21"])


def test_past_only_covariates_are_hidden_after_the_origin(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("t,y,cal,obs\n" + "".join(f"{i},{i % 5},{i % 7},{i * i}\n" for i in range(30)))
    dm = TimeSeriesDataModule(
        path, ["y"], ["cal"], past_input_columns=["obs"], time_column="t", window=4, horizon=2,
        predict_steps=3,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.info["input_size"] == 2
    for loader in (dm.train_dataloader(), *dm.test_dataloader()):
        for batch in loader:
            assert (batch.x[:, 4:, 1] == 0).all() and (batch.x[:, :4, 1] != 0).any()
            assert (batch.x[:, 4:, 0] != 0).any()  # the calendar stays known
    future = tmp_path / "f.csv"
    future.write_text("t,cal\n30,2\n31,3\n32,4\n")  # only the known-future column
    dm.hparams.future_path = str(future)
    batch = next(iter(dm.predict_dataloader()))
    assert batch.x.shape == (1, 7, 2) and (batch.x[0, 4:, 1] == 0).all()


def test_baselines_match_the_reference_scores_on_shampoo_sales(tmp_path):
    """The task's origin and one-step baselines are those of rnnkit.baselines.forecast (the
    numbers of docs/real_data.md) on the whole ShampooSales file: last 7 months test, m = 12."""
    from rnnkit.baselines import forecast

    path = Path(__file__).parents[1] / "data" / "fixtures" / "real" / "ShampooSales.csv"
    dm = TimeSeriesDataModule(
        path, ["Sales"], time_column="Time", season=12, window=6, test_size=7, val_size=3
    )
    dm.setup("fit")
    m = run_test(make_task(ZeroForecaster(), dm, plot=False), dm, tmp_path)
    y = dm.series[0].targets[:, 0]
    reference = forecast.evaluate(y, len(y) - 7, 12)
    for evaluation in ("origin", "one_step"):
        for name in ("naive", "seasonal_naive", "drift", "mean"):
            expected = reference[evaluation][f"{name}_mase"]
            assert m[f"test/{evaluation}_{name}_mase"] == pytest.approx(expected, rel=1e-6)
    assert m["test/origin_naive_mase"] == pytest.approx(1.203, abs=5e-4)  # the docs' table
