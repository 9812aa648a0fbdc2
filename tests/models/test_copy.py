"""The copy mechanism (pointer-generator) and the <unk> fallback: the output mixes generating
with copying source positions, so a character never seen in training is produced as itself."""

from __future__ import annotations

import functools

import pytest
import torch

from rnnkit.data.extended_vocab import extend
from rnnkit.data.pairs import PairsDataModule
from rnnkit.data.vocab import Vocabulary
from rnnkit.models.seq2seq import build_seq2seq
from rnnkit.tasks.seq2seq import Seq2SeqTask
from tests.helpers import LightningTrainer


def _copy_model(V: int, gate_bias: float | None = None, **kwargs):
    torch.manual_seed(0)
    model = build_seq2seq(
        V, V, embedding_size=6, hidden_size=8, attention="general", copy=True, **kwargs
    ).eval()
    if gate_bias is not None:  # p_gen = sigmoid(gate_bias): set by hand
        with torch.no_grad():
            model.copy_gate.weight.zero_()
            model.copy_gate.bias.fill_(gate_bias)
    return model


def test_extended_ids_number_unseen_source_tokens_after_the_vocabulary():
    vocab = Vocabulary(["a", "b"])  # ids 4, 5; V = 6
    ext = extend(list("Ábaé"), list("Ábéx"), vocab)
    assert ext.oov == ("Á", "é")
    assert ext.source.tolist() == [6, 5, 4, 7]
    # target framed <bos> .. <eos>; x is in neither the vocabulary nor the source: <unk>
    assert ext.target.tolist() == [2, 6, 5, 7, 1, 3]


def test_the_output_mixes_generating_and_copying():
    V = 8
    src = torch.tensor([[4, 1, 4]])  # the second token is unseen: <unk> for the encoder
    copy_ids = torch.tensor([[4, 8, 4]])  # ... and extended id V + 0 for the copy
    lengths = torch.tensor([3])
    for gate_bias, check in ((-30.0, "copy"), (30.0, "generate"), (None, "mix")):
        model = _copy_model(V, gate_bias)
        enc = model.encode(src, lengths, copy_ids)
        assert enc.extended_size == V + 1
        y = torch.tensor([2])
        logp, _, _, weights = model.decode_step(y, enc.state, model.initial_feed(1, src), enc)
        p = logp.exp()[0]  # (V + 1,)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
        if check == "copy":  # p_gen = 0: exactly the attention mass of each source token
            assert p[4].item() == pytest.approx(weights[0, [0, 2]].sum().item(), abs=1e-6)
            assert p[V].item() == pytest.approx(weights[0, 1].item(), abs=1e-6)
        elif check == "generate":  # p_gen = 1: the plain softmax; nothing is copied
            assert p[V].item() == pytest.approx(0.0, abs=1e-6)
        else:  # the gate as trained: both parts contribute, the unseen token has mass
            assert 0.0 < p[V].item() < 1.0


def test_gradients_reach_the_copy_gate():
    model = _copy_model(8).train()
    src, copy_ids = torch.tensor([[4, 1]]), torch.tensor([[4, 8]])
    logp, _ = model(src, torch.tensor([2]), torch.tensor([[2, 4]]), copy_ids=copy_ids)
    assert logp.shape == (1, 2, 9)
    torch.nn.functional.nll_loss(logp[0], torch.tensor([8, 3])).backward()
    assert model.copy_gate.weight.grad.abs().sum() > 0


def _pairs(tmp_path, predict: str) -> PairsDataModule:
    (tmp_path / "train.tsv").write_text("ab\tab\nba\tba\n", encoding="utf-8")
    (tmp_path / "test.tsv").write_text("Á\tÁ\n", encoding="utf-8")  # Á is never trained on
    (tmp_path / "predict.txt").write_text(predict, encoding="utf-8")
    dm = PairsDataModule(
        train_path=str(tmp_path / "train.tsv"),
        val_path=str(tmp_path / "test.tsv"),
        test_path=str(tmp_path / "test.tsv"),
        predict_path=str(tmp_path / "predict.txt"),
        batch_size=2,
    )
    dm.setup("predict")
    return dm


def _task(dm, model, **kwargs) -> Seq2SeqTask:
    info = dm.info
    return Seq2SeqTask(
        model,
        functools.partial(torch.optim.SGD, lr=0.1),
        target_vocab=info["target_vocab"],
        source_vocab=info["source_vocab"],
        max_decode_length=1,
        **kwargs,
    )


def _trainer() -> LightningTrainer:
    return LightningTrainer(logger=False, enable_progress_bar=False, enable_model_summary=False)


@pytest.mark.parametrize("beam_size", [1, 2])
def test_an_unseen_character_is_copied_into_the_output(tmp_path, beam_size):
    dm = _pairs(tmp_path, "Á\n")
    V = dm.info["tgt_vocab_size"]
    copying = _task(dm, _copy_model(V, gate_bias=-30.0), beam_size=beam_size)
    (texts,) = _trainer().predict(copying, datamodule=dm)
    assert texts == ["Á"]
    (metrics,) = _trainer().test(copying, datamodule=dm, verbose=False)
    assert metrics["test/exact_match"] == 1.0  # compared in the extended numbering
    # the same model told never to copy (p_gen = 1) cannot produce it
    generating = _task(dm, _copy_model(V, gate_bias=30.0), beam_size=beam_size)
    (texts,) = _trainer().predict(generating, datamodule=dm)
    assert texts != ["Á"]


def test_unk_fallback_replaces_unk_by_the_attended_source_token(tmp_path):
    dm = _pairs(tmp_path, "Á\n")
    info = dm.info
    torch.manual_seed(0)
    model = build_seq2seq(
        info["src_vocab_size"], info["tgt_vocab_size"], embedding_size=6, hidden_size=8
    )
    with torch.no_grad():
        model.generator.bias[Vocabulary.unk_index] = 50.0  # it always says <unk>
    (texts,) = _trainer().predict(_task(dm, model), datamodule=dm)
    assert texts == ["Á"]  # the only source position, hence the most attended one
    (texts,) = _trainer().predict(_task(dm, model, replace_unk=False), datamodule=dm)
    assert texts == ["<unk>"]


def test_a_gold_unknown_never_counts_as_a_match(tmp_path):
    (tmp_path / "train.tsv").write_text("ab\tab\nba\tba\n", encoding="utf-8")
    (tmp_path / "test.tsv").write_text("a\tÁ\n", encoding="utf-8")  # Á: not in the source
    dm = PairsDataModule(
        train_path=str(tmp_path / "train.tsv"),
        val_path=str(tmp_path / "test.tsv"),
        test_path=str(tmp_path / "test.tsv"),
        batch_size=2,
    )
    dm.setup()
    info = dm.info
    model = build_seq2seq(
        info["src_vocab_size"], info["tgt_vocab_size"], embedding_size=6, hidden_size=8
    )
    with torch.no_grad():
        model.generator.bias[Vocabulary.unk_index] = 50.0
    task = _task(dm, model, replace_unk=False)  # outputs <unk>, the gold is <unk>: a miss
    (metrics,) = _trainer().test(task, datamodule=dm, verbose=False)
    assert metrics["test/exact_match"] == 0.0


def test_copy_needs_attention():
    with pytest.raises(ValueError, match="copy=True copies through the attention"):
        build_seq2seq(8, 8, embedding_size=4, hidden_size=4, attention="none", copy=True)
