"""CSV time-series loading, train-only scaling, splits and windows, loader errors, NARMA."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnkit.data.system_id import NARMADataModule, narma
from rnnkit.data.timeseries import TimeSeriesDataModule, read_series_csv
from rnnkit.errors import (
    DataFileNotFoundError,
    DataFormatError,
    EmptyDataError,
    NonFiniteValueError,
    SequenceLengthError,
)


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def all_windows(loader):
    return [(x, y, ids) for x, _, y, ids in loader]


def test_scaler_is_fitted_on_train_rows_only_and_inverts_exactly(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.normal(5.0, 2.0, size=100)
    u = rng.normal(-1.0, 0.5, size=100)
    path = write_csv(
        tmp_path / "a.csv", ["date", "y", "u"], [(f"d{i}", y[i], u[i]) for i in range(100)]
    )
    dm = TimeSeriesDataModule(
        path, ["y"], ["u"], date_column="date", window=4, val_fraction=0.2, test_fraction=0.2
    )
    dm.setup("fit")
    # CSV text round-trips the floats exactly (repr), so the statistics are the train rows'
    np.testing.assert_allclose(dm.target_scaler.mean, [y[:60].mean()], rtol=1e-12)
    np.testing.assert_allclose(dm.target_scaler.std, [y[:60].std()], rtol=1e-12)
    np.testing.assert_allclose(dm.input_scaler.mean, [u[:60].mean()], rtol=1e-12)
    values = rng.normal(size=(7, 1))
    np.testing.assert_allclose(
        dm.target_scaler.inverse_transform(dm.target_scaler.transform(values)), values, rtol=1e-12
    )
    # changing validation and test values leaves the scaler untouched
    y2 = y.copy()
    y2[60:] += 1000.0
    path2 = write_csv(
        tmp_path / "b.csv", ["date", "y", "u"], [(f"d{i}", y2[i], u[i]) for i in range(100)]
    )
    dm2 = TimeSeriesDataModule(
        path2, ["y"], ["u"], date_column="date", window=4, val_fraction=0.2, test_fraction=0.2
    )
    dm2.setup("fit")
    assert dm2.target_scaler.mean == dm.target_scaler.mean
    # the scaled windows undo to the file's values
    x, yw, _ = all_windows(dm.train_dataloader())[0]
    restored = dm.target_scaler.inverse_transform(yw.double().numpy().reshape(-1, 1))
    assert np.isin(np.round(restored, 4), np.round(y, 4)).all()


def test_state_dict_is_plain_data_and_restores_the_scaler(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["y"], [(float(i) ** 1.5,) for i in range(60)])
    dm = TimeSeriesDataModule(path, ["y"], window=3)
    dm.setup("fit")
    state = json.loads(json.dumps(dm.state_dict()))  # JSON-able
    # a new module restored from it uses the saved numbers, not a refit
    state["target_scaler"]["mean"] = [123.0]
    other = TimeSeriesDataModule(path, ["y"], window=3)
    other.load_state_dict(state)
    other.setup("fit")
    assert other.target_scaler.mean == [123.0]
    assert other.info["target_mean"] == [123.0]


def test_chronological_split_windows_belong_to_their_split(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["y"], [(i,) for i in range(100)])
    dm = TimeSeriesDataModule(
        path,
        ["y"],
        window=5,
        horizon=2,
        val_fraction=0.15,
        test_fraction=0.15,
        scale=False,
        batch_size=1000,
    )
    dm.setup("fit")
    assert dm.splits[0] == ["train"] * 70 + ["val"] * 15 + ["test"] * 15

    def rows(loader):
        ((x, y, _),) = all_windows(loader)
        return y[..., 0]  # (N, W + H): the row index, since y_t = t

    train, val = rows(dm.train_dataloader()), rows(dm.val_dataloader())
    test = rows(dm.test_dataloader()[0])
    assert train.max() == 69 and train.shape == (70 - 7 + 1, 7)  # wholly in train
    assert val[:, 5:].min() == 70 and val[:, 5:].max() == 84  # forecast rows in val
    assert val[0, 0] == 65  # context reaches back into train
    assert test[:, 5:].min() == 85 and test[-1, -1] == 99
    # consecutive rows inside every window
    assert torch.equal(torch.diff(train, dim=1), torch.ones_like(train[:, 1:]))
    # the free-run span: test rows 85..99 after 5 real context rows
    ((xs, _, ys, _),) = list(dm.test_dataloader()[1])
    assert ys[0, :, 0].tolist() == [float(i) for i in range(80, 100)]


def test_split_column_is_used_and_train_windows_never_see_other_splits(tmp_path):
    labels = ["train"] * 30 + ["test"] * 10 + ["train"] * 30 + ["val"] * 10 + ["test"] * 10
    path = write_csv(tmp_path / "a.csv", ["y", "split"], [(i, s) for i, s in enumerate(labels)])
    dm = TimeSeriesDataModule(
        path, ["y"], split_column="split", window=4, scale=False, batch_size=1000
    )
    dm.setup("fit")
    assert dm.splits[0] == labels
    ((x, y, _),) = all_windows(dm.train_dataloader())
    for window in y[..., 0].long().tolist():
        assert all(labels[r] == "train" for r in window)
    ((x, y, _),) = all_windows(dm.test_dataloader()[0])
    assert sorted({labels[r] for r in y[:, 4:, 0].long().flatten().tolist()}) == ["test"]
    assert len(y) == 20  # 10 + 10 test rows, each one window
    assert len(dm.free_run_spans("test")) == 2


def test_series_id_windows_never_cross_series_and_one_model_sees_all(tmp_path):
    rows = [("a", i) for i in range(40)] + [("b", 1000 + i) for i in range(30)]
    rows = rows[::2] + rows[1::2]  # interleave rows of both series in the file
    rows.sort(key=lambda r: r[1] % 1000)  # time order within each series is kept
    path = write_csv(tmp_path / "a.csv", ["series_id", "y"], rows)
    dm = TimeSeriesDataModule(
        path, ["y"], series_column="series_id", window=3, horizon=2, scale=False, batch_size=1000
    )
    dm.setup("fit")
    assert [s.name for s in dm.series] == ["a", "b"]
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()[0]):
        ((x, y, _),) = all_windows(loader)
        y = y[..., 0]
        same = (y >= 1000).all(dim=1) | (y < 1000).all(dim=1)
        assert same.all()
        assert torch.equal(torch.diff(y, dim=1), torch.ones_like(y[:, 1:]))
        assert (y >= 1000).any() and (y < 1000).any()  # both series in every split
    # the scaler is global: fitted on the training rows of both series
    dm2 = TimeSeriesDataModule(path, ["y"], series_column="series_id", window=3, horizon=2)
    dm2.setup("fit")
    train_rows = list(range(28)) + [1000 + i for i in range(22)]  # 40 - 6 - 6, 30 - 4 - 4
    assert dm2.target_scaler.mean[0] == pytest.approx(np.mean(train_rows))
    # MASE scale: persistence steps within a series only (each step is 1, never 1000 - 39)
    assert dm2.info["mase_scale"] == [pytest.approx(1.0)]


def test_describe_names_series_and_dates(tmp_path):
    path = write_csv(
        tmp_path / "a.csv", ["when", "y"], [(f"2020-{i:02d}", i) for i in range(1, 21)]
    )
    dm = TimeSeriesDataModule(
        path, ["y"], date_column="when", window=3, horizon=2, val_fraction=0.2, test_fraction=0.2
    )
    dm.setup("fit")
    assert dm.describe("test", 0) == ("a", ["2020-17", "2020-18"])


@pytest.mark.parametrize(
    "text, error, parts",
    [
        (None, DataFileNotFoundError, ["missing.csv", "not found"]),
        ("", EmptyDataError, ["data.csv", "empty"]),
        ("y,u\n", EmptyDataError, ["data.csv", "no data rows"]),
        ("z,u\n1,2\n", DataFormatError, ["data.csv:1:", "'y'"]),
        ("y,u\n1,2\n3,abc\n", DataFormatError, ["data.csv:3:", "'u'", "'abc'", "number"]),
        ("y,u\n1,2\nnan,2\n", NonFiniteValueError, ["data.csv:3:", "'y'", "finite"]),
        ("y,u\n1,2\n2,inf\n", NonFiniteValueError, ["data.csv:3:", "'u'", "finite"]),
        ("y,u\n1,2\n2\n", DataFormatError, ["data.csv:3:", "expected 2 cells"]),
    ],
)
def test_loader_errors_name_file_line_column(tmp_path, text, error, parts):
    path = tmp_path / ("missing.csv" if text is None else "data.csv")
    if text is not None:
        path.write_text(text)
    with pytest.raises(error) as info:
        read_series_csv(path, ["y"], ["u"])
    for part in parts:
        assert part in str(info.value)


def test_bad_split_value_and_short_series_are_clear_errors(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["y", "split"], [(1, "train"), (2, "tset")])
    with pytest.raises(DataFormatError, match=r"s\.csv:3: column 'split' is 'tset'"):
        read_series_csv(path, ["y"], split_column="split")
    path = write_csv(tmp_path / "short.csv", ["y"], [(i,) for i in range(10)])
    with pytest.raises(SequenceLengthError, match=r"horizon=12 is longer than series 'short'"):
        TimeSeriesDataModule(path, ["y"], window=2, horizon=12).setup("fit")
    with pytest.raises(SequenceLengthError, match=r"10 rows, fewer than window \+ horizon"):
        TimeSeriesDataModule(path, ["y"], window=8, horizon=3).setup("fit")


def test_narma_is_seeded_and_follows_its_recurrence():
    u, y = narma(300, order=10, seed=3)
    u2, y2 = narma(300, order=10, seed=3)
    assert np.array_equal(y, y2) and not np.array_equal(y, narma(300, 10, seed=4)[1])
    assert u.min() >= 0.0 and u.max() <= 0.5
    for t in range(20, 40):
        expected = 0.3 * y[t] + 0.05 * y[t] * y[t - 9 : t + 1].sum() + 1.5 * u[t - 9] * u[t] + 0.1
        assert y[t + 1] == pytest.approx(expected, rel=1e-12)
    dm = NARMADataModule(length=300, num_series=2, window=12)
    dm.setup("fit")
    assert dm.info["input_size"] == 1 and dm.info["output_size"] == 1
    assert [s.name for s in dm.series] == ["narma10_0", "narma10_1"]
