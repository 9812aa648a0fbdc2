"""``LanguageModelTask``: next-token training, perplexity, and sampling (one-to-many)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from rnnkit.data.vocab import Vocabulary
from rnnkit.metrics import Mean, Perplexity
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, merge, per_stage


class LanguageModelTask(Task):
    r"""Train a :class:`rnnkit.models.LanguageModel` to predict each next token; sample from it.

    .. math::
        \mathcal{L} = -\frac{1}{N} \sum_{b,t:\, y_{bt} \ne \text{pad}}
        \log p(y_{bt} \mid x_{b, \le t}), \qquad \text{ppl} = \exp(\mathcal{L})

    Padding never counts: masked targets are skipped by the loss and by the perplexity
    (:class:`rnnkit.metrics.Perplexity` with ``ignore_index``), which averages over every token of
    the epoch, not over batches. ``{stage}/loss`` is the same token mean, so the training
    perplexity is ``exp(train/loss)`` and is not scored again (a softmax over the vocabulary of
    every training batch); ``val/ppl`` and ``test/ppl`` are.

    Batches are ``(x, lengths, y)``, or ``(x, lengths, y, cond)`` for a conditional model
    (``cond (B, C)`` sets the initial state). Predict batches are ``(prompt, lengths[, cond])``
    and :meth:`predict_step` returns the prompts with their sampled continuations as strings.

    Args:
        model: a built :class:`~rnnkit.models.LanguageModel`.
        optimizer: partial optimizer, called with ``params=``.
        scheduler: optional partial scheduler, called with ``optimizer=`` (monitors
            ``val/loss``).
        vocab: index -> token list from the data (decodes generated ids); data state.
        pad_index: the padding token, ignored by loss and metrics.
        eos_index: the end token; generation of a sequence stops there.
        separator: joins decoded tokens (``""`` for characters, ``" "`` for words).
        unigram_perplexity: the data's unigram baseline per stage (``{"val": .., "test": ..}``),
            logged as ``{stage}/ppl_unigram`` next to ``{stage}/ppl``; data state.
        max_new_tokens, temperature, top_k: sampling in :meth:`predict_step` (temperature 0 is
            greedy).
        seed: seeds sampling (batch ``i`` uses ``seed + i``); ``None`` uses the global RNG.
        exact_match: also log ``{stage}/exact_match``, the share of sequences that greedy
            generation from the first input token (and ``cond``) reproduces exactly; meant for
            conditional tasks where one vector determines one sequence.
        monitor, monitor_mode: the metric that selects the best checkpoint (:class:`Task`).
    """

    data_state = ("vocab", "unigram_perplexity")

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        vocab: Sequence[str] | None = None,
        pad_index: int = 0,
        eos_index: int | None = None,
        separator: str = "",
        unigram_perplexity: dict[str, float] | None = None,
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int | None = None,
        exact_match: bool = False,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.model = model
        self.vocab = Vocabulary.from_state_dict(list(vocab)) if vocab is not None else None
        scored = {"ppl": lambda: Perplexity(ignore_index=pad_index)}
        if exact_match:
            scored["exact_match"] = Mean
        self.metrics = StageMetrics(
            merge(per_stage({"loss": Mean}), per_stage(scored, ("val", "test"))),
            best=("ppl", "min"),
            prog_bar=["ppl"],
            constants={
                f"{stage}/ppl_unigram": value
                for stage, value in (unigram_perplexity or {}).items()
            },
        )

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, cond: Tensor | None = None
    ) -> Tensor:
        """Next-token logits ``(B, T, V)`` for ids ``x (B, T)``."""
        return self.model(x, lengths, cond=cond)[0]

    def model_step(self, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        x, lengths, y, *rest = batch
        logits = self(x, lengths, rest[0] if rest else None)  # (B, T, V)
        loss = F.cross_entropy(
            logits.transpose(1, 2), y, ignore_index=self.hparams.pad_index
        )  # (B, V, T) against (B, T)
        return loss, logits, y

    def _step(self, stage: str, batch: Sequence[Tensor]) -> Tensor:
        loss, logits, y = self.model_step(batch)
        tokens = (y != self.hparams.pad_index).sum()  # the loss is a mean over these
        self.metrics.update(stage, "loss", loss.detach(), weight=tokens)
        if self.metrics.wants(stage, "ppl"):
            self.metrics.update(stage, "ppl", logits, y)
        if self.metrics.wants(stage, "exact_match"):
            self._exact_match(stage, batch)
        return loss

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        return self._step("train", batch)

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self._step("val", batch)

    def test_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self._step("test", batch)

    def predict_step(self, batch: Sequence[Tensor], batch_idx: int) -> list[str]:
        """Prompts followed by their sampled continuations, decoded to strings."""
        prompt, lengths, *rest = batch
        hp = self.hparams
        generator = None
        if hp.seed is not None:
            generator = torch.Generator(device=prompt.device).manual_seed(hp.seed + batch_idx)
        new = self.model.generate(
            prompt,
            hp.max_new_tokens,
            temperature=hp.temperature,
            top_k=hp.top_k,
            generator=generator,
            lengths=lengths,
            cond=rest[0] if rest else None,
            stop_index=hp.eos_index,
        )  # (B, N)
        return [
            self.decode(p[:n] + g)
            for p, n, g in zip(prompt.tolist(), lengths.tolist(), new.tolist(), strict=True)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        """Tokens of ``ids`` joined by ``separator``, without padding, up to ``<eos>``."""
        if self.vocab is None:
            raise ValueError("LanguageModelTask: decoding needs vocab= (from the data)")
        return self.hparams.separator.join(self.vocab.decode(ids))

    def _exact_match(self, stage: str, batch: Sequence[Tensor]) -> None:
        """Whether greedy generation from the first input token reproduces each target."""
        x, _, y, *rest = batch
        new = self.model.generate(
            x[:, :1],
            y.shape[1],
            temperature=0.0,
            cond=rest[0] if rest else None,
            stop_index=self.hparams.eos_index,
        )  # (B, N)
        hits = [
            self.decode(g) == self.decode(t) for g, t in zip(new.tolist(), y.tolist(), strict=True)
        ]
        hits = torch.tensor(hits, dtype=torch.float, device=y.device)
        self.metrics.update(stage, "exact_match", hits)

    def format_predictions(self, predictions: Sequence[str], datamodule) -> list[str]:
        """The generated texts (each prompt and its continuation), one per line."""
        return list(predictions)
