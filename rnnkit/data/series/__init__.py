"""Forecasting data: reading, splits, transforms and scaling, windows, the DataModule."""

from rnnkit.data.series.datamodule import TimeSeriesDataModule
from rnnkit.data.series.reading import Layout, Series, read_series
from rnnkit.data.series.windowing import ForecastBatch

__all__ = ["ForecastBatch", "Layout", "Series", "TimeSeriesDataModule", "read_series"]
