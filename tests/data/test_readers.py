"""File readers: each bad input is a clear error naming the file, the line and the expectation."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rnnkit.data.readers import read_csv_sequences, read_text_lines
from rnnkit.data.tagged_files import read_conll


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_wide_csv_cuts_rows_into_steps(tmp_path: Path) -> None:
    path = write(tmp_path, "w.csv", "1,2,3,4,a\n5,6,7,8,b\n")
    ex = read_csv_sequences(path, label_column=-1, step_size=2, header=False)
    assert [e.inputs for e in ex] == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    assert [e.target for e in ex] == ["a", "b"]
    assert ex[1].source == f"{path}:2"


def test_long_csv_groups_rows_by_sequence_id(tmp_path: Path) -> None:
    path = write(tmp_path, "l.csv", "id,x,y\ns1,1,up\ns1,2,up\ns2,5,down\n")
    ex = read_csv_sequences(path, label_column="y", sequence_column="id")
    assert [e.inputs for e in ex] == [[[1.0], [2.0]], [[5.0]]]
    assert [e.target for e in ex] == ["up", "down"]


def test_gzip_and_tsv_are_read(tmp_path: Path) -> None:
    path = tmp_path / "w.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write("x1\tx2\tlabel\n1\t2\tz\n")
    ex = read_csv_sequences(path, label_column="label")
    assert ex[0].inputs == [[1.0], [2.0]] and ex[0].target == "z"


def test_regression_labels_are_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "x,t\n1,0.5\n")
    assert read_csv_sequences(path, label_column="t", regression=True)[0].target == 0.5


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("", {}, r"e\.csv: file is empty"),
        ("x,label\n1,a\n", {"label_column": "target"}, r"e\.csv: missing column 'target'"),
        ("x,label\n1,a\nzz,b\n", {}, r"e\.csv:3: column 'x' is not a number: 'zz'"),
        ("x,label\n1,a\nnan,b\n", {}, r"e\.csv:3: column 'x' is nan \(NaN/inf"),
        ("x,label\ninf,a\n", {}, r"e\.csv:2: column 'x' is inf"),
        ("x,label\n1,a\n1,2,b\n", {}, r"e\.csv:3: expected 2 columns, got 3"),
        ("x,label\n1,\n", {}, r"e\.csv:2: label column 'label' is empty"),
        (
            "id,x,label\ns,1,a\ns,2,b\n",
            {"sequence_column": "id"},
            r"e\.csv:3: sequence 's' changes label",
        ),
    ],
)
def test_csv_errors_name_file_line_and_column(tmp_path, text, kwargs, message) -> None:
    path = write(tmp_path, "e.csv", text)
    with pytest.raises(ValueError, match=message):
        read_csv_sequences(path, **{"label_column": "label", **kwargs})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: .*not found"):
        read_csv_sequences(tmp_path / "nope.csv", label_column=0)


def test_text_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "t.tsv", "pos\tGood Film\n\nneg\tbad\n")
    ex = read_text_lines(path, "whitespace", lowercase=True)
    assert [(e.target, e.inputs) for e in ex] == [("pos", ["good", "film"]), ("neg", ["bad"])]
    assert read_text_lines(path, "char")[1].inputs == ["b", "a", "d"]
    assert ex[1].source == f"{path}:3"


def test_text_line_without_tab(tmp_path: Path) -> None:
    path = write(tmp_path, "t.tsv", "pos\tok\nno tab here\n")
    with pytest.raises(ValueError, match=r"t\.tsv:2: expected 'label<TAB>text', found no tab"):
        read_text_lines(path)
    assert read_text_lines(path, labeled=False)[1].target is None


def test_conll_sentences(tmp_path: Path) -> None:
    path = write(tmp_path, "c.conll", "Ada\tB-PER\nsang\tO\n\n\nParis\tB-LOC\n")
    ex = read_conll(path)
    assert [(e.inputs, e.target) for e in ex] == [
        (["Ada", "sang"], ["B-PER", "O"]),
        (["Paris"], ["B-LOC"]),
    ]
    assert ex[1].source == f"{path}:5"


@pytest.mark.parametrize(
    "text, scheme, message",
    [
        ("Ada\n", "BIO", r"c\.conll:1: expected at least 2 fields .* got 1"),
        ("Ada\tX-PER\n", "BIO", r"c\.conll:1: tag 'X-PER' is not a BIO tag"),
        ("Ada\tS-PER\n", "BIO", r"c\.conll:1: tag 'S-PER' is not a BIO tag"),
        ("Ada\tB-\n", "BIOES", r"c\.conll:1: tag 'B-' is not a BIOES tag"),
        ("\n\n", "BIO", r"c\.conll: no sentences"),
    ],
)
def test_conll_errors(tmp_path: Path, text: str, scheme: str, message: str) -> None:
    path = write(tmp_path, "c.conll", text)
    with pytest.raises(ValueError, match=message):
        read_conll(path, scheme=scheme)
