"""Forecasting data: layouts, sorting, grid checks, missing values, splits, scaling, windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data.series import Layout, TimeSeriesDataModule, read_series
from rnnkit.data.series.splits import assign_splits
from rnnkit.data.series.transforms import TargetPipeline
from rnnkit.data.system_id import NARMADataModule, narma
from rnnkit.errors import (
    ConfigError,
    DataFileNotFoundError,
    DataFormatError,
    EmptyDataError,
    NonFiniteValueError,
    SequenceLengthError,
)

REAL = Path(__file__).parent / "fixtures" / "real"


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")
    return path


def only_batch(loader):
    (batch,) = list(loader)
    return batch


def test_scaler_is_fitted_per_series_on_train_rows_only(tmp_path):
    rng = np.random.default_rng(0)
    rows = [("a", i, 5 + 2 * rng.normal(), rng.normal()) for i in range(50)]
    rows += [("b", i, 1000 + 50 * rng.normal(), rng.normal()) for i in range(50)]
    path = write_csv(tmp_path / "a.csv", ["id", "t", "y", "u"], rows)
    dm = TimeSeriesDataModule(
        path, ["y"], ["u"], series_column="id", time_column="t", window=4, test_size=10, val_size=5
    )
    dm.setup("fit")
    for k, name in enumerate("ab"):
        y = np.array([r[2] for r in rows if r[0] == name])
        u = np.array([r[3] for r in rows if r[0] == name])
        np.testing.assert_allclose(dm.scaler.shift[k], [y[:35].mean()], rtol=1e-12)
        np.testing.assert_allclose(dm.scaler.scale[k], [y[:35].std()], rtol=1e-12)
        np.testing.assert_allclose(dm.scaler.input_mean[k], [u[:35].mean()], rtol=1e-12)
    batch = next(iter(dm.train_dataloader()))
    # y is the per-series scaled raw; the scaler travels with each window
    np.testing.assert_allclose(
        (batch.y * batch.scale + batch.shift).numpy(), batch.raw.numpy(), rtol=1e-5
    )


def test_state_dict_is_plain_data_and_restores_the_scalers(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["y"], [(float(i) ** 1.5,) for i in range(60)])
    dm = TimeSeriesDataModule(path, ["y"], window=3)
    dm.setup("fit")
    state = json.loads(json.dumps(dm.state_dict()))  # JSON-able
    state["scaler"]["a"]["shift"] = [123.0]  # a restored module uses the saved numbers
    other = TimeSeriesDataModule(path, ["y"], window=3)
    other.load_state_dict(state)
    other.setup("fit")
    assert other.scaler.shift.tolist() == [[123.0]]


def test_default_split_by_size_windows_belong_to_their_split(tmp_path):
    path = write_csv(tmp_path / "a.csv", ["y"], [(i,) for i in range(100)])
    dm = TimeSeriesDataModule(path, ["y"], window=5, horizon=2, scale="none", batch_size=1000)
    dm.setup("fit")  # defaults: last 20 % test, last 10 % of the rest validates
    assert dm.splits[0] == ["train"] * 72 + ["val"] * 8 + ["test"] * 20
    assert dm.has_validation
    train = only_batch(dm.train_dataloader()).raw[..., 0]  # y_t = t: the row index
    val = only_batch(dm.val_dataloader()).raw[..., 0]
    windows, spans = dm.test_dataloader()
    test = only_batch(windows).raw[..., 0]
    assert train.max() == 71 and train.shape == (72 - 7 + 1, 7)
    assert val[:, 5:].min() == 72 and val[:, 5:].max() == 79 and val[0, 0] == 67
    assert test[:, 5:].min() == 80 and test[-1, -1] == 99
    assert torch.equal(torch.diff(train, dim=1), torch.ones_like(train[:, 1:]))
    assert only_batch(spans).raw[0, :, 0].tolist() == [float(i) for i in range(75, 100)]


def test_split_labels_with_named_test_splits_and_no_validation(tmp_path):
    labels = ["train"] * 30 + ["test1"] * 10 + ["train"] * 10 + ["test2"] * 6 + ["test"] * 4
    path = write_csv(tmp_path / "a.csv", ["y", "part"], [(i, s) for i, s in enumerate(labels)])
    dm = TimeSeriesDataModule(
        path, ["y"], split_column="part", window=4, scale="none", batch_size=1000
    )
    dm.setup("fit")
    assert dm.splits[0] == labels  # the file's labels; no validation is carved out of train
    assert dm.test_names == ["test", "test1", "test2"] and not dm.has_validation
    assert dm.val_dataloader() == []
    for window in only_batch(dm.train_dataloader()).raw[..., 0].long().tolist():
        assert all(labels[r] == "train" for r in window)
    assert dm.test_loaders[:2] == [("test", "windows"), ("test", "spans")]
    loaders = dict(zip(dm.test_loaders, dm.test_dataloader(), strict=True))
    rows = only_batch(loaders["test1", "windows"]).raw[:, 4:, 0].long().flatten().tolist()
    assert sorted({labels[r] for r in rows}) == ["test1"] and len(rows) == 10
    assert dm.spans("test2") == [(0, 46, 56)]


def test_val_size_zero_and_k_points_per_series(tmp_path):
    assert assign_splits([None, None], [10, 6], 0.2, 0)[0] == ["train"] * 8 + ["test"] * 2
    splits = assign_splits([None, None], [10, 6], 2, 3)
    assert splits == [
        ["train"] * 5 + ["val"] * 3 + ["test"] * 2,
        ["train"] + ["val"] * 3 + ["test"] * 2,
    ]
    # a separate test file's rows are the test split; the main file's last rows validate
    main = write_csv(tmp_path / "main.csv", ["t", "y"], [(i, i) for i in range(30)])
    test = write_csv(tmp_path / "test.csv", ["t", "y"], [(i, i) for i in range(30, 36)])
    dm = TimeSeriesDataModule(
        main, ["y"], time_column="t", test_path=str(test), val_size=4, window=3, scale="none"
    )
    dm.setup("fit")
    assert dm.splits[0] == ["train"] * 26 + ["val"] * 4 + ["test"] * 6


def test_unsorted_long_rows_are_sorted_by_series_and_time(tmp_path):
    rows = [("a", t, t) for t in range(12)] + [("b", t, 100 + t) for t in range(8)]
    rng = np.random.default_rng(1)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    path = write_csv(tmp_path / "a.csv", ["id", "t", "y"], shuffled)
    series, axis = read_series([(path, None)], Layout(["y"], series_column="id", time_column="t"))
    assert axis.kind == "number" and axis.step == 1
    assert {s.name: s.targets[:, 0].tolist() for s in series} == {
        "a": [float(t) for t in range(12)],
        "b": [100.0 + t for t in range(8)],
    }
    assert series[0].labels[:3] == ["0", "1", "2"]


def test_wide_file_macrodata_columns_as_series_with_quarters():
    layout = Layout(
        series_columns=["realgdp", "realcons", "unemp"],
        time_column=["year", "quarter"],
        frequency="Q",
    )
    series, axis = read_series([(REAL / "macrodata_head12.csv", None)], layout)
    assert [s.name for s in series] == ["realgdp", "realcons", "unemp"]
    assert series[0].labels[:2] == ["1959Q1", "1959Q2"] and len(series[0].targets) == 12
    assert series[1].targets[1, 0] == pytest.approx(1733.7)
    assert axis.label(axis.next(series[0].times[-1])) == "1962Q1"


MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def test_wide_rows_of_elnino_are_one_monthly_series_in_column_order():
    layout = Layout(wide_periods=MONTHS, time_column="YEAR", frequency="M")
    (s,), axis = read_series([(REAL / "elnino_head3.csv", None)], layout)
    lines = (REAL / "elnino_head3.csv").read_text().splitlines()[1:]
    hand = [float(cell) for line in lines for cell in line.split(",")[1:]]  # row by row
    np.testing.assert_array_equal(s.targets[:, 0], hand)
    assert s.labels[:2] == ["1950-01", "1950-02"] and s.labels[12] == "1951-01"
    assert axis.label(axis.next(s.times[-1])) == "1953-01"
    assert s.where[13].endswith("elnino_head3.csv:3")  # errors name the row's line
    # without a time column: the periods in file order, labelled by position
    (plain,), _ = read_series([(REAL / "elnino_head3.csv", None)], Layout(wide_periods=MONTHS))
    np.testing.assert_array_equal(plain.targets[:, 0], hand)


def test_wide_rows_from_config_and_their_errors(tmp_path):
    dm = TimeSeriesDataModule(
        REAL / "elnino_head3.csv", wide_periods=MONTHS, time_column="YEAR", frequency="M",
        window=4, test_size=6, val_size=0, season=12,
    )  # fmt: skip
    dm.setup("fit")
    assert dm.info["target_names"] == ["y"] and dm.info["output_size"] == 1
    header = ["YEAR", *MONTHS[:3]]
    short = tmp_path / "short.csv"
    short.write_text("YEAR,JAN,FEB,MAR\n1950,1,2,3\n1951,4,5\n")
    with pytest.raises(DataFormatError, match=r"short\.csv:3: expected 4 cells as in the header"):
        read_series([(short, None)], Layout(wide_periods=MONTHS[:3], time_column="YEAR"))
    bad = write_csv(tmp_path / "bad.csv", header, [(1950, 1, 2, 3), (1951, 4, "x", 6)])
    with pytest.raises(DataFormatError, match=r"bad\.csv:3: column 'FEB' is 'x', expected a"):
        read_series([(bad, None)], Layout(wide_periods=MONTHS[:3], time_column="YEAR"))
    with pytest.raises(DataFormatError, match=r"no column 'APR' in the header"):
        read_series([(bad, None)], Layout(wide_periods=MONTHS[:4], time_column="YEAR"))
    with pytest.raises(ConfigError, match="data.wide_periods: the listed columns are the target"):
        Layout(["y"], wide_periods=MONTHS)
    with pytest.raises(ConfigError, match="data.wide_periods: covariates are not read"):
        Layout(input_columns=["u"], wide_periods=MONTHS)


def test_missing_values_refused_or_interpolated_in_co2():
    layout = Layout(["co2"], time_column="date", frequency="W-SAT")
    with pytest.raises(DataFormatError, match=r"co2_head20\.csv:\d+: column 'co2' has a missing"):
        read_series([(REAL / "co2_head20.csv", None)], layout)
    layout.missing = "interpolate"
    (s,), axis = read_series([(REAL / "co2_head20.csv", None)], layout)
    text = (REAL / "co2_head20.csv").read_text().splitlines()[1:]
    values = [float(line.split(",")[1]) if line.split(",")[1] else None for line in text]
    i = values.index(None)  # a filled hole is the mean of its neighbours (one-week holes)
    assert values[i - 1] is not None and values[i + 1] is not None
    assert s.targets[i, 0] == pytest.approx((values[i - 1] + values[i + 1]) / 2)
    assert axis.label(axis.next(s.times[-1])) > s.labels[-1][:4]


@pytest.mark.parametrize(
    "rows, key, message",
    [
        (
            [("a", 0, 1), ("a", 1, 2), ("a", 1, 3)],
            "t",
            r"d\.csv:4: series 'a': time '1' appears twice",
        ),
        (
            [("a", 0, 1), ("a", 1, 2), ("a", 3, 3)],
            "t",
            r"d\.csv:4: series 'a': gap in time from '1' to '3'",
        ),
        ([("a", 0, 1), ("", 1, 2)], "t", r"d\.csv:3: column 'id' \(the series id\) is empty"),
        (
            [("a", "2020-01", 1), ("a", "2020-02", 2), ("a", "2020-04", 3)],
            "t",
            r"d\.csv:4: series 'a': gap in time from '2020-02' to '2020-04' \(expected '2020-03'",
        ),
    ],
)
def test_bad_series_rows_name_file_and_line(tmp_path, rows, key, message):
    path = write_csv(tmp_path / "d.csv", ["id", "t", "y"], rows)
    layout = Layout(
        ["y"], series_column="id", time_column=key, frequency="M" if "20" in message else None
    )
    with pytest.raises(DataFormatError, match=message):
        read_series([(path, None)], layout)


@pytest.mark.parametrize(
    "text, error, parts",
    [
        (None, DataFileNotFoundError, ["missing.csv", "not found"]),
        ("", EmptyDataError, ["data.csv", "empty"]),
        ("y,u\n", EmptyDataError, ["data.csv", "no data rows"]),
        ("z,u\n1,2\n", DataFormatError, ["data.csv:1:", "'y'"]),
        ("y,u\n1,2\n3,abc\n", DataFormatError, ["data.csv:3:", "'u'", "'abc'", "number"]),
        ("y,u\n1,2\n2,inf\n", NonFiniteValueError, ["data.csv:3:", "'u'", "finite"]),
        ("y,u\n1,2\n2\n", DataFormatError, ["data.csv:3:", "expected 2 cells"]),
    ],
)
def test_loader_errors_name_file_line_column(tmp_path, text, error, parts):
    path = tmp_path / ("missing.csv" if text is None else "data.csv")
    if text is not None:
        path.write_text(text)
    with pytest.raises(error) as info:
        read_series([(path, None)], Layout(["y"], ["u"]))
    for part in parts:
        assert part in str(info.value)


def test_short_test_split_and_bad_config_are_refused_before_training(tmp_path):
    path = write_csv(tmp_path / "s.csv", ["y"], [(i,) for i in range(30)])
    with pytest.raises(
        SequenceLengthError,
        match=r"s\.csv:27: series 's': the test split has 5 rows, fewer than horizon=6",
    ):
        TimeSeriesDataModule(path, ["y"], window=3, horizon=6, test_size=5).setup("fit")
    with pytest.raises(ConfigError, match=r"data\.scale: expected one of"):
        TimeSeriesDataModule(path, ["y"], window=3, scale="minmax").setup("fit")
    with pytest.raises(ConfigError, match=r"data\.window=1: the differences need window >= "):
        TimeSeriesDataModule(path, ["y"], window=1, seasonal_difference=4)
    path = write_csv(tmp_path / "neg.csv", ["y"], [(i - 3,) for i in range(30)])
    with pytest.raises(
        DataFormatError, match=r"neg\.csv:2: series 'neg': target \[-3\.0\] must be > 0"
    ):
        TimeSeriesDataModule(path, ["y"], window=3, transform="log").setup("fit")


@pytest.mark.parametrize(
    "transform, difference, seasonal",
    [(None, 0, 0), ("log", 1, 0), ("log1p", 0, 4), ("log", 1, 4)],
)
def test_transforms_round_trip(transform, difference, seasonal):
    rng = np.random.default_rng(2)
    y = np.exp(rng.normal(size=(40, 2)).cumsum(0) * 0.1) + 0.5  # positive, (N, O)
    pipe = TargetPipeline(transform, difference, seasonal)
    v = torch.tensor(pipe.forward(y))
    raw = torch.tensor(y)[None]
    c = pipe.lost + 3
    # one step: every row from the true rows before it
    back = pipe.invert(v[None, c:], raw, c, one_step=True)
    np.testing.assert_allclose(back[0].numpy(), y[c:], rtol=1e-10)
    # recursive: the true differences fed back give the series back too
    back = pipe.invert(v[None, c:], raw[:, :c], c, one_step=False)
    np.testing.assert_allclose(back[0].numpy(), y[c:], rtol=1e-10)
    # and a forecast of "no change" in v is what it should be (here: naive for d = 1)
    if (transform, difference, seasonal) == ("log", 1, 0):
        flat = pipe.invert(torch.zeros(1, 5, 2, dtype=torch.float64), raw[:, :c], c, False)
        np.testing.assert_allclose(flat[0].numpy(), np.repeat(y[c - 1 : c], 5, 0), rtol=1e-12)


def test_mase_scaling_and_denominators_per_series(tmp_path):
    rows = [("a", t, [0, 2][t % 2]) for t in range(20)] + [("b", t, 10 * t) for t in range(20)]
    path = write_csv(tmp_path / "a.csv", ["id", "t", "y"], rows)
    dm = TimeSeriesDataModule(
        path,
        ["y"],
        series_column="id",
        time_column="t",
        window=3,
        scale="mase",
        test_size=4,
        val_size=0,
    )
    dm.setup("fit")
    assert dm.mase_den[:, 0].tolist() == [2.0, 10.0]  # |y_t - y_{t-1}| on 16 training rows
    assert dm.scaler.scale[:, 0].tolist() == [2.0, 10.0]
    assert dm.info["mase_scale"] == [pytest.approx((2 * 15 + 10 * 15) / 30)]  # pooled pairs


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
