"""DataModules: seeded splits, fitting on training data only, info, state round trip, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnkit.data import (
    AddingDataModule,
    CoNLLDataModule,
    ContextTaggingDataModule,
    CSVSequenceDataModule,
    TextClassificationDataModule,
)
from rnnkit.data.collate import IGNORE_INDEX, BucketBatchSampler, PadCollate, pad_sequences
from rnnkit.data.vocab import UNK, Vocabulary
from rnnkit.utils.config import _package_file

REPO = Path(__file__).resolve().parents[2]
DIGITS = _package_file("sklearn.datasets", "data/digits.csv.gz")


def digits(**kwargs) -> CSVSequenceDataModule:
    args = dict(train_path=DIGITS, header=False, label_column=-1, step_size=8, seed=0)
    return CSVSequenceDataModule(**{**args, **kwargs})


def test_digits_through_the_generic_csv_loader() -> None:
    dm = digits(val_fraction=0.15, test_fraction=0.15)
    dm.setup("fit")
    sizes = {k: len(v) for k, v in dm.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == round(0.15 * 1797)
    assert dm.info["input_size"] == 8 and dm.info["num_classes"] == 10
    assert dm.info["label_names"] == [str(i) for i in range(10)]
    x, lengths, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 8, 8) and lengths.tolist() == [8] * 32 and y.dtype == torch.long
    # standardised with training statistics only
    train_x = torch.stack([p[0] for p in dm.splits["train"].pairs])
    assert train_x.mean().abs() < 0.05


def test_splits_are_seeded() -> None:
    a, b, c = digits(seed=1), digits(seed=1), digits(seed=2)
    for dm in (a, b, c):
        dm.setup()
    assert [e.source for e in a.splits["test"].raw] == [e.source for e in b.splits["test"].raw]
    assert [e.source for e in a.splits["test"].raw] != [e.source for e in c.splits["test"].raw]


def test_state_dict_is_plain_data_and_restores_encoding(tmp_path: Path) -> None:
    import json

    dm = TextClassificationDataModule(train_path=str(REPO / "data/toy_sentiment.tsv"), seed=0)
    dm.setup()
    state = json.loads(json.dumps(dm.state_dict()))  # JSON-able
    test = tmp_path / "test.tsv"
    test.write_text("pos\tthe movie was wonderful zzzunseen\n")
    other = TextClassificationDataModule(
        train_path=str(REPO / "data/toy_sentiment.tsv"), test_path=str(test), seed=99
    )
    other.load_state_dict(state)
    other.setup()
    assert other.info == dm.info
    x, _ = other.splits["test"].pairs[0]
    vocab = Vocabulary.from_state_dict(state["fitted"]["vocab"])
    assert vocab.decode(x.tolist())[-1] == UNK


def test_restoring_the_state_in_use_keeps_the_splits_and_another_encodes_again() -> None:
    import json

    dm = digits()
    dm.setup("fit")
    splits = dm.splits
    # the best checkpoint of the fit that just ran: its state, through the checkpoint's JSON
    dm.load_state_dict(json.loads(json.dumps(dm.state_dict())))
    dm.setup("test")
    assert dm.splits is splits  # not read and encoded a second time
    other = json.loads(json.dumps(dm.state_dict()))
    other["fitted"]["mean"] = [0.0] * len(other["fitted"]["mean"])
    dm.load_state_dict(other)
    dm.setup("test")
    assert dm.splits is not splits and dm.fitted["mean"] == other["fitted"]["mean"]


def test_label_unseen_in_training_is_an_error(tmp_path: Path) -> None:
    test = tmp_path / "test.tsv"
    test.write_text("pos\tfine\nmeh\tso so\n")
    dm = TextClassificationDataModule(
        train_path=str(REPO / "data/toy_sentiment.tsv"), test_path=str(test), seed=0
    )
    with pytest.raises(ValueError, match=r"test\.tsv:2: label 'meh' was not seen in the training"):
        dm.setup()


def test_too_long_sequence_is_an_error() -> None:
    dm = CoNLLDataModule(train_path=str(REPO / "data/toy_ner.conll"), max_length=5)
    with pytest.raises(
        ValueError, match=r"toy_ner\.conll:\d+: sequence of length \d+ is longer than max_length=5"
    ):
        dm.setup()


def test_conll_info_and_padded_tags() -> None:
    dm = CoNLLDataModule(train_path=str(REPO / "data/toy_ner.conll"), batch_size=4)
    dm.setup()
    info = dm.info
    assert info["pooling"] == "none" and info["scheme"] == "bio"  # detected
    assert set(info["label_names"]) == {"B-LOC", "B-PER", "I-LOC", "I-PER", "O"}
    x, lengths, y = next(iter(dm.val_dataloader()))
    for b, n in enumerate(lengths.tolist()):
        assert (y[b, n:] == IGNORE_INDEX).all() and (x[b, n:] == info["pad_index"]).all()
        assert (y[b, :n] >= 0).all()


def test_long_format_csv_module() -> None:
    dm = CSVSequenceDataModule(
        train_path=str(REPO / "data/toy_sequences.csv"),
        label_column="label",
        sequence_column="sequence_id",
    )
    dm.setup()
    # value and noise: the step column t is not a feature
    assert dm.info["input_size"] == 2 and dm.info["label_names"] == ["down", "up"]
    assert len(dm.splits["train"]) + len(dm.splits["val"]) + len(dm.splits["test"]) == 60


def test_adding_problem() -> None:
    dm = AddingDataModule(num_samples=50, seq_length=10, seed=3)
    dm.setup()
    x, y = dm.splits["train"].pairs[0]
    assert x.shape == (10, 2) and x[:, 1].sum() == 2
    assert x[:5, 1].sum() == 1  # one marker in each half
    torch.testing.assert_close(y, (x[:, 0] * x[:, 1]).sum().reshape(1))
    again = AddingDataModule(num_samples=50, seq_length=10, seed=3)
    again.setup()
    torch.testing.assert_close(again.splits["train"].pairs[0][0], x)
    assert dm.info["num_classes"] is None and dm.info["output_size"] == 1


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
def test_context_tagging_needs_context(scheme: str) -> None:
    dm = ContextTaggingDataModule(num_samples=300, scheme=scheme, seed=0)
    dm.setup()
    raw = dm.splits["train"].raw + dm.splits["val"].raw + dm.splits["test"].raw
    kinds: dict[str, set[str]] = {}
    for ex in raw:
        for token, tag in zip(ex.inputs, ex.target, strict=True):
            if tag != "O":
                kinds.setdefault(token, set()).add(tag.split("-")[1])
    # the same tokens are people in some sentences and brands in others
    assert sum(1 for k in kinds.values() if k == {"PER", "BRAND"}) >= 5
    if scheme == "BIOES":
        assert any(t.startswith(("S-", "E-")) for ex in raw for t in ex.target)


def test_pad_sequences_matches_a_copy_per_sequence() -> None:
    g = torch.Generator().manual_seed(0)
    cases = [
        ([torch.randint(1, 9, (n,), generator=g) for n in (3, 0, 5)], IGNORE_INDEX),
        ([torch.randn(n, 2, generator=g) for n in (2, 4)], 0.0),  # features (T, F)
        ([torch.zeros(0, dtype=torch.long)] * 2, 0),  # unlabelled pairs: empty targets
    ]
    for seqs, value in cases:
        out, lengths = pad_sequences(seqs, value)
        T = max(len(s) for s in seqs)
        expected = seqs[0].new_full((len(seqs), T, *seqs[0].shape[1:]), value)
        for i, s in enumerate(seqs):
            expected[i, : len(s)] = s
        assert out.dtype == seqs[0].dtype and torch.equal(out, expected)
        assert lengths.tolist() == [len(s) for s in seqs]


def test_pad_collate_and_buckets() -> None:
    batch = [(torch.tensor([1, 2, 3]), torch.tensor(0)), (torch.tensor([4]), torch.tensor(1))]
    x, lengths, y = PadCollate(pad_index=0)(batch)
    assert x.tolist() == [[1, 2, 3], [4, 0, 0]] and lengths.tolist() == [3, 1]
    assert y.tolist() == [0, 1]
    lengths_list = [5, 1, 4, 2, 3, 6, 1, 2]
    sampler = BucketBatchSampler(lengths_list, batch_size=2, pool=4, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(8)) and len(batches) == len(sampler)
