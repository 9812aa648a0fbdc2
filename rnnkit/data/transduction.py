"""Seeded synthetic transduction tasks for seq2seq: reversal, sorting, date normalisation.

Each task maps a source string to a target string of a different (or equal) length:

- ``reverse``: ``"kbfa" -> "afbk"``. Easy for attention (a monotone alignment), hard for a
  single context vector once sources are long: the first target token depends on the last
  source token and the last on the first.
- ``sort``: ``"kbfa" -> "abfk"``: the target is a multiset of the source, in order.
- ``dates``: real structure, unaligned: ``"march 3 2021"``, ``"3 march 2021"``,
  ``"mar 3, 2021"``, ``"3/03/2021"`` (day/month/year) and ``"2021.03.03"`` all become
  ``"2021-03-03"``. Month names must be read as words, days padded, fields reordered.

Examples are generated with a ``random.Random`` seeded by ``seed``; sources are unique, so no
source appears in two splits (the base class splits them with its own seeded generator).
"""

from __future__ import annotations

import calendar
import random
import string
from collections.abc import Callable
from typing import Any

from rnnkit.data.pairs import PairsDataModule
from rnnkit.data.readers import RawExample

MONTHS = [name.lower() for name in calendar.month_name[1:]]  # "january" ...


def reverse_pair(rng: random.Random, length: int, alphabet: str) -> tuple[str, str]:
    source = "".join(rng.choice(alphabet) for _ in range(length))
    return source, source[::-1]


def sort_pair(rng: random.Random, length: int, alphabet: str) -> tuple[str, str]:
    source = "".join(rng.choice(alphabet) for _ in range(length))
    return source, "".join(sorted(source))


def date_pair(rng: random.Random, length: int = 0, alphabet: str = "") -> tuple[str, str]:
    """A random date 1950-2049 in one of five surface forms -> ISO ``yyyy-mm-dd``."""
    year, month = rng.randint(1950, 2049), rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    name = MONTHS[month - 1]
    forms = [
        f"{name} {day} {year}",
        f"{day} {name} {year}",
        f"{name[:3]} {day}, {year}",
        f"{day}/{month:02d}/{year}",
        f"{year}.{month:02d}.{day:02d}",
    ]
    return rng.choice(forms), f"{year}-{month:02d}-{day:02d}"


TASKS: dict[str, Callable[[random.Random, int, str], tuple[str, str]]] = {
    "reverse": reverse_pair,
    "sort": sort_pair,
    "dates": date_pair,
}


class TransductionDataModule(PairsDataModule):
    """Seeded synthetic pairs (see the module docstring), character tokens on both sides.

    Args:
        task: ``"reverse"``, ``"sort"`` or ``"dates"``.
        num_examples: distinct pairs generated (split by ``val_fraction``/``test_fraction``).
        min_length, max_length: source length range of ``reverse`` and ``sort`` (inclusive).
        num_symbols: alphabet size of ``reverse`` and ``sort`` (the first letters a, b, ...).
        **kwargs: ``val_fraction``, ``test_fraction``, ``batch_size``, ``bucket``, ``seed``,
            ``predict_path`` ... of :class:`PairsDataModule`.
    """

    def __init__(
        self,
        task: str = "reverse",
        num_examples: int = 5000,
        min_length: int = 4,
        max_length: int = 12,
        num_symbols: int = 10,
        **kwargs: Any,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        if not 1 <= min_length <= max_length:
            raise ValueError(
                f"need 1 <= min_length <= max_length, got {min_length} and {max_length}"
            )
        if not 1 <= num_symbols <= 26:
            raise ValueError(f"num_symbols must be in [1, 26], got {num_symbols}")
        if num_examples < 3:
            raise ValueError(f"num_examples must be >= 3 (train/val/test), got {num_examples}")
        # generated sources are at most max_length long (dates: at most 17 characters)
        kwargs.setdefault("max_length", None)
        super().__init__(source_tokenizer="char", target_tokenizer="char", **kwargs)
        self.save_hyperparameters()
        self.task = task
        self.num_examples = num_examples
        self.min_length, self.max_source_length = min_length, max_length
        self.alphabet = string.ascii_lowercase[:num_symbols]

    def generate(self) -> list[RawExample]:
        rng = random.Random(self.seed)
        make = TASKS[self.task]
        pairs: dict[str, str] = {}
        attempts = 0
        while len(pairs) < self.num_examples:
            attempts += 1
            if attempts > 20 * self.num_examples:
                raise ValueError(
                    f"{self.task}: only {len(pairs)} distinct sources exist for these settings, "
                    f"fewer than num_examples={self.num_examples}"
                )
            length = rng.randint(self.min_length, self.max_source_length)
            source, target = make(rng, length, self.alphabet)
            pairs.setdefault(source, target)
        return [
            RawExample(list(source), list(target), f"{self.task}[{i}]")
            for i, (source, target) in enumerate(pairs.items())
        ]
