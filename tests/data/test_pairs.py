"""Source/target pairs: the TSV reader and its errors, vocabularies, batches, synthetic tasks."""

from __future__ import annotations

import datetime
import json

import pytest
import torch

from rnnkit.data.pairs import PairsDataModule, read_pairs
from rnnkit.data.transduction import MONTHS, TransductionDataModule, date_pair
from rnnkit.data.vocab import Vocabulary


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_pairs_characters_and_words(tmp_path):
    path = _write(tmp_path, "p.tsv", "ab c\txy\n\nthe cat\tle chat\n")
    chars = read_pairs(path)
    assert [(ex.inputs, ex.target) for ex in chars] == [
        (["a", "b", " ", "c"], ["x", "y"]),
        (list("the cat"), list("le chat")),
    ]
    assert chars[1].source == f"{path}:3"  # blank line skipped, line numbers kept
    words = read_pairs(path, "whitespace", "whitespace")
    assert words[1].inputs == ["the", "cat"] and words[1].target == ["le", "chat"]


def test_a_line_without_a_tab_names_the_file_and_line(tmp_path):
    path = _write(tmp_path, "bad.tsv", "ab\tba\nno tab here\n")
    with pytest.raises(
        ValueError, match=r"bad\.tsv:2: expected 'source<TAB>target', found no tab"
    ):
        read_pairs(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a\tb\na\tb\tc\n", r"x\.tsv:2: 3 fields, expected 2 \(as the first row\)"),
        ("ab\tba\n\tba\n", r"x\.tsv:2: the source \(column 0\) is empty"),
        ("ab\t \n", r"x\.tsv:1: the target \(column 1\) is empty"),
        ("\n\n  \n", r"x\.tsv: no pairs \(only blank lines\)"),
    ],
)
def test_malformed_files_fail_with_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_pairs(_write(tmp_path, "x.tsv", text))


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"empty\.tsv: file is empty"):
        read_pairs(_write(tmp_path, "empty.tsv", ""))
    with pytest.raises(FileNotFoundError, match=r"missing\.tsv"):
        read_pairs(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        read_pairs(_write(tmp_path, "ok.tsv", "a\tb\n"), source_tokenizer="bpe")


def test_prediction_input_may_omit_the_target(tmp_path):
    examples = read_pairs(_write(tmp_path, "src.txt", "abc\nde\tignored\n"), labeled=False)
    assert examples[0].inputs == list("abc") and examples[0].target is None
    assert examples[1].target == list("ignored")


def test_columns_by_index_and_name_of_a_quoted_csv(tmp_path):
    # Pattern's word-form files: double-quoted fields, a byte-order mark, more columns than two
    text = '\ufeff"form","lemma","pos"\n"casas","casa","n"\n"dijo, al","decir","v"\n'
    path = _write(tmp_path, "forms.csv", text)
    by_name = read_pairs(
        path, source_column="form", target_column="lemma", delimiter=",", quoted=True, header=True
    )
    assert [("".join(e.inputs), "".join(e.target)) for e in by_name] == [
        ("casas", "casa"),
        ("dijo, al", "decir"),  # the delimiter inside quotes belongs to the field
    ]
    assert by_name[0].source == f"{path}:2"
    by_index = read_pairs(_write(tmp_path, "n.csv", '"n","Haus","Häuser"\n'), source_column=1,
                          target_column=-1, delimiter=",", quoted=True)  # fmt: skip
    assert "".join(by_index[0].inputs) == "Haus" and "".join(by_index[0].target) == "Häuser"


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ('"a","b","c"\n"d","e"\n', {}, r"x\.csv:2: 2 fields, expected 3 \(as the first row\)"),
        ('"a","b"\n', {"target_column": 5}, r"x\.csv: column 5 does not exist"),
        ('"s","t"\n"a","b"\n', {"header": True, "source_column": "src"},
         r"x\.csv: missing column 'src'"),
        ('"a",""\n', {}, r"x\.csv:1: the target \(column 1\) is empty"),
    ],
)  # fmt: skip
def test_bad_csv_rows_name_the_file_and_line(tmp_path, text, kwargs, message):
    path = _write(tmp_path, "x.csv", text)
    with pytest.raises(ValueError, match=message):
        read_pairs(path, delimiter=",", quoted=True, **kwargs)


def test_a_column_name_needs_a_header(tmp_path):
    with pytest.raises(ValueError, match="data.source_column='form' is a name, which needs"):
        PairsDataModule(train_path="x.csv", source_column="form")


def _pairs_module(tmp_path, **kwargs):
    train = _write(tmp_path, "train.tsv", "abc\tcba\nab\tba\nbca\tacb\n")
    val = _write(tmp_path, "val.tsv", "abz\tzba\n")
    test = _write(tmp_path, "test.tsv", "c\tc\n")
    kwargs = {"val_path": str(val), **kwargs}
    return PairsDataModule(train_path=str(train), test_path=str(test), batch_size=4, **kwargs)


