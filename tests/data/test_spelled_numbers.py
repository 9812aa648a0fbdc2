"""SpelledNumbersDataModule: the seeded vector-to-sequence task."""

from __future__ import annotations

import pytest
import torch

from rnnkit.data.spelled_numbers import SpelledNumbersDataModule, digit_code, spell


@pytest.mark.parametrize(
    "n,words",
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty-two"),
        (100, "one hundred"),
        (342, "three hundred forty-two"),
        (7015, "seven thousand fifteen"),
        (999_999, "nine hundred ninety-nine thousand nine hundred ninety-nine"),
    ],
)
def test_spell(n, words):
    assert spell(n) == words


def test_digit_code_is_one_hot_per_digit():
    code = digit_code(42, 3)  # "042"
    assert code.shape == (30,) and code.sum() == 3
    assert code.view(3, 10).argmax(-1).tolist() == [0, 4, 2]


def test_batches_splits_and_info():
    dm = SpelledNumbersDataModule(max_number=199, batch_size=8, seed=3)
    dm.setup()
    sets = [set(dm.numbers[k]) for k in ("train", "val", "test")]
    assert sum(map(len, sets)) == 200 and set.union(*sets) == set(range(200))
    x, lengths, y, cond = next(iter(dm.val_dataloader()))
    n = dm.numbers["val"][0]
    vocab = dm.vocab
    assert x[0, 0] == vocab.bos_index and y[0, lengths[0] - 1] == vocab.eos_index
    assert "".join(vocab.decode(y[0].tolist())) == spell(n)
    assert torch.equal(x[0, 1 : lengths[0]], y[0, : lengths[0] - 1])  # shifted by one
    assert (y[0, lengths[0] :] == vocab.pad_index).all()
    assert torch.equal(cond[0], digit_code(n, 3))
    assert dm.info["cond_size"] == 30 and dm.info["max_length"] == len(spell(177)) + 1
    again = SpelledNumbersDataModule(max_number=199, seed=3)
    again.setup()
    assert again.numbers == dm.numbers  # seeded


def test_predict_batches_and_state_round_trip():
    dm = SpelledNumbersDataModule(max_number=99, prompts=[7, "42"])
    dm.setup()
    prompt, lengths, cond = next(iter(dm.predict_dataloader()))
    assert prompt.tolist() == [[dm.vocab.bos_index]] * 2 and lengths.tolist() == [1, 1]
    assert torch.equal(cond[1], digit_code(42, 2))
    restored = SpelledNumbersDataModule(max_number=99)
    restored.load_state_dict(dm.state_dict())
    restored.setup()
    assert restored.vocab.itos == dm.vocab.itos


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_number"):
        SpelledNumbersDataModule(max_number=5)
    with pytest.raises(ValueError, match="val_fraction"):
        SpelledNumbersDataModule(val_fraction=0.0)
    with pytest.raises(ValueError, match="spell"):
        spell(-1)
    for bad in (100, "4x", -3):
        dm = SpelledNumbersDataModule(max_number=99, prompts=[bad])
        dm.setup()
        with pytest.raises(ValueError, match=r"prompts: .* is not a whole number in \[0, 99\]"):
            dm.predict_dataloader()
