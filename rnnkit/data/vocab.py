"""``Vocabulary``: tokens <-> indices, fitted on the training split, stored as plain data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocabulary:
    """A token list whose positions are the indices; ``<pad>, <unk>, <bos>, <eos>`` first.

    The specials always sit at 0, 1, 2, 3 (``pad_index`` ... ``eos_index``), so a source and a
    target vocabulary agree on them. Ordinary tokens follow by decreasing frequency, ties in
    first-seen order, so the same training data always gives the same indices.

    Args:
        tokens: the ordinary tokens, in index order (specials are added in front).
    """

    pad_index, unk_index, bos_index, eos_index = 0, 1, 2, 3

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self.itos: list[str] = list(SPECIALS)
        for token in tokens:
            if token not in SPECIALS:
                self.itos.append(token)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("Vocabulary: tokens must be unique")

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_freq: int = 1) -> Vocabulary:
        """Every token seen at least ``min_freq`` times in ``sequences`` (the training split)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        counts = Counter(token for seq in sequences for token in seq)
        kept = [token for token, n in counts.most_common() if n >= min_freq]
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = False) -> list[int]:
        """Indices of ``tokens`` (unknown ones -> ``<unk>``), optionally framed."""
        ids = [self.stoi.get(token, self.unk_index) for token in tokens]
        return ([self.bos_index] if bos else []) + ids + ([self.eos_index] if eos else [])

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """Tokens of ``ids``; with ``strip``, stop at ``<eos>`` and drop ``<bos>``/``<pad>``."""
        tokens = []
        for i in ids:
            i = int(i)
            if strip and i == self.eos_index:
                break
            if strip and i in (self.pad_index, self.bos_index):
                continue
            tokens.append(self.itos[i] if 0 <= i < len(self.itos) else UNK)
        return tokens

    def state_dict(self) -> list[str]:
        """The plain (JSON-able) data that restores this vocabulary: its token list."""
        return list(self.itos)

    @classmethod
    def from_state_dict(cls, itos: Sequence[str]) -> Vocabulary:
        """Inverse of :meth:`state_dict`."""
        if list(itos[: len(SPECIALS)]) != list(SPECIALS):
            raise ValueError(
                f"Vocabulary: a stored vocabulary must start with {list(SPECIALS)}, "
                f"got {list(itos[:4])}"
            )
        return cls(itos[len(SPECIALS) :])


class VocabStateMixin:
    """``state_dict``/``load_state_dict`` of a DataModule whose fitted state is ``self.vocab``.

    The vocabulary travels as plain data. A driver may restore it after ``setup()`` (Lightning
    does), so when datasets already exist they are built again (``self._encode()``) with the
    restored one. List it before :class:`rnnkit.engine.DataModule` among the bases.
    """

    vocab: Vocabulary | None
    datasets: dict

    def state_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab.state_dict()} if self.vocab is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "vocab" not in state_dict:
            return
        self.vocab = Vocabulary.from_state_dict(state_dict["vocab"])
        if self.datasets:  # restored after setup(): encode again
            self._encode()


class LabelMap:
    """Class (or tag) names <-> indices; plain data (its ``names`` list) in checkpoints.

    Args:
        names: the label names in index order (unique).
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = [str(n) for n in names]
        self.index = {name: i for i, name in enumerate(self.names)}
        if len(self.index) != len(self.names):
            raise ValueError(f"LabelMap: label names must be unique, got {self.names}")

    @classmethod
    def build(cls, labels: Iterable[str]) -> LabelMap:
        """The distinct labels of the training split, sorted (the same labels, the same map)."""
        return cls(sorted({str(label) for label in labels}))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, label: object) -> bool:
        return str(label) in self.index
