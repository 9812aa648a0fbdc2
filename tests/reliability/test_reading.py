"""Items 2, 6, 9 and 10 (readers): grouping long rows, BOMs, undecodable bytes, broken files,
label spellings, unlabelled long-layout prediction input."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from rnnkit import errors as E
from rnnkit.data.pairs import read_pairs
from rnnkit.data.readers import read_csv_sequences, read_text_lines
from rnnkit.data.series import Layout, read_series
from rnnkit.data.tagged_files import read_conll

BOM = "\ufeff"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# --- item 2: long-format rows in any order --------------------------------------------------
LONG = "id,t,a,label\ns1,0,1,x\ns1,1,2,x\ns1,2,3,x\ns2,0,10,y\ns2,1,20,y\n"


def _by_time(text: str) -> str:
    header, *rows = text.strip().split("\n")
    return "\n".join([header, *sorted(rows, key=lambda r: (r.split(",")[1], r))]) + "\n"


@pytest.mark.parametrize("order", ["grouped", "sorted_by_step", "reversed"])
def test_long_rows_are_grouped_by_id_whatever_the_order(order, tmp_path):
    rows = LONG.strip().split("\n")
    text = {
        "grouped": LONG,
        "sorted_by_step": _by_time(LONG),
        "reversed": "\n".join([rows[0], *rows[:0:-1]]) + "\n",
    }[order]
    examples = read_csv_sequences(
        write(tmp_path / "long.csv", text), "label", sequence_column="id", step_column="t"
    )
    got = {ex.target: [step[0] for step in ex.inputs] for ex in examples}
    assert got == {"x": [1.0, 2.0, 3.0], "y": [10.0, 20.0]}


def test_long_rows_without_step_column_keep_file_order_per_id(tmp_path):
    examples = read_csv_sequences(
        write(tmp_path / "long.csv", _by_time(LONG)), "label", sequence_column="id"
    )
    assert [len(ex.inputs) for ex in examples] == [3, 2]  # not five one-step sequences


def test_repeated_step_is_refused(tmp_path):
    path = write(tmp_path / "long.csv", LONG + "s1,1,9,x\n")
    with pytest.raises(
        E.DataFormatError, match=r"long\.csv:7: step 1 \(column 't'\) appears twice"
    ):
        read_csv_sequences(path, "label", sequence_column="id", step_column="t")


def test_unlabelled_long_layout_prediction_input(tmp_path):
    path = write(tmp_path / "new.csv", "id,t,a\ns1,1,2\ns1,0,1\n")
    (example,) = read_csv_sequences(
        path, "label", sequence_column="id", step_column="t", labeled=False
    )
    assert example.target is None and example.inputs == [[1.0], [2.0]]


# --- item 6: a UTF-8 byte-order mark is not data ---------------------------------------------
def test_bom_text_file_label(tmp_path):
    path = write(tmp_path / "r.tsv", BOM + "pos\tgood film\nneg\tbad film\n")
    assert [ex.target for ex in read_text_lines(path)] == ["pos", "neg"]


def test_bom_conll_first_token(tmp_path):
    path = write(tmp_path / "n.conll", BOM + "John\tB-PER\nlives\tO\n")
    assert read_conll(path)[0].inputs == ["John", "lives"]


def test_bom_csv_header(tmp_path):
    path = write(tmp_path / "s.csv", BOM + "a,b,label\n1,2,x\n")
    assert read_csv_sequences(path, "label")[0].target == "x"


def test_bom_pairs(tmp_path):
    path = write(tmp_path / "p.tsv", BOM + "abc\tcba\n")
    assert read_pairs(path)[0].inputs == ["a", "b", "c"]


def test_bom_gz(tmp_path):
    path = tmp_path / "s.csv.gz"
    path.write_bytes(gzip.compress((BOM + "a,label\n1,x\n").encode()))
    assert read_csv_sequences(path, "label")[0].target == "x"


def test_bom_series_csv(tmp_path):
    path = write(tmp_path / "series.csv", BOM + "y\n1.0\n2.0\n")
    series = read_series([(path, None)], Layout(target_columns=["y"]))
    assert series[0][0].targets.tolist() == [[1.0], [2.0]]


# --- item 9: broken files are one line naming the file ---------------------------------------
def test_latin1_bytes_name_line_offset_and_key(tmp_path):
    path = write(tmp_path / "r.tsv", "pos\tgood\nneg\tcafé noir\n", encoding="latin-1")
    with pytest.raises(E.DataFormatError) as info:
        read_text_lines(path)
    assert str(info.value) == (
        f"{path}:2: byte 0xe9 at byte offset 16 is not valid utf-8; set the file's encoding "
        "with data.encoding=... (for example latin-1 or cp1252), or re-encode the file as UTF-8"
    )
    assert read_text_lines(path, encoding="latin-1")[1].inputs == ["café", "noir"]


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path / "r.tsv", "pos\tgood\n")

    def denied(self):  # what chmod 0 does, also when the tests run as root
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(E.DataError, match=r"r\.tsv: cannot read the file \(permission denied\)"):
        read_text_lines(path)


@pytest.mark.parametrize("kind", ["not gzip", "truncated"])
def test_bad_gz(kind, tmp_path):
    path = tmp_path / "s.csv.gz"
    data = gzip.compress(("a,label\n" + "1,x\n" * 200).encode())
    path.write_bytes(b"plain text, not gzip" if kind == "not gzip" else data[: len(data) // 2])
    with pytest.raises(E.DataError, match=r"s\.csv\.gz: not a valid \.gz file or truncated"):
        read_csv_sequences(path, "label")


def test_named_pipe_is_read(tmp_path):
    fifo = tmp_path / "pipe.tsv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("pos\tgood film\n"))
    writer.start()
    examples = read_text_lines(fifo)
    writer.join()
    assert examples[0].target == "pos"


def test_unknown_encoding_name(tmp_path):
    path = write(tmp_path / "r.tsv", "pos\tgood\n")
    with pytest.raises(E.ConfigError, match=r"data\.encoding='utf-9' is not a known"):
        read_text_lines(path, encoding="utf-9")


# --- item 10: one number, two spellings: one class ---------------------------------------------
@pytest.mark.parametrize("second", ["1.0", "1.00", "01", "+1"])
def test_label_spellings_of_one_number_are_one_class(second, tmp_path):
    path = write(tmp_path / "s.csv", f"a,label\n1,1\n2,0\n3,{second}\n")
    assert [ex.target for ex in read_csv_sequences(path, "label")] == ["1", "0", "1"]


def test_distinct_numeric_labels_are_fine(tmp_path):
    path = write(tmp_path / "s.csv", "a,label\n1,1\n2,0\n3,2\n")
    assert [ex.target for ex in read_csv_sequences(path, "label")] == ["1", "0", "2"]