def test_vocabularies_come_from_the_training_split_only(tmp_path):
    dm = _pairs_module(tmp_path)
    dm.setup()
    assert "z" not in dm.source_vocab.stoi and "z" not in dm.target_vocab.stoi
    src, target = dm.splits["val"].pairs[0]
    assert src[-1].item() == Vocabulary.unk_index  # "abz": z is unknown
    assert target.ids[1].item() == Vocabulary.unk_index  # "<bos> z b a <eos>"
    info = dm.info
    assert info["src_vocab_size"] == 4 + 3 and info["tgt_vocab_size"] == 4 + 3
    assert (info["pad_index"], info["bos_index"], info["eos_index"]) == (0, 2, 3)
    assert info["target_vocab"][:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert info["separator"] == ""


def test_pairs_run_without_validation(tmp_path):
    dm = _pairs_module(tmp_path, val_path=None, val_fraction=0.0)
    assert dm.has_validation is False
    dm.setup()
    assert len(dm.splits["val"]) == 0 and len(dm.splits["train"]) == 3
    assert _pairs_module(tmp_path).has_validation is True


def test_batches_are_padded_and_targets_framed(tmp_path):
    dm = _pairs_module(tmp_path)
    dm.setup()
    src, src_lengths, tgt, tgt_lengths, _ = next(iter(dm.train_dataloader()))
    assert src.shape == (3, 3) and tgt.shape == (3, 5)
    assert src_lengths.dtype == torch.long and tgt_lengths.dtype == torch.long
    assert torch.equal(tgt_lengths, src_lengths + 2)  # reversal keeps the length
    for i in range(3):
        n, m = int(src_lengths[i]), int(tgt_lengths[i])
        assert torch.all(src[i, n:] == 0) and torch.all(tgt[i, m:] == 0)
        assert tgt[i, 0] == 2 and tgt[i, m - 1] == 3
        source = dm.source_vocab.decode(src[i, :n].tolist())
        target = dm.target_vocab.decode(tgt[i].tolist())
        assert target == source[::-1]


def test_state_dict_is_plain_data_and_restores_the_vocabularies(tmp_path):
    dm = _pairs_module(tmp_path)
    dm.setup()
    state = json.loads(json.dumps(dm.state_dict()))  # JSON-able
    # a module fitted on other data, restored from the state, encodes as the first one did
    other = PairsDataModule(
        train_path=str(_write(tmp_path, "other.tsv", "xyz\tzyx\nxy\tyx\nyz\tzy\n")),
        val_fraction=0.34,
        test_fraction=0.34,
        batch_size=4,
    )
    other.load_state_dict(state)
    other.setup()
    assert other.info["source_vocab"] == dm.info["source_vocab"]
    assert other.info["target_vocab"] == dm.info["target_vocab"]


def test_predict_split_reads_sources_alone(tmp_path):
    dm = _pairs_module(tmp_path, predict_path=str(_write(tmp_path, "p.txt", "cab\nb\n")))
    dm.setup("predict")
    src, src_lengths, tgt, tgt_lengths, _ = next(iter(dm.predict_dataloader()))
    assert src_lengths.tolist() == [3, 1] and tgt_lengths.tolist() == [0, 0]


@pytest.mark.parametrize("task", ["reverse", "sort", "dates"])
def test_synthetic_tasks_are_seeded_correct_and_disjoint(task):
    dm = TransductionDataModule(task=task, num_examples=300, min_length=3, max_length=8, seed=7)
    dm.setup()
    again = TransductionDataModule(task=task, num_examples=300, min_length=3, max_length=8, seed=7)
    again.setup()
    sources = {}
    for split, data in dm.splits.items():
        sources[split] = {"".join(ex.inputs) for ex in data.raw}
        assert [ex.inputs for ex in data.raw] == [ex.inputs for ex in again.splits[split].raw]
        for ex in data.raw:
            source, target = "".join(ex.inputs), "".join(ex.target)
            if task == "reverse":
                assert target == source[::-1] and 3 <= len(source) <= 8
            elif task == "sort":
                assert target == "".join(sorted(source))
            else:
                datetime.date.fromisoformat(target)  # a real date
    assert not sources["train"] & sources["val"] and not sources["train"] & sources["test"]
    assert sum(len(s) for s in sources.values()) == 300


def test_date_forms_all_mean_the_same_day():
    import random

    rng = random.Random(0)
    seen_forms = set()
    for _ in range(200):
        source, target = date_pair(rng)
        day = datetime.date.fromisoformat(target)
        month = MONTHS[day.month - 1]
        assert source in {
            f"{month} {day.day} {day.year}",
            f"{day.day} {month} {day.year}",
            f"{month[:3]} {day.day}, {day.year}",
            f"{day.day}/{day.month:02d}/{day.year}",
            f"{day.year}.{day.month:02d}.{day.day:02d}",
        }
        seen_forms.add(source[0].isdigit() + 2 * ("/" in source) + 4 * ("." in source))
    assert len(seen_forms) == 4  # word-first, day-first words, slashes, dots (mar/march share 0)


def test_synthetic_settings_are_checked():
    with pytest.raises(ValueError, match="task must be one of"):
        TransductionDataModule(task="copy")
    with pytest.raises(ValueError, match="min_length <= max_length"):
        TransductionDataModule(min_length=5, max_length=3)
    dm = TransductionDataModule(num_examples=50, min_length=1, max_length=1, num_symbols=2)
    with pytest.raises(ValueError, match="only 2 distinct sources exist"):
        dm.setup()
