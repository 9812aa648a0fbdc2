"""``SequenceDataModule``: the shared recipe of every many-to-one and tagging DataModule.

Subclasses say how to read examples (:meth:`read`) and how to encode them (:meth:`fit`,
:meth:`encode`); this class splits (seeded ``torch.Generator``, stratified by label on request),
fits on the training split only, pads batches, exposes :attr:`info` and
:attr:`~SequenceDataModule.has_validation`, and saves its fitted state as plain JSON-able data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from rnnkit.data.collate import BucketBatchSampler, PadCollate
from rnnkit.data.readers import RawExample
from rnnkit.data.vocab import LabelMap, Vocabulary
from rnnkit.engine import DataModule
from rnnkit.errors import (
    ConfigError,
    EmptyDataError,
    SequenceLengthError,
    UnknownLabelError,
)


class EncodedDataset(Dataset):
    """A list of encoded ``(x, y)`` pairs plus the raw examples they came from."""

    def __init__(self, pairs: list[tuple[Tensor, Tensor]], raw: list[RawExample]) -> None:
        self.pairs = pairs
        self.raw = raw

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.pairs[i]


class SequenceDataModule(DataModule):
    """Base DataModule for ``(x, lengths, y)`` batches.

    Args:
        train_path: training file (``None`` for synthetic data).
        val_path, test_path: separate files; when missing, ``val_fraction``/``test_fraction``
            of the training file are split off with a generator seeded by ``seed``.
            ``val_fraction=0`` without ``val_path``: no validation split (``has_validation``
            is false; training runs the given epochs and tests the last checkpoint).
        stratify: split so that every part holds each label in the proportion of the file
            (see :func:`split_order`); labels must be names or numbers.
        test_every: instead of ``test_fraction``, examples ``k, 2k, 3k, ...`` of the file
            (counted from 1) are the test part, a fixed split that keeps the class mix of a
            file sorted by class (the baselines of docs/real_data.md use ``k = 5``).
        predict_path: file to predict on (labels optional), used by ``scripts/predict.py``.
        batch_size, num_workers: loader settings.
        max_length: longest sequence allowed (``None``: any); longer ones are an error.
        bucket: batch sequences of similar length together (single device only).
        seed: seed of the split generator (and of bucketing).
        encoding: text encoding of the files (a UTF-8 byte-order mark is dropped).
    """

    per_step_targets: bool = False  # tagging data sets this: one label per step
    pooling: str = "last"  # what SequenceModel should do unless told otherwise (info["pooling"])

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        predict_path: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 32,
        num_workers: int = 0,
        max_length: int | None = None,
        bucket: bool = False,
        seed: int = 0,
        encoding: str = "utf-8",
        stratify: bool = False,
        test_every: int | None = None,
    ) -> None:
        super().__init__()
        for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= frac < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {frac}")
        if test_every is not None and test_every < 2:
            raise ConfigError(f"data.test_every must be >= 2 (or null), got {test_every}")
        if test_every is not None and test_path is not None:
            raise ConfigError("data.test_every and data.test_path both set; give one of them")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.train_path = train_path
        self.val_path = val_path
        self.test_path = test_path
        self.predict_path = predict_path
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_length = max_length
        self.bucket = bucket
        self.seed = seed
        self.encoding = encoding
        self.stratify = stratify
        self.test_every = test_every
        self.fitted: dict[str, Any] | None = None  # JSON-able encoder state
        self.splits: dict[str, EncodedDataset] = {}

    # ----- what subclasses provide -----------------------------------------------------------
    def read(self, path: str, labeled: bool = True) -> list[RawExample]:
        """Read one file into raw examples."""
        raise NotImplementedError

    def read_split(self, path: str, split: str) -> list[RawExample]:
        """Read the labelled file of ``split`` (``train``, ``val``, ``test``): :meth:`read`.

        Formats that hold several splits in one file (an ``.npz`` with ``X_train`` and
        ``X_test``) override this to pick the arrays of ``split``.
        """
        return self.read(path)

    def generate(self) -> list[RawExample]:
        """Synthetic data modules create all examples here instead of reading files."""
        raise NotImplementedError(f"{type(self).__name__}: give train_path")

    def fit(self, train: list[RawExample]) -> dict[str, Any]:
        """Fit vocabularies/label maps/scalers on the training split; return JSON-able state."""
        raise NotImplementedError

    def encode(self, example: RawExample, labeled: bool = True) -> tuple[Tensor, Tensor]:
        """One raw example -> ``(x, y)`` tensors using ``self.fitted``."""
        raise NotImplementedError

    def info_from_fitted(self) -> dict[str, Any]:
        """Sizes the model and the task need, from ``self.fitted`` (see ``info``)."""
        raise NotImplementedError

    def decode_inputs(self, example: RawExample) -> str:
        """A human-readable rendering of one input, for predictions."""
        return example.source

    # ----- the shared recipe -----------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        # predicting with a restored state (a checkpoint's) needs no training file: only the
        # predict file is read
        restored_for_predict = stage == "predict" and self.fitted is not None
        if not self.splits and not restored_for_predict:
            train, val, test = self._raw_splits()
            if self.fitted is None:
                self.fitted = self.fit(train)
            self.splits = {
                "train": self._encode_all(train),
                "val": self._encode_all(val),
                "test": self._encode_all(test),
            }
        if stage == "predict" and "predict" not in self.splits:
            if self.predict_path is None:
                raise ConfigError(f"{type(self).__name__}: predict needs predict_path")
            raw = self.read(self.predict_path, labeled=False)
            self.splits["predict"] = self._encode_all(raw, labeled=False)

    def _raw_splits(self) -> tuple[list[RawExample], list[RawExample], list[RawExample]]:
        data = (
            self.read_split(self.train_path, "train")
            if self.train_path is not None
            else self.generate()
        )
        fixed_test: list[RawExample] = []
        if self.test_every:
            k = self.test_every
            data, fixed_test = [x for i, x in enumerate(data) if i % k != k - 1], data[k - 1 :: k]
        labels = [ex.target for ex in data] if self.stratify else None
        order = split_order(len(data), self.seed, labels)
        n_test = 0 if self.test_path or self.test_every else round(self.test_fraction * len(data))
        n_val = 0 if self.val_path else round(self.val_fraction * len(data))
        test = [data[i] for i in order[:n_test]]
        val = [data[i] for i in order[n_test : n_test + n_val]]
        train = [data[i] for i in order[n_test + n_val :]]
        if self.val_path:
            val = self.read_split(self.val_path, "val")
        if self.test_path:
            test = self.read_split(self.test_path, "test")
        if self.test_every:
            test = fixed_test
        if not train:
            raise EmptyDataError(f"{type(self).__name__}: the training split is empty")
        if (not val and self.val_fraction > 0) or not test:
            raise EmptyDataError(
                f"{type(self).__name__}: {len(data)} examples leave an empty "
                f"{'test' if not test else 'validation'} split; give more data, a larger "
                "val_fraction/test_fraction, or val_path/test_path"
                + (" (val_fraction=0 runs without validation)" if test else "")
            )
        return train, val, test

    @property
    def has_validation(self) -> bool:
        """Whether there is a validation split (false with ``val_fraction=0`` and no val_path)."""
        if self.splits:
            return len(self.splits["val"]) > 0
        return self.val_path is not None or self.val_fraction > 0

    def _encode_all(self, raw: list[RawExample], labeled: bool = True) -> EncodedDataset:
        pairs = []
        for example in raw:
            if self.max_length is not None and len(example.inputs) > self.max_length:
                raise SequenceLengthError(
                    f"{example.source}: sequence of length {len(example.inputs)} is longer than "
                    f"max_length={self.max_length}"
                )
            pairs.append(self.encode(example, labeled=labeled))
        return EncodedDataset(pairs, raw)

    @property
    def info(self) -> dict[str, Any]:
        """What the data tells the model and the task.

        Always has ``input_size``, ``vocab_size``, ``pad_index``, ``output_size``,
        ``num_classes``, ``label_names`` and ``pooling`` (``None`` where not applicable). Sizes
        and scalars fill ``???`` config keys; ``label_names`` is fitted state, handed to the
        task as a constructor argument and never written into the config (CONTRIBUTING, "the
        info contract").
        """
        if self.fitted is None:
            raise RuntimeError(f"{type(self).__name__}: call setup() before reading info")
        info = {
            "input_size": None,
            "vocab_size": None,
            "pad_index": None,
            "num_classes": None,
            "label_names": None,
            "pooling": "none" if self.per_step_targets else self.pooling,
        }
        info.update(self.info_from_fitted())
        return info

    def collate(self) -> PadCollate:
        pad = self.info.get("pad_index")
        return PadCollate(pad_index=pad or 0, per_step_targets=self.per_step_targets)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.splits:
            self.setup(split if split == "predict" else None)
        dataset = self.splits[split]
        common = dict(
            num_workers=self.num_workers,
            collate_fn=self.collate(),
            persistent_workers=self.num_workers > 0,
        )
        if self.bucket and shuffle:
            lengths = [len(x) for x, _ in dataset.pairs]
            sampler = BucketBatchSampler(lengths, self.batch_size, seed=self.seed)
            return DataLoader(dataset, batch_sampler=sampler, **common)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)

    def predict_examples(self) -> list[RawExample]:
        """The raw examples behind ``predict_dataloader``, in order."""
        self.setup("predict")
        return self.splits["predict"].raw

    def state_dict(self) -> dict[str, Any]:
        """Fitted vocabularies/label maps/scalers as plain data (stored in checkpoints)."""
        return {"fitted": self.fitted} if self.fitted is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; later ``setup`` encodes with it.

        A state equal to the one in use (testing the best checkpoint of the fit that just ran)
        keeps the encoded splits: reading the files again would only repeat the same work.
        """
        fitted = state_dict.get("fitted")
        if fitted is not None and fitted != self.fitted:
            self.fitted = fitted
            self.splits = {}


def split_order(n: int, seed: int, labels: Sequence[Any] | None = None) -> list[int]:
    """The order in which examples are dealt to test, validation, then training.

    A seeded random permutation of ``range(n)``. With ``labels``, stratified: the ``j``-th
    example (in random order) of a class of ``n_c`` examples gets the key ``(j + 1/2) / n_c``,
    and the examples are sorted by key (ties in random order). Any run of consecutive positions
    then holds each class in its proportion of the file, to within one example per class, so
    the test and validation parts cut from the front are stratified and no class is missing
    from a part large enough to hold it.
    """
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).tolist()
    if labels is None:
        return order
    try:
        sizes = Counter(labels[i] for i in order)
    except TypeError:
        raise ConfigError(
            "data.stratify=true needs one label (a name or number) per example"
        ) from None
    seen: Counter = Counter()
    keys = {}
    for position, i in enumerate(order):
        label = labels[i]
        keys[i] = ((seen[label] + 0.5) / sizes[label], position)
        seen[label] += 1
    return sorted(order, key=keys.__getitem__)


