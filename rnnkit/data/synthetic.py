"""Seeded synthetic tasks for many-to-one and tagging: the adding problem, context tagging."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rnnkit.data.base import SequenceDataModule
from rnnkit.data.conll import TaggingDataModule
from rnnkit.data.readers import RawExample
from rnnkit.data.tagged_files import read_conll


class AddingDataModule(SequenceDataModule):
    r"""The adding problem (Hochreiter & Schmidhuber 1997): long-range many-to-one regression.

    Each step carries two features, a value :math:`v_t \sim U(0, 1)` and a marker
    :math:`m_t \in \{0, 1\}`; exactly two steps are marked, one in each half of the sequence.
    The target is :math:`\sum_t m_t v_t`. Predicting the mean (1.0) scores MSE ~ 0.167; a model
    must carry the first marked value across ``seq_length / 2`` steps to do better.

    Args:
        num_samples: sequences generated (split into train/val/test by the fractions).
        seq_length: T, steps per sequence.
        **kwargs: split fractions, loader settings and ``seed`` of :class:`SequenceDataModule`.
    """

    def __init__(self, num_samples: int = 4000, seq_length: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if seq_length < 2:
            raise ValueError(f"seq_length must be >= 2, got {seq_length}")
        self.num_samples = num_samples
        self.seq_length = seq_length

    def generate(self) -> list[RawExample]:
        g = torch.Generator().manual_seed(self.seed)
        N, T = self.num_samples, self.seq_length
        values = torch.rand(N, T, generator=g)  # (N, T)
        first = torch.randint(0, T // 2, (N,), generator=g)
        second = torch.randint(T // 2, T, (N,), generator=g)
        markers = torch.zeros(N, T)
        markers[torch.arange(N), first] = 1.0
        markers[torch.arange(N), second] = 1.0
        x = torch.stack([values, markers], dim=-1)  # (N, T, 2)
        y = (values * markers).sum(1)  # (N,)
        # rows stay one (T, 2) tensor each: 4000 x 300 Python floats would cost seconds to make
        return [RawExample(x[i], float(y[i]), f"adding[{i}]") for i in range(N)]

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        return {"input_size": 2}

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        x = torch.as_tensor(example.inputs, dtype=torch.float32)  # (T, 2)
        target = example.target if example.target is not None else 0.0
        return x, torch.tensor([float(target)])  # (1,)

    def info_from_fitted(self) -> dict[str, Any]:
        return {"input_size": 2, "output_size": 1, "num_classes": None, "label_names": None}

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        raise ValueError("AddingDataModule generates its data; it reads no files")


# Names that are people in some sentences and brands in others: only the context tells.
AMBIGUOUS = ["li ning", "jordan", "lacoste", "fila", "amber", "mike", "ellesse", "diesel", "lotto"]
PERSON = [  # {E}: the entity; the cue is on the left, on the right, or both
    "my name is {E}",
    "i met {E} yesterday",
    "yesterday {E} called me",
    "{E} said hello to me",
    "{E} was born in march",
    "{E} is my best friend",
    "this is {E} speaking",
    "we visited {E} at home",
    "{E} smiled at her brother",
]
BRAND = [
    "my shoes are {E}",
    "i bought {E} shoes",
    "{E} shoes are cheap",
    "the {E} store is closed",
    "{E} sells running shoes",
    "she wears {E} jackets",
    "{E} opened a new store",
    "the new {E} sneakers sold out",
    "{E} jackets are on sale",
]
MIXED = ["{P} bought {B} shoes", "{P} likes {B} jackets", "{B} shoes fit {P} well"]


class ContextTaggingDataModule(TaggingDataModule):
    """Tag people and brands whose names are the same tokens (a brand named after a person).

    "jordan" is ``B-PER`` in "jordan said hello to me" and ``B-BRAND`` in "jordan shoes are
    cheap": the tag depends on words before *or after* the name, so a bidirectional tagger
    can be right everywhere and a left-to-right one cannot be right on the first word.

    Args:
        num_samples: sentences generated.
        scheme: ``"bio"`` or ``"bioes"`` (any case; ``auto`` gives BIO).
        **kwargs: split fractions, loader settings and ``seed``.
    """

    def __init__(self, num_samples: int = 2000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.num_samples = num_samples

    def _entity(self, g: torch.Generator, kind: str) -> tuple[list[str], list[str]]:
        words = AMBIGUOUS[int(torch.randint(len(AMBIGUOUS), (1,), generator=g))].split()
        if self.scheme == "bioes" and len(words) == 1:
            return words, [f"S-{kind}"]
        tags = [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        if self.scheme == "bioes":
            tags[-1] = f"E-{kind}"
        return words, tags

    def generate(self) -> list[RawExample]:
        g = torch.Generator().manual_seed(self.seed)
        templates = [(t, "PER") for t in PERSON] + [(t, "BRAND") for t in BRAND]
        templates += [(t, "MIX") for t in MIXED]
        examples = []
        for i in range(self.num_samples):
            template, kind = templates[int(torch.randint(len(templates), (1,), generator=g))]
            tokens: list[str] = []
            tags: list[str] = []
            for word in template.split():
                slot = {"{E}": kind, "{P}": "PER", "{B}": "BRAND"}.get(word)
                if slot is None:
                    tokens.append(word)
                    tags.append("O")
                else:
                    words, entity_tags = self._entity(g, slot)
                    tokens += words
                    tags += entity_tags
            examples.append(RawExample(tokens, tags, f"context[{i}]"))
        return examples

    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        # prediction input: CoNLL lines (token alone, or token<TAB>tag)
        return read_conll(path, self.scheme, "\t", 2, self.lowercase, labeled=labeled)
