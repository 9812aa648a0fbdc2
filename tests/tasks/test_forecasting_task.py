"""ForecastingTask: MASE and persistence on a hand-made series, units, free run, ARX, outputs."""

from __future__ import annotations

import functools
import math

import lightning as L
import pytest
import torch
from torch import nn

from rnnkit.cells import NARXCell
from rnnkit.data.system_id import NARMADataModule
from rnnkit.data.timeseries import TimeSeriesDataModule
from rnnkit.models.forecaster import narx_forecaster
from rnnkit.tasks.forecasting import ForecastingTask

TRAIN = [0, 2] * 5  # in-sample persistence MAE: exactly 2
VAL = [1, 1, 1, 1, 1]
TEST = [3, 5, 4, 8, 8]


class ZeroForecaster(nn.Module):
    """Forecasts 0 (in scaled units) for every step."""

    input_size, output_size = 0, 1

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x, y, context):
        return self.forecast(x, y[:, :context])

    def forecast(self, x, y_context):
        return x.new_zeros(x.shape[0], x.shape[1] - y_context.shape[1], 1)

    def one_step(self, x, y, context):
        return self.forecast(x, y[:, :context])


def hand_made(tmp_path, scale):
    path = tmp_path / "hand.csv"
    rows = [f"{2000 + i},{v}" for i, v in enumerate(TRAIN + VAL + TEST)]
    path.write_text("year,y\n" + "\n".join(rows) + "\n")
    dm = TimeSeriesDataModule(
        path,
        ["y"],
        date_column="year",
        window=2,
        horizon=1,
        val_fraction=0.25,
        test_fraction=0.25,
        scale=scale,
    )
    dm.setup("fit")
    return dm


def make_task(model, info, **kwargs):
    return ForecastingTask(
        model,
        functools.partial(torch.optim.Adam, lr=1e-3),
        window=info["window"],
        horizon=info["horizon"],
        target_names=info["target_names"],
        target_mean=info["target_mean"],
        target_std=info["target_std"],
        mase_scale=info["mase_scale"],
        **kwargs,
    )


def run_test(task, dm, tmp_path):
    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.test(task, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_mase_and_persistence_on_a_hand_made_series(tmp_path):
    dm = hand_made(tmp_path, scale=False)
    assert dm.info["mase_scale"] == [2.0]
    m = run_test(make_task(ZeroForecaster(), dm.info, plot=False), dm, tmp_path)
    # windows: each test row from the 2 rows before it; persistence = the row before
    # targets 3 5 4 8 8, previous rows 1 3 5 4 8 -> errors 2 2 1 4 0
    assert m["test/persistence_mae"] == pytest.approx(9 / 5)
    assert m["test/persistence_rmse"] == pytest.approx(math.sqrt(25 / 5))
    assert m["test/persistence_mase"] == pytest.approx(9 / 5 / 2)
    # the zero forecast: errors 3 5 4 8 8
    assert m["test/mae"] == pytest.approx(28 / 5)
    assert m["test/rmse"] == pytest.approx(math.sqrt(178 / 5))
    assert m["test/mase"] == pytest.approx(28 / 5 / 2)
    # free run over the whole test span: persistence holds the last context row (1)
    assert m["test/free_run_persistence_mae"] == pytest.approx(23 / 5)
    assert m["test/free_run_persistence_mase"] == pytest.approx(23 / 10)
    assert m["test/free_run_mae"] == pytest.approx(28 / 5)
    assert m["test/one_step_mase"] == pytest.approx(28 / 10)


def test_metrics_are_in_the_data_units(tmp_path):
    dm = hand_made(tmp_path, scale=True)
    mean = sum(TRAIN) / len(TRAIN)  # the scaled forecast 0 is the training mean, 1
    assert dm.info["target_mean"] == [pytest.approx(mean)]
    m = run_test(make_task(ZeroForecaster(), dm.info, plot=False), dm, tmp_path)
    assert m["test/mae"] == pytest.approx(sum(abs(v - mean) for v in TEST) / 5, rel=1e-6)
    assert m["test/persistence_mae"] == pytest.approx(9 / 5, rel=1e-6)


def test_narx_task_trains_logs_arx_plots_and_predicts_readably(tmp_path):
    torch.manual_seed(0)
    dm = NARMADataModule(length=400, window=4, horizon=3, batch_size=16)
    dm.setup("fit")
    info = dm.info
    model = narx_forecaster(
        functools.partial(NARXCell, input_delays=2, output_delays=2),
        info["input_size"],
        info["output_size"],
        hidden_size=4,
    )
    task = make_task(model, info, arx_input_delays=2, arx_output_delays=2)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=dm)
    assert "train/loss" in trainer.callback_metrics and "val/mase" in trainer.callback_metrics
    trainer.test(task, datamodule=dm, verbose=False)
    m = trainer.callback_metrics
    for key in (
        "test/rmse",
        "test/one_step_rmse",
        "test/free_run_rmse",
        "test/free_run_persistence_rmse",
        "test/arx_rmse",
        "test/arx_one_step_rmse",
        "test/arx_free_run_rmse",
    ):
        assert torch.isfinite(m[key]), key
    assert (tmp_path / "test_free_run.png").stat().st_size > 0
    assert (tmp_path / "test_one_step.png").stat().st_size > 0
    # the ARX baseline was fitted on the training rows (least squares, not left at zero)
    assert task.arx.weight.abs().sum() > 0
    out = trainer.predict(task, datamodule=dm)
    first = out[0][0]
    assert first["series"] == "narma10_0"
    assert first["steps"] == [str(i) for i in range(340, 343)]  # rows 340..342 of the series
    assert list(first["forecast"]) == ["y"] and len(first["forecast"]["y"]) == 3
    # forecasts are in the data's units (NARMA-10 lives around 0.2..1), not scaled
    values = torch.tensor(first["forecast"]["y"])
    assert ((values > -1.0) & (values < 2.0)).all()


