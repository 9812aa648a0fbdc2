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
- ``exact_match``, ``cer`` and ``bleu`` (validation and test): the *decoded* output (greedy,
  or beam search with ``beam_size > 1``) against the gold target. Exact match compares the
  token sequences up to ``<eos>`` (a gold token unknown to the vocabulary and absent from the
  source, which no model can produce, is a miss); ``cer`` is the token (character) error
  rate, Levenshtein edits over gold tokens summed over the set; BLEU is corpus BLEU-4
  (Papineni et al. 2002, :class:`rnnkit.metrics.BLEUScore`, no smoothing) over the same tokens
  (characters for character data).

Outputs are compared and rendered in the per-example extended vocabulary of
:mod:`rnnkit.data.extended_vocab`, so a copied unseen character counts and prints as itself;
with ``replace_unk`` a produced ``<unk>`` becomes the most-attended source token
(:func:`rnnkit.models.decoding.replace_unknown`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from rnnkit.data.extended_vocab import CopyBatch, token_of
from rnnkit.errors import ConfigError
from rnnkit.metrics import BLEUScore, Mean
from rnnkit.models.decoding import Hypotheses, replace_unknown
from rnnkit.models.seq2seq_transducer import EditTransducer
from rnnkit.tasks.base import Task
from rnnkit.tasks.metrics import StageMetrics, merge, per_stage

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


def exact_match(
    predicted: Sequence[Sequence], gold: Sequence[Sequence], unknown: int | None = None
) -> Tensor:
    """Per-example 1.0 where the two token sequences are identical, else 0.0. Shape (B,).

    A gold sequence holding ``unknown`` (a token the model cannot know) is never matched.
    """
    if len(predicted) != len(gold):
        raise ValueError(f"exact_match: {len(predicted)} predictions for {len(gold)} targets")
    return torch.tensor(
        [
            float(list(p) == list(g) and unknown not in g)
            for p, g in zip(predicted, gold, strict=True)
        ]
    )


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, each cost 1; Levenshtein
    1966), by the two-row dynamic programme."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


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
        unk_index: the target ``<unk>``.
        beam_size: 1 decodes greedily; more runs beam search (validation, test, predict).
        length_penalty: :math:`\\alpha` of the beam search's GNMT length penalty.
        max_decode_length: most tokens decoded per example (``<eos>`` included).
        min_decode_length: fewest tokens decoded before ``<eos>`` (the name differs from a
            data module's ``min_length``, as Lightning merges both hyper-parameter sets).
        nbest: ``predict`` writes this many hypotheses per source (beam search, at most
            ``beam_size``); validation and test score the best one.
        replace_unk: a decoded ``<unk>`` becomes the most-attended source token.
        label_smoothing: of the cross-entropy.
        attention_plots: in ``predict``, save this many attention heatmaps (PNG) under
            ``<run dir>/attention/`` (0: none; models without attention never plot).
        monitor, monitor_mode: the metric that selects the best checkpoint (:class:`Task`).
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
        unk_index: int = 1,
        beam_size: int = 1,
        length_penalty: float = 0.0,
        max_decode_length: int = 64,
        min_decode_length: int = 0,
        nbest: int = 1,
        replace_unk: bool = True,
        label_smoothing: float = 0.0,
        attention_plots: int = 0,
        monitor: str = "val/exact_match",
        monitor_mode: str = "max",
    ) -> None:
        super().__init__(monitor, monitor_mode)
        self.save_hyperparameters(ignore=self.not_hyperparameters)
        if beam_size < 1 or max_decode_length < 1:
            raise ValueError(
                f"Seq2SeqTask: beam_size and max_decode_length must be >= 1, got {beam_size}, "
                f"{max_decode_length}"
            )
        if not 1 <= nbest <= beam_size:
            raise ValueError(
                f"Seq2SeqTask: nbest must be in [1, beam_size={beam_size}], got {nbest}; "
                "raise task.beam_size"
            )
        if not 0 <= min_decode_length < max_decode_length:
            raise ValueError(
                "Seq2SeqTask: min_decode_length must be in "
                f"[0, max_decode_length={max_decode_length}), got {min_decode_length}"
            )
        if isinstance(model, EditTransducer) and beam_size != 1:
            raise ConfigError(
                f"task.beam_size={beam_size}: the edit-action transducer "
                "(model=seq2seq_transducer) decodes greedily; set task.beam_size=1"
            )
        if isinstance(model, EditTransducer) and label_smoothing > 0:
            # its illegal actions score -1e9: smoothing over every action would add ~1e9 eps/A
            raise ConfigError(
                f"task.label_smoothing={label_smoothing}: the edit-action transducer "
                "(model=seq2seq_transducer) masks illegal actions; set task.label_smoothing=0"
            )
        self.model = model
        self.target_vocab = list(target_vocab) if target_vocab is not None else None
        self.source_vocab = list(source_vocab) if source_vocab is not None else None
        decoded = {
            "exact_match": Mean,
            "cer": Mean,
            "bleu": lambda: BLEUScore(n_gram=4),
        }
        self.metrics = StageMetrics(
            merge(
                per_stage({"loss": Mean, "token_acc": Mean}),
                per_stage(decoded, ("val", "test")),  # decoding every training batch: no
            ),
            best=("exact_match", "max"),
            prog_bar=["exact_match"],
        )
        self._plots_saved = 0

    def forward(
        self, src: Tensor, src_lengths: Tensor, copy: CopyBatch | None = None, nbest: int = 1
    ) -> Hypotheses:
        """Decode ``src`` (greedy or beam, as configured) -> :class:`Hypotheses` (``nbest``
        rows per source, best first), ``<unk>`` replaced when ``replace_unk`` is set."""
        hp = self.hparams
        hyp = self.model.generate(
            src,
            src_lengths,
            beam_size=hp.beam_size,
            max_length=hp.max_decode_length,
            length_penalty=hp.length_penalty,
            min_length=hp.min_decode_length,
            nbest=nbest,
            **self._copy_arguments(copy),
        )
        if not hp.replace_unk or hyp.attention is None or copy is None:
            return hyp
        source = copy.source.repeat_interleave(nbest, dim=0)  # (B*N, S)
        return hyp._replace(
            tokens=replace_unknown(hyp.tokens, hyp.attention, source, hp.unk_index)
        )

    def _copy_arguments(self, copy: CopyBatch | None) -> dict[str, Tensor]:
        """``copy_ids`` for the model when the batch has them (stand-in models get none)."""
        return {} if copy is None else {"copy_ids": copy.source}

    @staticmethod
    def _copy_of(batch: Sequence) -> CopyBatch | None:
        return batch[4] if len(batch) > 4 else None

    def model_step(self, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced loss; ``(loss, correct, n)``: counts over the ``n`` non-pad targets.

        A copy model is scored on the targets in the extended numbering (its outputs are); an
        :class:`~rnnkit.models.seq2seq_transducer.EditTransducer` on its oracle edit actions
        (``token_acc`` is then their accuracy).
        """
        src, src_lengths, tgt = batch[:3]
        copy = self._copy_of(batch)
        if isinstance(self.model, EditTransducer):  # scored on its oracle edit actions
            logits, gold = self.model.oracle_scores(src, src_lengths, copy.source, copy.target)
        else:
            if copy is not None and getattr(self.model, "copy", False):
                tgt = copy.target
            tgt_in, gold = tgt[:, :-1], tgt[:, 1:]  # (B, T-1) each
            logits, _ = self.model(src, src_lengths, tgt_in, **self._copy_arguments(copy))
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
        self.metrics.update(stage, "loss", loss.detach(), weight=n)
        self.metrics.update(stage, "token_acc", correct / n, weight=n)
        if self.metrics.wants(stage, "exact_match"):
            self._decode_metrics(batch, stage)
        return loss

    def _decode_metrics(self, batch: Sequence[Tensor], stage: str) -> None:
        src, src_lengths, tgt = batch[:3]
        copy = self._copy_of(batch)
        hyp = self(src, src_lengths, copy)
        ids = self._strip_all(hyp.tokens)
        gold = self._strip_all(tgt if copy is None else copy.target)
        B = src.shape[0]
        hits = exact_match(ids, gold, unknown=self.hparams.unk_index).to(self.device)
        self.metrics.update(stage, "exact_match", hits)
        edits = sum(edit_distance(p, g) for p, g in zip(ids, gold, strict=True))
        chars = max(sum(len(g) for g in gold), 1)
        # one ratio per batch weighted by its gold length: the set's edits over its gold tokens
        cer = torch.tensor(edits / chars, device=self.device)
        self.metrics.update(stage, "cer", cer, weight=chars)
        oov = copy.oov if copy is not None else [()] * B
        self.metrics.update(
            stage,
            "bleu",
            [bleu_text(self._tokens(seq, o)) for seq, o in zip(ids, oov, strict=True)],
            [[bleu_text(self._tokens(seq, o))] for seq, o in zip(gold, oov, strict=True)],
        )

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Sequence[Tensor], batch_idx: int) -> list:
        """Per source: its decoded target (a string), or with ``nbest > 1`` a list of
        ``(text, log-probability)``, best first."""
        src, src_lengths = batch[0], batch[1]
        copy, n = self._copy_of(batch), self.hparams.nbest
        hyp = self(src, src_lengths, copy, nbest=n)
        oov = copy.oov if copy is not None else [()] * src.shape[0]
        texts = [self.decode(seq, oov[row // n]) for row, seq in enumerate(hyp.tokens)]
        if hyp.attention is not None and self._plots_saved < self.hparams.attention_plots:
            self._save_attention(src, src_lengths, hyp, oov, n)
        if n == 1:
            return texts
        ranked = list(zip(texts, hyp.scores.tolist(), strict=True))
        return [ranked[b * n : (b + 1) * n] for b in range(src.shape[0])]

    def decode(self, ids: Sequence[int], oov: Sequence[str] = ()) -> str:
        """Target ids -> text (up to ``<eos>``; ``<bos>``/``<pad>`` dropped); an extended id
        (a copied source token the vocabulary lacks) is rendered from ``oov``."""
        seq = self._strip(ids)
        if self.target_vocab is None:
            return " ".join(str(i) for i in seq)
        return self.hparams.separator.join(self._tokens(seq, oov))

    def _tokens(self, ids: Sequence[int], oov: Sequence[str]) -> list[str]:
        names = self.target_vocab or [str(i) for i in range(self.model.vocab_size)]
        return [token_of(i, names, oov) for i in ids]

    def _strip(self, ids: Sequence[int]) -> list[int]:
        hp = self.hparams
        return strip_ids(ids, hp.eos_index, hp.pad_index, hp.bos_index)

    def _strip_all(self, ids: Tensor) -> list[list[int]]:
        return [self._strip(row) for row in ids.tolist()]

    def _save_attention(
        self, src: Tensor, src_lengths: Tensor, hyp: Hypotheses, oov: list, nbest: int
    ) -> None:
        """Heatmaps of each source's best hypothesis (row ``b * nbest``)."""
        from rnnkit.plots import plot_attention

        root = Path(self.trainer.default_root_dir if self._trainer is not None else ".")
        for b in range(src.shape[0]):
            if self._plots_saved >= self.hparams.attention_plots:
                return
            row = b * nbest
            S, T = int(src_lengths[b]), int(hyp.lengths[row])
            source = [self._source_token(i) for i in src[b, :S].tolist()]
            target = [self._target_token(i, oov[b]) for i in hyp.tokens[row, :T].tolist()]
            sep = self.hparams.source_separator
            plot_attention(
                hyp.attention[row, :T, :S],
                root / "attention" / f"predict_{self._plots_saved:03d}.png",
                source_tokens=source,
                target_tokens=target,
                title=f"{sep.join(source)} -> {self.decode(hyp.tokens[row], oov[b])}",
            )
            self._plots_saved += 1

    def _source_token(self, i: int) -> str:
        return self.source_vocab[i] if self.source_vocab is not None else str(i)

    def _target_token(self, i: int, oov: Sequence[str]) -> str:
        return token_of(i, self.target_vocab, oov) if self.target_vocab is not None else str(i)

    def on_predict_start(self) -> None:
        self._plots_saved = 0

    def format_predictions(self, predictions: Sequence, datamodule) -> list[str]:
        """``output<TAB>input`` per source sequence; with ``nbest > 1``, ``nbest`` lines per
        source, best first, ``output<TAB>input<TAB>rank<TAB>log-probability``."""
        lines = []
        for example, prediction in zip(datamodule.predict_examples(), predictions, strict=True):
            source = datamodule.decode_inputs(example)
            if isinstance(prediction, str):
                lines.append(f"{prediction}\t{source}")
                continue
            for rank, (text, score) in enumerate(prediction, start=1):
                lines.append(f"{text}\t{source}\t{rank}\t{score:.4f}")
        return lines
