r"""``Seq2SeqTask``: encoder-decoder on unaligned pairs; token accuracy, exact match, BLEU.

.. math::
    \mathcal{L} = -\frac{1}{N} \sum_{b,t:\, y_{bt} \ne \text{pad}}
    \log p(y_{bt} \mid y_{b,<t}, x_b)

over the target tokens after ``<bos>`` (``<eos>`` included, padding never), with the decoder
fed the gold previous token (teacher forcing; in training with the model's
``teacher_forcing_ratio``).

Metrics per stage (``{stage}/...``):

- ``loss``, and ``token_acc``: teacher-forced argmax equals the gold token, over the same
  positions as the loss;
- ``exact_match`` and ``bleu`` (validation and test): the *decoded* output (greedy, or beam
  search with ``beam_size > 1``) against the gold target. Exact match compares the token
  sequences up to ``<eos>``; BLEU is corpus BLEU-4 (Papineni et al. 2002, torchmetrics
  ``BLEUScore``, no smoothing) over the same tokens (characters for character data).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics.text import BLEUScore

from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, mean_metric, merge, per_stage

SPACE = "\u2581"  # stands for a space *token* when tokens are joined by spaces for BLEU


def strip_ids(ids: Sequence[int], eos_index: int, pad_index: int, bos_index: int) -> list[int]:
    """Token ids up to (not including) the first ``<eos>``, without ``<bos>``/``<pad>``."""
    out = []
    for i in ids:
        i = int(i)
        if i == eos_index:
            break
        if i not in (pad_index, bos_index):
            out.append(i)
    return out


def exact_match(predicted: Sequence[Sequence], gold: Sequence[Sequence]) -> Tensor:
    """Per-example 1.0 where the two token sequences are identical, else 0.0. Shape (B,)."""
    if len(predicted) != len(gold):
        raise ValueError(f"exact_match: {len(predicted)} predictions for {len(gold)} targets")
    return torch.tensor([float(list(p) == list(g)) for p, g in zip(predicted, gold, strict=True)])


def bleu_text(tokens: Sequence[str]) -> str:
    """Tokens joined by spaces, as BLEU's whitespace tokenizer expects (a space token -> ▁)."""
    return " ".join(SPACE if t == " " else t for t in tokens)


