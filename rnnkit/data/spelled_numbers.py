"""Spelled-out numbers: a seeded vector-to-sequence task (one vector in, a sequence out, the
shape of Vinyals et al. 2015's image captioner).

Each example is one integer ``n`` in ``[0, max_number]``. The model sees only a vector: the
one-hot code of each of its decimal digits (``042`` -> three one-hots of width 10, concatenated).
It must write ``n`` in English words, character by character: ``42 -> "forty-two"``,
``342 -> "three hundred forty-two"``. Numbers are split at random (seeded) into train/val/test,
so validation and test numbers were never seen: to spell them the model has to compose the
digits' words, not recall whole strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.data.text_corpus import check_fractions, unigram_perplexity
from rnnkit.data.vocab import VocabStateMixin, Vocabulary
from rnnkit.engine import DataModule

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n: int) -> str:
    """English words for ``0 <= n < 1_000_000`` (American style, no "and")."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"spell: n must be in [0, 999999], got {n}")
    if n < 20:
        return ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS[tens] + (f"-{ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{ONES[hundreds]} hundred" + (f" {spell(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{spell(thousands)} thousand" + (f" {spell(rest)}" if rest else "")


def digit_code(n: int, num_digits: int) -> Tensor:
    """One-hot code of each decimal digit of ``n`` (zero-padded), ``(10 * num_digits,)``."""
    digits = torch.tensor([int(d) for d in str(n).zfill(num_digits)])
    return torch.nn.functional.one_hot(digits, 10).flatten().float()


class SpelledNumbersDataModule(VocabStateMixin, DataModule):
    """Batches ``(x, lengths, y, cond)``: ``x = <bos> + chars``, ``y = chars + <eos>`` (B, T),
    and ``cond (B, 10 * digits)`` the digit code of the number.

    Args:
        max_number: the largest number (``< 1_000_000``).
        val_fraction, test_fraction: shares of the numbers held out.
        batch_size: numbers per batch.
        seed: seeds the split.
        prompts: numbers ``predict_dataloader`` asks for, as ints or digit strings (default: the
            test numbers); ``scripts/predict.py prompt=342`` sets one.

    ``info`` (after :meth:`setup`): ``vocab_size``, ``pad_index``, ``bos_index``, ``eos_index``,
    ``vocab``, ``separator`` (``""``), ``cond_size``, ``max_length`` (longest target) and
    ``unigram_perplexity``.
    """

    #: the validation part is never empty (:func:`check_fractions` refuses 0), see train.py
    has_validation = True

    def __init__(
        self,
        max_number: int = 999,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 64,
        seed: int = 0,
        prompts: Sequence[int | str] | None = None,
    ) -> None:
        super().__init__()
        if not 10 <= max_number < 1_000_000:
            raise ValueError(f"max_number must be in [10, 999999], got {max_number}")
        check_fractions(val_fraction, test_fraction)
        self.save_hyperparameters()
        self.num_digits = len(str(max_number))
        self.vocab: Vocabulary | None = None
        self.numbers: dict[str, list[int]] | None = None
        self.datasets: dict[str, TensorDataset] = {}
        self.info: dict[str, Any] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.numbers is None:
            hp = self.hparams
            g = torch.Generator().manual_seed(hp.seed)
            order = torch.randperm(hp.max_number + 1, generator=g).tolist()
            n_val = int(len(order) * hp.val_fraction)
            n_test = int(len(order) * hp.test_fraction)
            n_train = len(order) - n_val - n_test
            self.numbers = {
                "train": order[:n_train],
                "val": order[n_train : n_train + n_val],
                "test": order[n_train + n_val :],
            }
        if self.vocab is None:
            self.vocab = Vocabulary.build(spell(n) for n in self.numbers["train"])
        self._encode()

    def _encode(self) -> None:
        vocab = self.vocab
        self.datasets = {name: self._dataset(nums) for name, nums in self.numbers.items()}
        targets = {
            name: [i for n in nums for i in vocab.encode(spell(n), eos=True)]
            for name, nums in self.numbers.items()
        }
        self.info = {
            "vocab_size": len(vocab),
            "pad_index": vocab.pad_index,
            "bos_index": vocab.bos_index,
            "eos_index": vocab.eos_index,
            "vocab": list(vocab.itos),
            "separator": "",
            "cond_size": 10 * self.num_digits,
            "max_length": max(int(ds.tensors[1].max()) for ds in self.datasets.values()),
            "unigram_perplexity": {
                name: unigram_perplexity(targets["train"], targets[name], len(vocab))
                for name in ("val", "test")
            },
        }

    def _dataset(self, numbers: Sequence[int]) -> TensorDataset:
        vocab = self.vocab
        seqs = [vocab.encode(spell(n)) for n in numbers]
        lengths = torch.tensor([len(s) + 1 for s in seqs])
        T = int(lengths.max())
        x = torch.full((len(seqs), T), vocab.pad_index)
        y = torch.full((len(seqs), T), vocab.pad_index)
        for i, s in enumerate(seqs):
            x[i, : len(s) + 1] = torch.tensor([vocab.bos_index] + s)
            y[i, : len(s) + 1] = torch.tensor(s + [vocab.eos_index])
        cond = torch.stack([digit_code(n, self.num_digits) for n in numbers])  # (N, 10 * D)
        return TensorDataset(x, lengths, y, cond)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["train"], batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["val"], batch_size=self.hparams.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["test"], batch_size=self.hparams.batch_size)

    def predict_dataloader(self) -> DataLoader:
        """Batches ``(prompt (B, 1) = <bos>, lengths (B,), cond (B, C))``."""
        prompts = self.hparams.prompts
        numbers = []
        for p in prompts if prompts is not None else self.numbers["test"]:
            if not str(p).strip().isdigit() or not 0 <= int(p) <= self.hparams.max_number:
                raise ValueError(
                    f"prompts: {p!r} is not a whole number in [0, {self.hparams.max_number}]"
                )
            numbers.append(int(p))
        prompt = torch.full((len(numbers), 1), self.vocab.bos_index)
        lengths = torch.ones(len(numbers), dtype=torch.long)
        cond = torch.stack([digit_code(n, self.num_digits) for n in numbers])
        return DataLoader(TensorDataset(prompt, lengths, cond), batch_size=self.hparams.batch_size)
