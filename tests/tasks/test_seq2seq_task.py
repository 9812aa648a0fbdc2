"""Seq2SeqTask: the loss masks padding; token accuracy, exact match and BLEU on hand-made
examples; fit, predict (strings), attention heatmaps and reloading a checkpoint."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from rnnkit.data.transduction import TransductionDataModule
from rnnkit.engine.lightning import AtomicCheckpointIO
from rnnkit.models.decoding import Hypotheses
from rnnkit.models.seq2seq import build_seq2seq
from rnnkit.tasks.seq2seq import Seq2SeqTask, bleu_text, edit_distance, exact_match, strip_ids
from tests.helpers import LightningTrainer

VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c", "d", "e", "f"]
PAD, BOS, EOS = 0, 2, 3
A, B_, C, D, E, F_ = 4, 5, 6, 7, 8, 9


class FixedModel(nn.Module):
    """Returns preset teacher-forced logits and preset decoded outputs."""

    def __init__(self, logits: torch.Tensor, decoded: torch.Tensor) -> None:
        super().__init__()
        self.logits, self.decoded = logits, decoded
        self.generator = nn.Linear(1, len(VOCAB))  # something to optimise

    def forward(self, src, src_lengths, tgt_in):
        return self.logits, None

    def generate(self, src, src_lengths, **kwargs):
        lengths = (self.decoded != PAD).sum(-1)
        return Hypotheses(self.decoded, lengths, torch.zeros(len(lengths)), None)


def _trainer(**kwargs) -> LightningTrainer:
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return LightningTrainer(**{**defaults, **kwargs})


def _hand_made():
    # gold: "abcde" and "ab"; teacher-forced argmax: "abcdf<eos>" and "ab<eos>" (+ junk on pad)
    tgt = torch.tensor([[BOS, A, B_, C, D, E, EOS], [BOS, A, B_, EOS, PAD, PAD, PAD]])
    argmax = torch.tensor([[A, B_, C, D, F_, EOS], [A, B_, EOS, C, D, E]])
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, len(VOCAB), generator=g)
    logits.scatter_(-1, argmax[..., None], 10.0)
    logits[1, 3:] = 100.0 * torch.randn(3, len(VOCAB), generator=g)  # padding: anything
    decoded = torch.tensor([[A, B_, C, D, F_, EOS], [A, B_, EOS, PAD, PAD, PAD]])
    src = torch.tensor([[4, 5, 6], [4, 5, 0]])
    batch = (src, torch.tensor([3, 2]), tgt, torch.tensor([7, 4]))
    return FixedModel(logits, decoded), batch


def test_metrics_on_hand_made_examples():
    model, batch = _hand_made()
    task = Seq2SeqTask(model, functools.partial(torch.optim.SGD, lr=0.1), target_vocab=VOCAB)
    loader = DataLoader([batch], batch_size=None)
    (metrics,) = _trainer().validate(task, dataloaders=loader, verbose=False)
    # the loss only counts the 9 real target positions (6 + 3), never padding
    logits, gold = model.logits, batch[2][:, 1:]
    real = gold != PAD
    expected_loss = F.cross_entropy(logits[real], gold[real])
    assert metrics["val/loss"] == pytest.approx(float(expected_loss), rel=1e-5)
    assert metrics["val/token_acc"] == pytest.approx(8 / 9)
    assert metrics["val/exact_match"] == pytest.approx(0.5)
    assert metrics["val/cer"] == pytest.approx(1 / 7)  # one substitution over 5 + 2 gold chars
    # corpus BLEU-4 by hand: clipped n-gram matches over both sentences, brevity penalty 1
    precisions = [6 / 7, 4 / 5, 2 / 3, 1 / 2]
    expected_bleu = math.exp(sum(math.log(p) for p in precisions) / 4)
    assert metrics["val/bleu"] == pytest.approx(expected_bleu, rel=1e-5)


def test_helpers():
    assert strip_ids([BOS, A, B_, EOS, C, PAD], EOS, PAD, BOS) == [A, B_]
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "ab") == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert exact_match([[1, 2], [3]], [[1, 2], [3, 4]]).tolist() == [1.0, 0.0]
    assert bleu_text(["a", " ", "b"]) == "a \u2581 b"
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        exact_match([[1], [2]], [[1]])


def _tiny_setup(tmp_path, attention="general", **task_kwargs):
    torch.manual_seed(0)
    predict = tmp_path / "sources.txt"
    predict.write_text("abcd\nba\n")
    dm = TransductionDataModule(
        task="reverse",
        num_examples=60,
        min_length=2,
        max_length=5,
        num_symbols=4,
        batch_size=16,
        predict_path=str(predict),
        seed=0,
    )
    dm.setup()
    info = dm.info
    model = build_seq2seq(
        info["src_vocab_size"],
        info["tgt_vocab_size"],
        embedding_size=8,
        hidden_size=8,
        attention=attention,
    )
    task = Seq2SeqTask(
        model,
        functools.partial(torch.optim.Adam, lr=0.01),
        target_vocab=info["target_vocab"],
        source_vocab=info["source_vocab"],
        separator=info["separator"],
        max_decode_length=8,
        **{"beam_size": 2, "attention_plots": 2, **task_kwargs},
    )
    return dm, task


def test_fit_test_predict_and_attention_heatmaps(tmp_path):
    dm, task = _tiny_setup(tmp_path)
    trainer = _trainer(max_epochs=1, limit_train_batches=2, default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=dm)
    (metrics,) = trainer.test(task, datamodule=dm, verbose=False)
    assert {"test/loss", "test/token_acc", "test/exact_match", "test/bleu"} <= set(metrics)
    batches = trainer.predict(task, datamodule=dm)
    (texts,) = batches
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert all(set(t) <= set("abcd") and len(t) <= 8 for t in texts)
    assert task.format_predictions(texts, dm) == [f"{texts[0]}\tabcd", f"{texts[1]}\tba"]
    plots = sorted((tmp_path / "attention").glob("*.png"))
    assert [p.name for p in plots] == ["predict_000.png", "predict_001.png"]


def test_nbest_predictions_are_ranked_lines_per_source(tmp_path):
    dm, task = _tiny_setup(tmp_path, beam_size=3, nbest=3, attention_plots=0)
    trainer = _trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(task, datamodule=dm)
    (ranked,) = trainer.predict(task, datamodule=dm)
    assert [len(r) for r in ranked] == [3, 3]
    for hypotheses in ranked:
        texts, scores = zip(*hypotheses, strict=True)
        assert len(set(texts)) == 3  # three different outputs
        assert all(s <= 0.0 for s in scores)
    lines = task.format_predictions(ranked, dm)
    assert len(lines) == 6
    assert [line.split("\t")[1:3] for line in lines[:3]] == [
        ["abcd", "1"],
        ["abcd", "2"],
        ["abcd", "3"],
    ]
    assert lines[0].split("\t")[0] == ranked[0][0][0]
    # the best of the n-best is what a plain predict writes
    task.hparams.nbest = 1
    (best,) = trainer.predict(task, datamodule=dm)
    assert best == [r[0][0] for r in ranked]


def test_model_without_attention_predicts_but_never_plots(tmp_path):
    dm, task = _tiny_setup(tmp_path, attention="none")
    trainer = _trainer(
        max_epochs=1, limit_train_batches=1, limit_val_batches=1, default_root_dir=str(tmp_path)
    )
    trainer.fit(task, datamodule=dm)
    (texts,) = trainer.predict(task, datamodule=dm)
    assert len(texts) == 2
    assert not (tmp_path / "attention").exists()


def test_reloaded_checkpoint_predicts_the_same(tmp_path):
    dm, task = _tiny_setup(tmp_path)
    trainer = _trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        default_root_dir=str(tmp_path),
        plugins=[AtomicCheckpointIO()],  # plain data: loads with weights_only=True
    )
    trainer.fit(task, datamodule=dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    before = trainer.predict(task, datamodule=dm)
    info = dm.info
    fresh = build_seq2seq(
        info["src_vocab_size"],
        info["tgt_vocab_size"],
        embedding_size=8,
        hidden_size=8,
        attention="general",
    )
    # the vocabularies are the data's state: the checkpoint holds them once, in the
    # datamodule's entry, never among the task's hyper-parameters
    saved = torch.load(path, weights_only=True)
    assert "target_vocab" not in saved["hyper_parameters"]
    assert saved[type(dm).__qualname__]["fitted"]["target"] == info["target_vocab"]
    data_state = Seq2SeqTask.data_arguments(info)
    assert set(data_state) == {"target_vocab", "source_vocab"}
    reloaded = Seq2SeqTask.load_from_checkpoint(path, model=fresh, **data_state)
    assert reloaded.target_vocab == info["target_vocab"]
    assert trainer.predict(reloaded, datamodule=dm) == before


def test_bad_settings():
    model, _ = _hand_made()
    with pytest.raises(ValueError, match="beam_size and max_decode_length"):
        Seq2SeqTask(model, functools.partial(torch.optim.SGD, lr=0.1), beam_size=0)
    with pytest.raises(ValueError, match="nbest must be in \\[1, beam_size=2\\]"):
        Seq2SeqTask(model, functools.partial(torch.optim.SGD, lr=0.1), beam_size=2, nbest=3)
