"""Readers of issue 13: texts in CSV columns, index/time columns, cutting wide rows into steps,
``.ts`` and ``.npz`` series, stratified and every-k-th splits, and their one-line errors."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import CSVSequenceDataModule, TextClassificationDataModule
from rnnkit.data.base import split_order
from rnnkit.data.readers import cut_into_steps, read_csv_sequences, read_csv_texts
from rnnkit.data.series_files import read_npz_series, read_ts_series
from rnnkit.errors import ConfigError, DataError, DataFormatError

REAL = Path(__file__).parent / "fixtures" / "real"

# the layout of Pattern's polarity-fr-amazon.csv (hand-made lines): text first, label second,
# quoted texts over several lines with doubled quotes inside
FR = """"Un livre ""remarquable"".
Je le relis.","1"
"Ennuyeux,
long et
plat","-1"
"Bien","1.0"
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_quoted_multi_line_csv_texts_with_the_label_second(tmp_path):
    path = write(tmp_path / "fr.csv", FR)
    ex = read_csv_texts(path, label_column=1, text_column=0, tokenizer="word", lowercase=True)
    assert [e.target for e in ex] == ["1", "-1", "1"]  # 1 and 1.0: one class
    assert ex[0].inputs == ["un", "livre", '"', "remarquable", '"', ".", "je", "le", "relis", "."]
    assert ex[1].inputs == ["ennuyeux", ",", "long", "et", "plat"]
    assert [e.source for e in ex] == [f"{path}:1", f"{path}:3", f"{path}:6"]


def test_csv_texts_by_column_name_and_a_short_record_is_named(tmp_path):
    path = write(tmp_path / "t.tsv", "label\ttext\npos\tgood film\nneg\n")
    with pytest.raises(DataFormatError, match=r"t\.tsv:3: expected 2 fields, got 1"):
        read_csv_texts(path, label_column="label", text_column="text", header=True)
    with pytest.raises(DataFormatError, match=r"t\.tsv: missing column 'body'"):
        read_csv_texts(path, label_column="label", text_column="body", header=True)


def test_text_datamodule_reads_csv_columns_and_splits_every_kth_row(tmp_path):
    rows = [f'"text number {i}\nsecond line","{1 if i % 2 else -1}"' for i in range(20)]
    path = write(tmp_path / "p.csv", "\n".join(rows) + "\n")
    dm = TextClassificationDataModule(
        train_path=str(path), label_column=1, text_column=0, test_every=5, val_fraction=0
    )
    dm.setup("fit")
    assert [e.inputs[2] for e in dm.splits["test"].raw] == ["4", "9", "14", "19"]
    assert not dm.has_validation and len(dm.splits["train"]) == 16
    assert dm.info["label_names"] == ["-1", "1"]


def test_stratified_split_keeps_the_class_mix():
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10  # sorted by class, as many files are
    order = split_order(len(labels), seed=3, labels=labels)
    assert sorted(order) == list(range(100))
    for start, stop in ((0, 20), (20, 30), (30, 100)):
        counts = Counter(labels[i] for i in order[start:stop])
        for name, share in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
            assert abs(counts[name] - share * (stop - start)) <= 1
    assert split_order(100, seed=3) != split_order(100, seed=4)


def test_long_format_never_uses_id_or_time_columns_and_logs_the_columns(tmp_path, caplog):
    path = write(tmp_path / "l.csv", "id,time,x,y,label\na,0,1,2,u\na,1,3,4,u\nb,0,5,6,d\n")
    with caplog.at_level(logging.INFO, logger="rnnkit"):
        ex = read_csv_sequences(path, label_column="label", sequence_column="id")
    assert [e.inputs for e in ex] == [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]]]
    (line,) = [r.getMessage() for r in caplog.records if "features" in r.getMessage()]
    assert "2 features 'x', 'y'" in line and "sequence id 'id'" in line
    assert "not used (index/time columns): 'time'" in line
    listed = read_csv_sequences(
        path, label_column="label", sequence_column="id", feature_columns=["time", "x"]
    )
    assert listed[0].inputs == [[0.0, 1.0], [1.0, 3.0]]  # listed: the user's choice


