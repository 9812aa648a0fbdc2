"""Tagged-file readers (CoNLL columns, word/TAG lines), tag schemes, vectors files, and the
tagging DataModule's splits, unseen tags and character ids."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
import torch

from rnnkit.data import CoNLLDataModule
from rnnkit.data.tag_schemes import detect_scheme, normalize_scheme
from rnnkit.data.tagged_files import read_conll, read_slash
from rnnkit.data.vectors import read_vectors, vectors_for
from rnnkit.errors import ConfigError, DataFormatError

FIXTURES = Path(__file__).parent / "fixtures"


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_slash_lines_split_at_the_last_slash_and_unescape(tmp_path: Path) -> None:
    path = write(tmp_path, "t.txt", "Die/ART 1/2/CARD &slash;/$(\n\nKatze/NN\n")
    ex = read_slash(path)
    assert [(e.inputs, e.target) for e in ex] == [
        (["Die", "1/2", "/"], ["ART", "CARD", "$("]),
        (["Katze"], ["NN"]),
    ]
    assert ex[1].source == f"{path}:3"
    assert read_slash(path, labeled=False)[1].inputs == ["Katze/NN"]


def test_slash_token_without_tag_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.txt", "Die/ART\nKatze schläft/VVFIN\n")
    with pytest.raises(DataFormatError, match=r"t\.txt:2: token 'Katze' is not word/TAG"):
        read_slash(path)


def test_real_excerpts_read() -> None:
    oanc = read_slash(FIXTURES / "real" / "tagged-en-oanc_head3.txt")
    assert oanc[0].inputs[:2] == ["Has", "the"] and oanc[0].target[:2] == ["VBZ", "DT"]
    hironsan = read_conll(FIXTURES / "real" / "hironsan_iob_head3.txt")  # 10-12 fields a line
    assert len(hironsan) == 3
    assert hironsan[0].inputs[:2] == ["2005", "年"] and hironsan[0].target[:2] == [
        "B-DAT",
        "I-DAT",
    ]
    assert detect_scheme(t for ex in hironsan for t in ex.target) == "bio"


def test_conll_named_columns_and_missing_tag(tmp_path: Path) -> None:
    path = write(tmp_path, "c.conll", "1\tAda\tPROPN\tB-PER\n2\tsang\tVERB\tO\n")
    ex = read_conll(path, token_column=1, tag_column=2)
    assert (ex[0].inputs, ex[0].target) == (["Ada", "sang"], ["PROPN", "VERB"])
    path = write(tmp_path, "d.conll", "Ada\tB-PER\nsang\n")
    with pytest.raises(DataFormatError, match=r"d\.conll:2: expected at least 2 fields .* got 1"):
        read_conll(path)


@pytest.mark.parametrize(
    "tags, scheme",
    [
        (["NN", "VVFIN", "$."], "plain"),
        (["B-PER", "I-PER", "O"], "bio"),
        (["S-PER", "O", "B-LOC", "E-LOC"], "bioes"),
        (["O", "B-NP", "I-NP", "-LRB-"], "plain"),  # one non-span tag makes the set plain
        (["I-ORG", "I-ORG"], "plain"),  # no B, no O: chunk-looking POS tags stay plain
    ],
)
def test_detect_scheme(tags: list[str], scheme: str) -> None:
    assert detect_scheme(tags) == scheme


def test_unknown_scheme_names_the_key() -> None:
    assert normalize_scheme("IOB2") == "bio" and normalize_scheme("BIOES") == "bioes"
    with pytest.raises(ConfigError, match=r"^data\.scheme='bilou' is not a tag scheme; expected"):
        CoNLLDataModule(train_path="x", scheme="bilou")


def test_span_scheme_checks_training_tags_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.conll", "Ada\tB-PER\nsang\tNN\n\nBob\tO\n")
    dm = CoNLLDataModule(train_path=path, val_path=path, test_path=path, scheme="bio")
    with pytest.raises(DataFormatError, match=r"c\.conll:2: tag 'NN' is not a BIO tag"):
        dm.setup()


def test_unseen_test_tags_warn_and_count_as_errors(tmp_path: Path, caplog) -> None:
    train = write(tmp_path, "train.txt", "a/DT cat/NN\nthe/DT dog/NN\n")
    test = write(tmp_path, "test.txt", "a/DT dog/VB\n")
    dm = CoNLLDataModule(
        train_path=train, val_path=train, test_path=test, format="slash", char_features=True
    )
    with caplog.at_level(logging.WARNING):
        dm.setup()
    assert "test.txt:1: tag 'VB' was not seen in the training split" in caplog.text
    info = dm.info
    assert info["num_tags"] == 2 and info["label_names"] == ["DT", "NN", "VB"]
    assert info["scheme"] == "plain"
    x, y = dm.splits["test"].pairs[0]
    assert y.tolist() == [0, 2]  # VB: an id the model (2 outputs) can never predict
    assert x.shape == (2, 1 + 20) and x[0, 1] > 1 and (x[0, 2:] == 0).all()  # "a": one char


def test_interleaved_and_ordered_splits_match_the_baselines(tmp_path: Path) -> None:
    lines = "".join(f"w{i}/T{i % 3}\n" for i in range(20))
    path = write(tmp_path, "s.txt", lines)
    dm = CoNLLDataModule(
        train_path=path, format="slash", split="interleaved", test_fraction=0.2, val_fraction=0.25
    )
    dm.setup()
    words = {k: [ex.inputs[0] for ex in dm.splits[k].raw] for k in ("train", "val", "test")}
    assert words["test"] == ["w4", "w9", "w14", "w19"]  # sentences 5, 10, ... (from 1)
    assert words["val"] == ["w3", "w8", "w13", "w18"]  # every 4th of the other 16
    assert len(words["train"]) == 12
    dm = CoNLLDataModule(
        train_path=path, format="slash", split="ordered", test_fraction=0.1, val_fraction=0.1
    )
    dm.setup()
    assert [ex.inputs[0] for ex in dm.splits["test"].raw] == ["w18", "w19"]  # the last 10 %


def test_long_words_keep_prefix_and_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "s.txt", "abcdefghij/X b/Y\n")
    dm = CoNLLDataModule(
        train_path=path, val_path=path, test_path=path, format="slash",
        char_features=True, max_word_length=4,
    )  # fmt: skip
    dm.setup()
    ids = dm.char_ids(["abcdefghij"])[0].tolist()
    chars = dm.fitted["chars"]
    assert "".join(chars[i] for i in ids) == "abij"


# ----- vectors files --------------------------------------------------------------------------
def test_vec_file_with_header_and_gzip(tmp_path: Path) -> None:
    table, width = read_vectors(FIXTURES / "tiny_vectors.vec")
    assert width == 3 and table["cat"] == [1.0, -1.0, 0.5] and len(table) == 4
    gz = tmp_path / "v.txt.gz"  # GloVe layout (no header), compressed
    gz.write_bytes(gzip.compress(b"the 0.1 0.2\nParis 1 2\n"))
    rows, found = vectors_for(gz, ["<pad>", "<unk>", "The", "paris", "nope"], first=2)
    assert found.tolist() == [False, False, True, False, False]  # "The" -> "the"; case kept else
    torch.testing.assert_close(rows[2], torch.tensor([0.1, 0.2]))


def test_mixed_width_vectors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.vec", "2 3\nthe 0.1 0.2 0.3\ncat 1.0 2.0\n")
    with pytest.raises(DataFormatError, match=r"bad\.vec:3: vector of 2 values, expected 3"):
        read_vectors(path)
    path = write(tmp_path, "nan.txt", "the 0.1 x\n")
    with pytest.raises(DataFormatError, match=r"nan\.txt:1: 'x' is not a number"):
        read_vectors(path)
