"""``TaggingTask``: one label per step (parts of speech, chunks, named entities), optional CRF."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from rnnkit.data.collate import IGNORE_INDEX
from rnnkit.data.tag_schemes import is_span_scheme, normalize_scheme
from rnnkit.errors import ConfigError
from rnnkit.metrics import Mean
from rnnkit.models.crf import CRF
from rnnkit.models.pooling import valid_mask
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, merge, per_stage, scored_stages
from rnnkit.tasks.spans import SpanF1, prf

log = logging.getLogger(__name__)


class TaggingTask(Task):
    """Train a model that scores every step: ``model(x, lengths) -> (B, T, C)``.

    Loss: token cross-entropy over valid steps, or the CRF's negative log-likelihood
    (``crf=True``, decoding by Viterbi). Metrics of the decoded tags: token accuracy ``acc``
    (padding ignored); with a span scheme (``bio``, ``bioes``) also entity span ``f1`` exactly
    as conlleval computes it. ``score`` is the one to select checkpoints on (``val/score`` in
    ``configs/task/tagging.yaml``, ``val/score_best``): span F1 for span schemes, token
    accuracy for plain tags. The test split also gets a per-tag report (precision, recall, F1,
    support of every tag, in the log and in :attr:`tag_report`).

    Tags the training split never had (ids ``>= num_tags``, named after the training tags in
    ``label_names``) are errors in every metric; the loss skips their tokens (cross-entropy)
    or their sentences (CRF: a path through an unknown tag has no probability).
    Training batches log only the loss unless ``train_metrics``: scoring them means decoding
    every batch (Viterbi with a CRF) and counting spans on the host, work nobody reads.

    Args:
        model: an already built per-step network (``SequenceModel`` with ``pooling="none"``).
        optimizer: partial optimizer. scheduler: partial scheduler or ``None``.
        loss: override the token loss (ignored with ``crf=True``).
        num_tags: C, the tags the model predicts (the training tags).
        label_names: tag names in index order, the ``num_tags`` training tags first, then any
            evaluation-only tags; data state, from the data's label map.
        crf: add a linear-chain CRF on top of the model's scores.
        scheme: ``plain``, ``bio`` or ``bioes`` (any case); data state (the data detects it).
        train_metrics: also log ``train/acc`` (and ``train/f1``).
        pretrained_embeddings: ``(table (V, D), found (V,))`` from the data's ``vectors``
            file, loaded into the model's :class:`rnnkit.models.WordEmbedder`; data state.
        monitor, monitor_mode: the metric that selects checkpoints (``val/score``, ``max``).
    """

    data_state = ("label_names", "scheme", "pretrained_embeddings")

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
        scheme: str = "bio",
        train_metrics: bool = False,
        pretrained_embeddings: tuple[Tensor, Tensor] | None = None,
        monitor: str = "val/score",
        monitor_mode: str = "max",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        if label_names is not None and len(label_names) < num_tags:
            raise ValueError(f"TaggingTask: {len(label_names)} label_names for {num_tags} tags")
        self.scheme = normalize_scheme(scheme, key="task.scheme")
        self.model = model
        self.num_tags = num_tags
        self.label_names = list(label_names) if label_names else [str(i) for i in range(num_tags)]
        if pretrained_embeddings is not None:
            embedder = getattr(model, "embedding", None)
            if not hasattr(embedder, "load_vectors"):
                raise ConfigError(
                    "data.vectors needs a model with a word embedder (model=tagger, or "
                    "model.embedder=rnnkit.models.WordEmbedder)"
                )
            embedder.load_vectors(*pretrained_embeddings)
        self.crf = CRF(num_tags) if crf else None
        self.loss_fn = loss if loss is not None else nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        spans = is_span_scheme(self.scheme)
        scores = {"acc": Mean, "score": SpanF1 if spans else Mean}
        if spans:
            scores["f1"] = SpanF1
        self.metrics = StageMetrics(
            merge(per_stage({"loss": Mean}), per_stage(scores, scored_stages(train_metrics))),
            best=("score", "max"),
            prog_bar=["score"],
        )
        self.tag_report: dict[str, dict[str, float]] = {}
        self._tag_counts: Tensor | None = None  # (3, names): gold, predicted, correct

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> list[list[str]]:
        """Decoded tag names of every sequence (its valid steps only)."""
        scores = self.model(x, lengths)  # (B, T, C)
        mask = valid_mask(lengths, x.shape[0], x.shape[1], scores.device)
        return self.tag_names(self.best_tags(scores, mask), mask)

    def tag_names(self, ids: Tensor, mask: Tensor) -> list[list[str]]:
        """The names of ``ids (B, T)`` at the valid steps of ``mask`` (valid steps first)."""
        names = self.label_names
        rows, lengths = ids.tolist(), mask.sum(1).tolist()
        return [[names[i] for i in row[:n]] for row, n in zip(rows, lengths, strict=True)]

    def best_tags(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Best tag ids ``(B, T)``: Viterbi with a CRF, else argmax per step."""
        return self.crf.viterbi(scores, mask) if self.crf is not None else scores.argmax(-1)

    def model_step(self, batch: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, lengths, y = batch
        scores = self.model(x, lengths)  # (B, T, C)
        mask = valid_mask(lengths, x.shape[0], x.shape[1], scores.device) & (y != IGNORE_INDEX)
        unseen = mask & (y >= self.num_tags)  # evaluation-only tags: no loss on them
        if self.crf is not None:
            nll = self.crf(scores, y.masked_fill(unseen, 0), mask, reduction="none")  # (B,)
            keep = ~unseen.any(1)
            loss = (nll * keep).sum() / keep.sum().clamp(min=1)
        else:
            target = y.masked_fill(unseen, IGNORE_INDEX)
            loss = self.loss_fn(scores.reshape(-1, scores.shape[-1]), target.reshape(-1))
        return loss, scores, mask

    def _shared_step(self, batch, stage: str) -> Tensor:
        loss, scores, mask = self.model_step(batch)
        y = batch[2]
        self.metrics.update(stage, "loss", loss.detach())
        if self.metrics.wants(stage, "acc"):
            self._score(scores.detach(), mask, y, stage)
        return loss

    def _score(self, scores: Tensor, mask: Tensor, y: Tensor, stage: str) -> None:
        """Token accuracy, span F1 and the test's per-tag counts of one batch."""
        pred = self.best_tags(scores, mask)  # (B, T)
        hits = (pred == y)[mask].float()  # (N,) valid tokens
        self.metrics.update(stage, "acc", hits)
        if stage == "test":
            self._count_tags(pred[mask], y[mask])
        if "f1" not in self.metrics.names(stage):
            self.metrics.update(stage, "score", hits)
            return
        gold_tags, pred_tags = self.tag_names(y, mask), self.tag_names(pred, mask)
        for name in ("f1", "score"):
            self.metrics.update(stage, name, pred_tags, gold_tags)

    def _count_tags(self, pred: Tensor, gold: Tensor) -> None:
        n = len(self.label_names)
        counts = torch.stack(
            [
                torch.bincount(gold, minlength=n),
                torch.bincount(pred, minlength=n),
                torch.bincount(gold[pred == gold], minlength=n),
            ]
        )
        self._tag_counts = counts if self._tag_counts is None else self._tag_counts + counts

    def on_test_epoch_start(self) -> None:
        self._tag_counts = None

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self._tag_counts is None:
            return
        counts = self._tag_counts
        if self.trainer.world_size > 1:  # every process counted its share of the test split
            counts = counts.clone()
            torch.distributed.all_reduce(counts)
        gold, predicted, correct = counts.tolist()
        self.tag_report = {}
        lines = [f"{'tag':<12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
        for i, name in enumerate(self.label_names):
            if not gold[i] and not predicted[i]:
                continue
            p, r, f = prf(correct[i], predicted[i], gold[i])
            self.tag_report[name] = {"precision": p, "recall": r, "f1": f, "support": gold[i]}
            unseen = " (not in training)" if i >= self.num_tags else ""
            lines.append(f"{name:<12} {p:>9.3f} {r:>9.3f} {f:>9.3f} {gold[i]:>8}{unseen}")
        log.info("per-tag report on the test split:\n" + "\n".join(lines))

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