def unknown_label(source: str, label: Any, known: list[str]) -> ValueError:
    shown = known if len(known) <= 20 else known[:20] + ["..."]
    return UnknownLabelError(
        f"{source}: label {label!r} was not seen in the training split (known labels: {shown})"
    )


# ----- token inputs with labels: the fitted state ``{"vocab": tokens, "labels": names}`` -----
def fit_vocab_and_labels(
    train: list[RawExample], labels: Iterable[str], min_freq: int
) -> dict[str, Any]:
    """The inputs' vocabulary and the map of ``labels`` (both from the training split)."""
    vocab = Vocabulary.build((ex.inputs for ex in train), min_freq)
    return {"vocab": vocab.state_dict(), "labels": LabelMap.build(labels).names}


_VOCABULARY: dict[int, tuple[list[str], Vocabulary]] = {}


def fitted_vocabulary(fitted: dict[str, Any]) -> Vocabulary:
    """The :class:`Vocabulary` of ``fitted["vocab"]``, built once per fitted state (not once
    per example: rebuilding a 25 000-token vocabulary for each of 3 000 texts took minutes)."""
    itos = fitted["vocab"]
    hit = _VOCABULARY.get(id(itos))
    if hit is None or hit[0] is not itos:
        _VOCABULARY.clear()  # the state being encoded now; an old one is not needed again
        hit = _VOCABULARY[id(itos)] = (itos, Vocabulary.from_state_dict(itos))
    return hit[1]


def encode_tokens(fitted: dict[str, Any], tokens: Sequence[str]) -> Tensor:
    """Ids ``(T,)`` of ``tokens`` in the fitted vocabulary (unknown ones -> ``<unk>``)."""
    return torch.tensor(fitted_vocabulary(fitted).encode(tokens), dtype=torch.long)


def vocab_and_labels_info(fitted: dict[str, Any]) -> dict[str, Any]:
    """The sizes a token model and its task need from the fitted state."""
    vocab = Vocabulary.from_state_dict(fitted["vocab"])
    return {
        "vocab_size": len(vocab),
        "pad_index": vocab.pad_index,
        "num_classes": len(fitted["labels"]),
        "label_names": fitted["labels"],
        "output_size": len(fitted["labels"]),
    }