def test_wide_rows_of_prime_length_cut_with_padding_or_a_stride(tmp_path):
    cells = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert cut_into_steps(cells, 3, None, True, "w") == [[1, 2, 3], [4, 5, 6], [7, 7, 7]]
    assert cut_into_steps(cells, 3, 2, False, "w") == [[1, 2, 3], [3, 4, 5], [5, 6, 7]]
    assert cut_into_steps(cells, 2, 1, False, "w")[-1] == [6, 7]
    assert cut_into_steps([1.0], 3, None, True, "w") == [[1, 1, 1]]
    with pytest.raises(DataFormatError, match=r"w: 7 feature cells do not split .*pad_last_step"):
        cut_into_steps(cells, 3, None, False, "w")
    path = write(tmp_path / "w.csv", "1,2,3,4,5,6,7,a\n")
    (ex,) = read_csv_sequences(path, -1, step_size=2, header=False, pad_last_step=True)
    assert ex.inputs == [[1, 2], [3, 4], [5, 6], [7, 7]]


def test_ts_files_classification_and_regression():
    ex = read_ts_series(REAL / "UnitTest_TRAIN_head6.ts", regression=False)
    assert len(ex) == 6 and len(ex[0].inputs) == 24 and ex[0].inputs[0] == [573.0]
    assert {e.target for e in ex} <= {"1", "2"}
    cardano = read_ts_series(REAL / "CardanoSentiment_TRAIN_head3.ts", regression=True)
    assert len(cardano[0].inputs) == 24 and len(cardano[0].inputs[0]) == 2  # two channels
    assert cardano[0].target == pytest.approx(0.0589)
    with pytest.raises(DataFormatError, match=r"regression file .*data\.regression=true"):
        read_ts_series(REAL / "Covid3Month_TRAIN_head3.ts", regression=False)


def test_a_bad_ts_line_is_named(tmp_path):
    text = (REAL / "UnitTest_TRAIN_head6.ts").read_text().replace("573.0", "57x3", 1)
    path = write(tmp_path / "bad.ts", text)
    with pytest.raises(DataFormatError, match=r"bad\.ts:12: a value is not a number"):
        read_ts_series(path, regression=False)


def test_npz_series_pick_the_arrays_of_each_split(tmp_path):
    npz = REAL / "Trace_one_per_class.npz"
    train = read_npz_series(npz, "train", regression=False)
    assert [e.target for e in train] == ["1", "2", "3", "4"] and len(train[0].inputs) == 275
    assert len(read_npz_series(npz, "test", regression=False)) == 1
    np.savez(tmp_path / "objects.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([1]))
    with pytest.raises(DataError, match=r"objects\.npz: not a readable \.npz"):
        read_npz_series(tmp_path / "objects.npz", "train", regression=False)
    np.savez(tmp_path / "keys.npz", series=np.zeros((2, 3)))
    with pytest.raises(DataFormatError, match=r"keys\.npz: no array X_train or X"):
        read_npz_series(tmp_path / "keys.npz", "train", regression=False)


def test_series_datamodule_on_ts_and_npz_with_their_own_test_part():
    dm = CSVSequenceDataModule(
        train_path=str(REAL / "Trace_one_per_class.npz"),
        test_path=str(REAL / "Trace_one_per_class.npz"),
        val_fraction=0,
    )
    dm.setup("fit")
    assert dm.info["input_size"] == 1 and dm.info["num_classes"] == 4
    assert len(dm.splits["train"]) == 4 and len(dm.splits["test"]) == 1
    x, _ = dm.splits["test"][0]
    assert x.shape == (275, 1)
    ts = CSVSequenceDataModule(
        train_path=str(REAL / "Covid3Month_TRAIN_head3.ts"),
        test_path=str(REAL / "Covid3Month_TRAIN_head3.ts"),
        regression=True,
        val_fraction=0,
    )
    ts.setup("fit")
    assert ts.info["num_classes"] is None and len(ts.splits["train"]) == 3


def test_split_keys_are_checked():
    with pytest.raises(ConfigError, match="data.test_every must be >= 2"):
        TextClassificationDataModule(train_path="x", test_every=1)
    with pytest.raises(ConfigError, match="data.step_stride must be >= 1"):
        CSVSequenceDataModule(train_path="x", step_stride=0)
