"""``TaggingTask``: one label per step (named entities, parts of speech), optional CRF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from rnnkit.data.collate import IGNORE_INDEX
from rnnkit.models.crf import CRF
from rnnkit.models.pooling import valid_mask
from rnnkit.tasks.optim import build_optimizers
from rnnkit.tasks.spans import SpanF1


class TaggingTask(L.LightningModule):
    """Train a model that scores every step: ``model(x, lengths) -> (B, T, C)``.

    Loss: token cross-entropy over valid steps, or the CRF's negative log-likelihood
    (``crf=True``, decoding by Viterbi). Metrics: token accuracy ``acc`` (torchmetrics, padding
    ignored) and entity span ``f1`` exactly as conlleval computes it; ``val/f1_best``.

    Args:
        model: an already built per-step network (``SequenceModel`` with ``pooling="none"``).
        optimizer: partial optimizer. scheduler: partial scheduler or ``None``.
        loss: override the token loss (ignored with ``crf=True``).
        num_tags: C, the tag set size.
        label_names: tag names in index order (``B-PER``, ``O``, ...).
        crf: add a linear-chain CRF on top of the model's scores.
        scheme: ``"BIO"`` or ``"BIOES"``, the tag scheme (documented; chunks follow conlleval).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        loss: nn.Module | None = None,
        num_tags: int = 2,
        label_names: list[str] | None = None,
        crf: bool = False,
        scheme: str = "BIO",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model", "loss"])
        if label_names is not None and len(label_names) != num_tags:
            raise ValueError(f"TaggingTask: {len(label_names)} label_names for {num_tags} tags")
        if scheme not in ("BIO", "BIOES"):
            raise ValueError(f"TaggingTask: scheme must be 'BIO' or 'BIOES', got {scheme!r}")
        self.model = model
        self.label_names = list(label_names) if label_names else [str(i) for i in range(num_tags)]
        self.crf = CRF(num_tags) if crf else None
        self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_loss", MeanMetric())
            setattr(
                self,
                f"{stage}_acc",
                MulticlassAccuracy(num_tags, average="micro", ignore_index=IGNORE_INDEX),
            )
            setattr(self, f"{stage}_f1", SpanF1())
        self.val_f1_best = MaxMetric()

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
        paths = self.decode(scores.detach(), mask)
        pred = torch.full_like(y, IGNORE_INDEX)
        for b, path in enumerate(paths):
            pred[b, : len(path)] = torch.tensor(path, device=y.device)
        getattr(self, f"{stage}_loss")(loss)
        getattr(self, f"{stage}_acc")(pred.masked_fill(~mask, 0), y)
        names = self.label_names
        gold_tags = [[names[i] for i in row[m].tolist()] for row, m in zip(y, mask, strict=True)]
        pred_tags = [[names[i] for i in path] for path in paths]
        getattr(self, f"{stage}_f1")(pred_tags, gold_tags)
        kwargs = dict(on_step=False, on_epoch=True, batch_size=y.shape[0])
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=True, **kwargs)
        self.log(f"{stage}/acc", getattr(self, f"{stage}_acc"), **kwargs)
        self.log(f"{stage}/f1", getattr(self, f"{stage}_f1"), prog_bar=stage != "train", **kwargs)
        return loss

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

    def on_train_start(self) -> None:
        self.val_loss.reset()
        self.val_acc.reset()
        self.val_f1.reset()
        self.val_f1_best.reset()

    def on_validation_epoch_end(self) -> None:
        self.val_f1_best(self.val_f1.compute())
        self.log("val/f1_best", self.val_f1_best.compute(), sync_dist=True, prog_bar=True)

    def configure_optimizers(self) -> Any:
        return build_optimizers(self, self.hparams.optimizer, self.hparams.scheduler)
