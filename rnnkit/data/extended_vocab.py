r"""The per-example extended target vocabulary that lets a seq2seq model copy unseen tokens.

A copy model (pointer-generator, See et al. 2017; OpenNMT-py's copy attention after Gu et al.
2016) predicts over the target vocabulary of size :math:`V` *plus* the source tokens of the
example that the target vocabulary lacks. Those are numbered after the vocabulary, in order of
first appearance in the source: ``"Ábaco"`` with ``Á`` unseen in training and every other
character known gives ``oov = ["Á"]`` and the source ids ``[V, id(b), id(a), id(c), id(o)]``.

- ``source`` ids (S,): every source token's target-vocabulary id, or :math:`V + k` for the
  k-th entry of ``oov``; the model adds its copy probability at these ids, so a character never
  seen in training can still be produced (as id :math:`V + k`, rendered back as ``oov[k]``);
- ``target`` ids (n + 2,): the framed target ``<bos> y .. <eos>`` in the same numbering (a
  target token found neither in the vocabulary nor in the source stays ``<unk>``); a copy
  model is trained on these, and exact match compares decoded outputs with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.data.collate import pad_sequences
from rnnkit.data.vocab import Vocabulary


class ExtendedIds(NamedTuple):
    """One example in the extended numbering: source (S,), target (n + 2,) or empty, oov."""

    source: Tensor
    target: Tensor
    oov: tuple[str, ...]


class CopyBatch(NamedTuple):
    """A batch of :class:`ExtendedIds`: source (B, S) and target (B, T) padded with ``<pad>``,
    oov (B lists of tokens). The driver moves the tensors to the device and leaves the lists."""

    source: Tensor
    target: Tensor
    oov: list[tuple[str, ...]]


def extend(source: Sequence[str], target: Sequence[str] | None, vocab: Vocabulary) -> ExtendedIds:
    """``source`` and ``target`` tokens in ``vocab`` (the target side's) extended by the
    source tokens it lacks (see the module docstring)."""
    oov: dict[str, int] = {}
    src_ids = []
    for token in source:
        index = vocab.stoi.get(token)
        if index is None:
            index = len(vocab) + oov.setdefault(token, len(oov))
        src_ids.append(index)
    tgt_ids: list[int] = []
    if target is not None:
        known = {t: len(vocab) + k for t, k in oov.items()} | vocab.stoi
        inner = [known.get(t, vocab.unk_index) for t in target]
        tgt_ids = [vocab.bos_index, *inner, vocab.eos_index]
    return ExtendedIds(
        torch.tensor(src_ids, dtype=torch.long),
        torch.tensor(tgt_ids, dtype=torch.long),
        tuple(oov),
    )


def collate_extended(examples: Sequence[ExtendedIds], pad_index: int = 0) -> CopyBatch:
    sources, _ = pad_sequences([e.source for e in examples], pad_index)  # (B, S)
    targets, _ = pad_sequences([e.target for e in examples], pad_index)  # (B, T)
    return CopyBatch(sources, targets, [e.oov for e in examples])


def token_of(index: int, itos: Sequence[str], oov: Sequence[str]) -> str:
    """The token of an extended id: ``itos[index]``, or ``oov[index - len(itos)]``."""
    return itos[index] if index < len(itos) else oov[index - len(itos)]
