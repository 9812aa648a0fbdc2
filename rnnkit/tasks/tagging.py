"""``TaggingTask``: one label per step (named entities, parts of speech), optional CRF."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics.classification import MulticlassAccuracy

from rnnkit.data.collate import IGNORE_INDEX
from rnnkit.models.crf import CRF
from rnnkit.models.pooling import valid_mask
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, mean_metric, merge, per_stage, scored_stages
from rnnkit.tasks.spans import SpanF1


class TaggingTask(Task):
    """Train a model that scores every step: ``model(x, lengths) -> (B, T, C)``.

    Loss: token cross-entropy over valid steps, or the CRF's negative log-likelihood
    (``crf=True``, decoding by Viterbi). Metrics of the decoded tags: token accuracy ``acc``
    (padding ignored) and entity span ``f1`` exactly as conlleval computes it; ``val/f1_best``.
    Training batches log only the loss unless ``train_metrics``: scoring them means decoding
    every batch (Viterbi with a CRF) and counting spans on the host, work nobody reads.

    Args:
        model: an already built per-step network (``SequenceModel`` with ``pooling="none"``).
        optimizer: partial optimizer. scheduler: partial scheduler or ``None``.
        loss: override the token loss (ignored with ``crf=True``).
        num_tags: C, the tag set size.
        label_names: tag names in index order (``B-PER``, ``O``, ...); data state, from the
            data's label map.
        crf: add a linear-chain CRF on top of the model's scores.
        scheme: ``"BIO"`` or ``"BIOES"``, the tag scheme (documented; chunks follow conlleval).
        train_metrics: also log ``train/acc`` and ``train/f1``.
        monitor, monitor_mode: the metric that selects the best checkpoint (:class:`Task`).
    """

    data_state = ("label_names",)

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        *,
        num_tags: int,
        label_names: Sequence[str] | None = None,
        crf: bool = False,
        scheme: str = "BIO",
        train_metrics: bool = False,
        monitor: str = "val/f1",
        monitor_mode: str = "max",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        if label_names is not None and len(label_names) != num_tags:
            raise ValueError(f"TaggingTask: {len(label_names)} label_names for {num_tags} tags")
        if scheme not in ("BIO", "BIOES"):
            raise ValueError(f"TaggingTask: scheme must be 'BIO' or 'BIOES', got {scheme!r}")
        self.model = model
        self.label_names = list(label_names) if label_names else [str(i) for i in range(num_tags)]
        self.crf = CRF(num_tags) if crf else None
        self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        scores = {
            "acc": lambda: MulticlassAccuracy(
                num_tags, average="micro", ignore_index=IGNORE_INDEX, validate_args=False
            ),
            "f1": SpanF1,
        }
        self.metrics = StageMetrics(
            merge(
                per_stage({"loss": mean_metric}), per_stage(scores, scored_stages(train_metrics))
            ),
            best=("f1", "max"),
            prog_bar=["f1"],
        )

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> list[list[str]]:
        """Decoded tag names of every sequence (its valid steps only)."""
        scores = self.model(x, lengths)  # (B, T, C)
        mask = valid_mask(lengths, x.shape[0], x.shape[1], scores.device)
        return [[self.label_names[i] for i in seq] for seq in self.decode(scores, mask)]

    def decode(self, scores: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tag ids per sequence: Viterbi with a CRF, else argmax per step."""
        if self.crf is not None:
            return self.crf.decode(scores, mask)
        best = scores.argmax(-1)  # (B, T)
        return [row[: int(n)].tolist() for row, n in zip(best, mask.sum(1), strict=True)]

    def model_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, lengths, y = batch
        scores = self.model(x, lengths)  # (B, T, C)
        mask = valid_mask(lengths, x.shape[0], x.shape[1], scores.device) & (y != IGNORE_INDEX)
        if self.crf is not None:
            loss = self.crf(scores, y, mask)
        else:
            loss = self.loss_fn(scores.reshape(-1, scores.shape[-1]), y.reshape(-1))
        return loss, scores, mask

    def _shared_step(self, batch, stage: str) -> Tensor:
        loss, scores, mask = self.model_step(batch)
        y = batch[2]
        B = y.shape[0]
        self.metrics.update(self, stage, "loss", loss.detach(), batch_size=B)
        if self.metrics.wants(stage, "f1"):
            self._score(scores.detach(), mask, y, stage)
        return loss

    def _score(self, scores: Tensor, mask: Tensor, y: Tensor, stage: str) -> None:
        """Token accuracy and span F1 of the decoded tags of one batch."""
        paths = self.decode(scores, mask)
        pred = torch.full_like(y, IGNORE_INDEX)
        for b, path in enumerate(paths):
            pred[b, : len(path)] = torch.tensor(path, device=y.device)
        B = y.shape[0]
        self.metrics.update(self, stage, "acc", pred.masked_fill(~mask, 0), y, batch_size=B)
        names = self.label_names
        gold_tags = [[names[i] for i in row[m].tolist()] for row, m in zip(y, mask, strict=True)]
        pred_tags = [[names[i] for i in path] for path in paths]
        self.metrics.update(self, stage, "f1", pred_tags, gold_tags, batch_size=B)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> list[list[str]]:
        """Tag names per sequence, one per valid step."""
        x, lengths, _ = batch
        return self(x, lengths)

    def format_predictions(self, predictions: Sequence[list[str]], datamodule) -> list[str]:
        """``token<TAB>tag`` lines, CoNLL-style, with a blank line after each sentence."""
        lines = []
        for example, tags in zip(datamodule.predict_examples(), predictions, strict=True):
            tokens = datamodule.decode_inputs(example)
            lines += [f"{token}\t{tag}" for token, tag in zip(tokens, tags, strict=True)]
            lines.append("")
        return lines