def test_task_checks_sizes_against_the_model():
    with pytest.raises(ValueError, match="target_mean has 2 entries for 1 targets"):
        ForecastingTask(
            ZeroForecaster(), functools.partial(torch.optim.Adam), target_mean=[0.0, 1.0]
        )


class TrainableZero(ZeroForecaster):
    """The zero forecast, with a gradient path so that it can be trained."""

    def forecast(self, x, y_context):
        return super().forecast(x, y_context) + 0.0 * self.unused


def test_persistence_is_scored_once_per_validation_split_not_every_epoch(tmp_path):
    """The persistence baseline does not depend on the model: validation scores it in the
    first full epoch (never from the partial sanity check) and re-logs that value after."""
    dm = NARMADataModule(length=400, window=4, horizon=3, batch_size=8)
    dm.setup("fit")
    task = make_task(TrainableZero(), dm.info, plot=False)
    seen = []

    class Watch(L.Callback):
        def on_validation_batch_end(self, trainer, module, *args) -> None:
            if not trainer.sanity_checking:
                seen.append(
                    (
                        trainer.current_epoch,
                        module.metrics["val/persistence_mae"].update_count,
                        module.metrics["val/mae"].update_count,
                    )
                )

        def on_validation_epoch_end(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                logged.append(float(trainer.callback_metrics["val/persistence_mae"]))

    logged: list[float] = []
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=1,
        num_sanity_val_steps=1,  # one batch: a wrong cache would hold its value
        callbacks=[Watch()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=dm)
    first = [p for epoch, p, _ in seen if epoch == 0]
    second = [(p, m) for epoch, p, m in seen if epoch == 1]
    assert first[-1] == len(first) > 1  # updated on every batch of the first epoch
    assert all(p == 0 and m > 0 for p, m in second)  # then known: no work, the model still
    assert not task.metrics.wants("val", "persistence_mae")
    (fresh,) = L.Trainer(logger=False, enable_progress_bar=False).validate(
        make_task(ZeroForecaster(), dm.info, plot=False), datamodule=dm, verbose=False
    )
    assert logged[0] == logged[1] == pytest.approx(fresh["val/persistence_mae"])


def test_predictions_read_as_series_step_and_values(tmp_path):
    dm = hand_made(tmp_path, scale=False)
    task = make_task(ZeroForecaster(), dm.info, plot=False)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    predictions = [p for batch in trainer.predict(task, datamodule=dm) for p in batch]
    lines = task.format_predictions(predictions, dm)
    assert len(lines) == len(predictions) == len(TEST)  # one row per window (H = 1)
    assert lines[0] == "hand\t2015\t0"  # the zero forecast in the data's units, row 2015
