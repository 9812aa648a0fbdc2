"""ForecastingTask starts a model's linear skip from its fit (for the task's loss) on the
training rows."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from rnnkit.cells import NARXCell
from rnnkit.data import TimeSeriesDataModule
from rnnkit.errors import ConfigError
from rnnkit.models.arx import LinearARX
from rnnkit.models.forecaster import narx_forecaster
from rnnkit.tasks import ForecastingTask
from tests.helpers import LightningTrainer

SHAMPOO = Path(__file__).parents[1] / "data" / "fixtures" / "real" / "ShampooSales.csv"


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_fit_start_fits_the_skip_on_the_model_space_training_rows(tmp_path, loss):
    dm = TimeSeriesDataModule(
        str(SHAMPOO), ["Sales"], time_column="Time", window=4, horizon=2, test_size=7,
        val_size=0, difference=1, season=12, batch_size=8,
    )  # fmt: skip
    dm.setup("fit")
    torch.manual_seed(0)
    cell = functools.partial(NARXCell, input_delays=1, output_delays=2)
    model = narx_forecaster(cell, 0, 1, hidden_size=4, linear_skip=True, seasonal_lags=[4])
    task = ForecastingTask(
        model,
        functools.partial(torch.optim.Adam, lr=1e-3),
        window=4,
        horizon=2,
        **{key: dm.info[key] for key in ForecastingTask.data_state},
        plot=False,
        loss=loss,
    )
    assert isinstance(task.loss_fn, torch.nn.L1Loss if loss == "mae" else torch.nn.MSELoss)
    trainer = LightningTrainer(
        max_epochs=1,
        limit_train_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=dm)
    assert bool(model.linear_fitted)
    expected = LinearARX(0, 1, input_delays=1, output_delays=2, seasonal_lags=[4])
    expected.fit(dm.split_arrays("train"), loss)
    torch.testing.assert_close(model.linear.weight, expected.weight)  # frozen: still the fit
    assert model.correction_scale.item() != 0.0  # the correction trained


def test_an_unknown_loss_is_a_config_error():
    cell = functools.partial(NARXCell, input_delays=1, output_delays=2)
    model = narx_forecaster(cell, 0, 1, hidden_size=4)
    with pytest.raises(ConfigError, match=r"task.loss: expected one of \['mse', 'mae'\]"):
        ForecastingTask(model, functools.partial(torch.optim.Adam), loss="mape")


def test_an_arx_baseline_reading_past_the_window_is_a_config_error():
    # lag 13 before a window of 8 rows would read zeros and score a wrong baseline, silently
    cell = functools.partial(NARXCell, input_delays=1, output_delays=2)
    model = narx_forecaster(cell, 0, 1, hidden_size=4)
    with pytest.raises(ConfigError, match=r"reads 13 past rows .* data.window is 8"):
        ForecastingTask(
            model, functools.partial(torch.optim.Adam), window=8,
            arx_input_delays=1, arx_output_delays=2, arx_seasonal_lags=[12, 13],
        )  # fmt: skip