class Seq2SeqTask(Task):
    """Train and evaluate a :class:`rnnkit.models.seq2seq.Seq2Seq`.

    Batches are ``(src, src_lengths, tgt, tgt_lengths)`` with ``tgt`` framed as
    ``<bos> y .. <eos>`` (see :mod:`rnnkit.data.pairs`).

    Args:
        model: a built ``Seq2Seq`` (``model(src, src_lengths, tgt_in) -> (logits, attention)``,
            ``model.generate(...)``).
        optimizer: partial optimizer, called with ``params=``.
        scheduler: optional partial scheduler, called with ``optimizer=`` (monitors
            ``val/loss``).
        target_vocab: index -> token list of the target side (decodes predictions); data
            state, like ``source_vocab``.
        source_vocab: index -> token list of the source side (labels attention plots).
        separator: joins decoded target tokens (``""`` for characters, ``" "`` for words).
        source_separator: joins source tokens in plot titles.
        pad_index, bos_index, eos_index: special target indices.
        beam_size: 1 decodes greedily; more runs beam search (validation, test, predict).
        length_penalty: :math:`\\alpha` of the beam search's GNMT length penalty.
        max_decode_length: most tokens decoded per example (``<eos>`` included).
        label_smoothing: of the cross-entropy.
        attention_plots: in ``predict``, save this many attention heatmaps (PNG) under
            ``<run dir>/attention/`` (0: none; models without attention never plot).
    """

    data_state = ("target_vocab", "source_vocab")

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        target_vocab: Sequence[str] | None = None,
        source_vocab: Sequence[str] | None = None,
        separator: str = "",
        source_separator: str = "",
        pad_index: int = 0,
        bos_index: int = 2,
        eos_index: int = 3,
        beam_size: int = 1,
        length_penalty: float = 0.0,
        max_decode_length: int = 64,
        label_smoothing: float = 0.0,
        attention_plots: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        if beam_size < 1 or max_decode_length < 1:
            raise ValueError(
                f"Seq2SeqTask: beam_size and max_decode_length must be >= 1, got {beam_size}, "
                f"{max_decode_length}"
            )
        self.model = model
        self.target_vocab = list(target_vocab) if target_vocab is not None else None
        self.source_vocab = list(source_vocab) if source_vocab is not None else None
        decoded = {"exact_match": mean_metric, "bleu": lambda: BLEUScore(n_gram=4)}
        self.metrics = StageMetrics(
            merge(
                per_stage({"loss": mean_metric, "token_acc": mean_metric}),
                per_stage(decoded, ("val", "test")),  # decoding every training batch: no
            ),
            best=("exact_match", "max"),
            prog_bar=["exact_match"],
        )
        self._plots_saved = 0

    def forward(self, src: Tensor, src_lengths: Tensor):
        """Decode ``src`` (greedy or beam, as configured) -> :class:`Hypotheses`."""
        hp = self.hparams
        return self.model.generate(
            src,
            src_lengths,
            beam_size=hp.beam_size,
            max_length=hp.max_decode_length,
            length_penalty=hp.length_penalty,
        )

    def model_step(self, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced loss; ``(loss, correct, n)``: counts over the ``n`` non-pad targets."""
        src, src_lengths, tgt = batch[:3]
        tgt_in, gold = tgt[:, :-1], tgt[:, 1:]  # (B, T-1) each
        logits, _ = self.model(src, src_lengths, tgt_in)  # (B, T-1, V)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            gold.reshape(-1),
            ignore_index=self.hparams.pad_index,
            label_smoothing=self.hparams.label_smoothing,
        )
        mask = gold != self.hparams.pad_index  # (B, T-1)
        correct = ((logits.argmax(-1) == gold) & mask).sum()  # counted on the device
        return loss, correct, mask.sum()

    def _step(self, batch: Sequence[Tensor], stage: str) -> Tensor:
        loss, correct, n = self.model_step(batch)
        B = batch[0].shape[0]
        self.metrics.update(self, stage, "loss", loss.detach(), weight=n, batch_size=B)
        self.metrics.update(self, stage, "token_acc", correct / n, weight=n, batch_size=B)
        if self.metrics.wants(stage, "exact_match"):
            self._decode_metrics(batch, stage)
        return loss

    def _decode_metrics(self, batch: Sequence[Tensor], stage: str) -> None:
        src, src_lengths, tgt = batch[:3]
        hyp = self(src, src_lengths)
        ids = self._strip_all(hyp.tokens)
        gold = self._strip_all(tgt)
        B = src.shape[0]
        hits = exact_match(ids, gold).to(self.device)
        self.metrics.update(self, stage, "exact_match", hits, batch_size=B)
        names = self.target_vocab or [str(i) for i in range(self._vocab_size())]
        self.metrics.update(
            self,
            stage,
            "bleu",
            [bleu_text([names[i] for i in seq]) for seq in ids],
            [[bleu_text([names[i] for i in seq])] for seq in gold],
            batch_size=B,
        )

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Sequence[Tensor], batch_idx: int) -> list[str]:
        """The decoded target of every source in the batch, as strings."""
        src, src_lengths = batch[0], batch[1]
        hyp = self(src, src_lengths)
        texts = [self.decode(seq) for seq in hyp.tokens]
        if hyp.attention is not None and self._plots_saved < self.hparams.attention_plots:
            self._save_attention(src, src_lengths, hyp)
        return texts

    def decode(self, ids: Sequence[int]) -> str:
        """Target ids -> text (up to ``<eos>``; ``<bos>``/``<pad>`` dropped)."""
        seq = self._strip(ids)
        if self.target_vocab is None:
            return " ".join(str(i) for i in seq)
        return self.hparams.separator.join(self.target_vocab[i] for i in seq)

    def _strip(self, ids: Sequence[int]) -> list[int]:
        hp = self.hparams
        return strip_ids(ids, hp.eos_index, hp.pad_index, hp.bos_index)

    def _strip_all(self, ids: Tensor) -> list[list[int]]:
        return [self._strip(row) for row in ids.tolist()]

    def _vocab_size(self) -> int:
        return self.model.generator.out_features

    def _save_attention(self, src: Tensor, src_lengths: Tensor, hyp) -> None:
        from rnnkit.plots import plot_attention

        root = Path(self.trainer.default_root_dir if self._trainer is not None else ".")
        for b in range(src.shape[0]):
            if self._plots_saved >= self.hparams.attention_plots:
                return
            S, T = int(src_lengths[b]), int(hyp.lengths[b])
            source = [self._source_token(i) for i in src[b, :S].tolist()]
            target = [self._target_token(i) for i in hyp.tokens[b, :T].tolist()]
            sep = self.hparams.source_separator
            plot_attention(
                hyp.attention[b, :T, :S],
                root / "attention" / f"predict_{self._plots_saved:03d}.png",
                source_tokens=source,
                target_tokens=target,
                title=f"{sep.join(source)} -> {self.decode(hyp.tokens[b])}",
            )
            self._plots_saved += 1

    def _source_token(self, i: int) -> str:
        return self.source_vocab[i] if self.source_vocab is not None else str(i)

    def _target_token(self, i: int) -> str:
        return self.target_vocab[i] if self.target_vocab is not None else str(i)

    def on_predict_start(self) -> None:
        self._plots_saved = 0

    def format_predictions(self, predictions: Sequence[str], datamodule) -> list[str]:
        """``output<TAB>input`` per source sequence."""
        examples = datamodule.predict_examples()
        return [
            f"{text}\t{datamodule.decode_inputs(example)}"
            for example, text in zip(examples, predictions, strict=True)
        ]
