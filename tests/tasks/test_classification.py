"""ClassificationTask and its many-to-one parts: pooling over valid steps only, both objectives."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from rnnkit.cells import GRUCell, LSTMCell
from rnnkit.models import Pooling, SequenceModel
from rnnkit.tasks import ClassificationTask
from tests.helpers import fit_one_epoch

MODES = ["last", "mean", "max", "attention"]


def padded(x: torch.Tensor, extra: int, value: float) -> torch.Tensor:
    """Append ``extra`` garbage steps to ``x (B, T, F)``."""
    B, _, F = x.shape
    return torch.cat([x, torch.full((B, extra, F), value)], dim=1)


@pytest.mark.parametrize("mode", MODES)
def test_pooling_ignores_padding(mode: str) -> None:
    torch.manual_seed(0)
    pool = Pooling(mode, input_size=6)
    out = torch.randn(3, 5, 6)
    lengths = torch.tensor([5, 2, 3])
    ref = pool(out, lengths)
    for value in (0.0, 1e6, -1e6):
        garbage = out.clone()
        for b, n in enumerate(lengths):
            garbage[b, n:] = value
        torch.testing.assert_close(pool(padded(garbage, 4, value), lengths), ref)


def test_pooling_matches_hand_computation() -> None:
    out = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [-5.0], [4.0]]])  # (2, 3, 1)
    lengths = torch.tensor([2, 3])
    torch.testing.assert_close(Pooling("last", 1)(out, lengths), torch.tensor([[3.0], [4.0]]))
    torch.testing.assert_close(Pooling("mean", 1)(out, lengths), torch.tensor([[2.0], [1 / 3]]))
    torch.testing.assert_close(Pooling("max", 1)(out, lengths), torch.tensor([[3.0], [4.0]]))


def test_bidirectional_last_takes_backward_half_at_step_zero() -> None:
    out = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 3, 4)
    lengths = torch.tensor([2, 3])
    pooled = Pooling("last", 4, bidirectional=True)(out, lengths)
    torch.testing.assert_close(pooled[0], torch.cat([out[0, 1, :2], out[0, 0, 2:]]))
    torch.testing.assert_close(pooled[1], torch.cat([out[1, 2, :2], out[1, 0, 2:]]))


def test_pooling_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="pooling must be one of"):
        Pooling("sum", 4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequence_model_padding_never_changes_a_result(mode: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = SequenceModel(
        output_size=3,
        cell=functools.partial(LSTMCell),
        input_size=4,
        hidden_size=5,
        bidirectional=bidirectional,
        pooling=mode,
        backend="loop",
    ).eval()
    x = torch.randn(2, 4, 4)
    lengths = torch.tensor([4, 2])
    batch = model(padded(x, 3, 9.0), lengths)
    for b in range(2):
        alone = model(x[b : b + 1, : lengths[b]], lengths[b : b + 1])
        torch.testing.assert_close(batch[b : b + 1], alone, atol=1e-6, rtol=1e-5)


def test_sequence_model_token_inputs_and_per_step_head() -> None:
    model = SequenceModel(
        output_size=7,
        cell=GRUCell,
        vocab_size=11,
        pad_index=0,
        embedding_dim=3,
        hidden_size=4,
        pooling="none",
    )
    x = torch.randint(1, 11, (2, 5))
    assert model(x, torch.tensor([5, 3])).shape == (2, 5, 7)
    assert model.per_step


def test_sequence_model_needs_exactly_one_encoder() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        SequenceModel(output_size=2, input_size=3)


def optimizer():
    return functools.partial(torch.optim.Adam, lr=0.01)


def test_classification_step_learns_and_predicts_label_names() -> None:
    torch.manual_seed(0)
    model = SequenceModel(output_size=2, cell=GRUCell, input_size=1, hidden_size=8)
    task = ClassificationTask(model, optimizer(), num_classes=2, label_names=["down", "up"])
    # label = sign of the sum of a variable-length sequence
    x = torch.randn(64, 6, 1)
    lengths = torch.randint(2, 7, (64,))
    mask = torch.arange(6)[None, :] < lengths[:, None]
    y = ((x.squeeze(-1) * mask).sum(1) > 0).long()
    opt = task.configure_optimizers()["optimizer"]
    first = None
    for _ in range(60):
        loss, _, _ = task.model_step((x, lengths, y))
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    preds = task.predict_step((x[:3], lengths[:3], y[:3]), 0)
    assert [p["label"] for p in preds] == [["down", "up"][int(i)] for i in y[:3]]
    assert all(0.5 <= p["prob"] <= 1.0 for p in preds)


def test_regression_objective_when_num_classes_is_none() -> None:
    model = SequenceModel(output_size=1, cell=GRUCell, input_size=2, hidden_size=4)
    task = ClassificationTask(model, optimizer(), num_classes=None)
    x, lengths, y = torch.randn(5, 3, 2), torch.tensor([3, 1, 2, 3, 3]), torch.randn(5, 1)
    loss, pred, target = task.model_step((x, lengths, y))
    torch.testing.assert_close(loss, nn.functional.mse_loss(pred, y))
    assert isinstance(task.loss_fn, nn.MSELoss) and task.regression
    assert set(task.predict_step((x, lengths, y), 0)[0]) == {"value"}


def test_hyperparameters_leave_out_the_model_and_the_data_state() -> None:
    model = SequenceModel(output_size=3, cell=GRUCell, input_size=2, hidden_size=4)
    task = ClassificationTask(model, optimizer(), num_classes=3, label_names=["a", "b", "c"])
    assert "model" not in task.hparams and "label_names" not in task.hparams
    assert task.hparams.num_classes == 3 and task.label_names == ["a", "b", "c"]


def test_label_names_must_match_num_classes() -> None:
    model = SequenceModel(output_size=3, cell=GRUCell, input_size=2, hidden_size=4)
    with pytest.raises(ValueError, match="2 label_names for 3 classes"):
        ClassificationTask(model, optimizer(), num_classes=3, label_names=["a", "b"])


class Shown:
    """The two calls ``format_predictions`` makes of a datamodule."""

    def __init__(self, *sources: str) -> None:
        self.sources = list(sources)

    def predict_examples(self) -> list[str]:
        return self.sources

    def decode_inputs(self, example: str) -> str:
        return f"<{example}>"


def test_predictions_read_as_label_probability_input_or_value_input() -> None:
    model = SequenceModel(output_size=2, cell=GRUCell, input_size=1, hidden_size=4)
    task = ClassificationTask(model, optimizer(), num_classes=2, label_names=["down", "up"])
    lines = task.format_predictions([{"label": "up", "prob": 0.91234}], Shown("a.csv:2"))
    assert lines == ["up\t0.9123\t<a.csv:2>"]
    regression = ClassificationTask(
        SequenceModel(output_size=1, cell=GRUCell, input_size=1, hidden_size=4), optimizer()
    )
    values = [{"value": 0.5}, {"value": -1234567.0}]
    assert regression.format_predictions(values, Shown("x", "y")) == [
        "0.5\t<x>",
        "-1.23457e+06\t<y>",
    ]


@pytest.mark.parametrize("train_metrics", [False, True])
def test_training_batches_log_the_loss_and_scores_only_when_asked(train_metrics: bool) -> None:

    torch.manual_seed(0)
    model = SequenceModel(output_size=2, cell=GRUCell, input_size=1, hidden_size=4)
    task = ClassificationTask(model, optimizer(), num_classes=2, train_metrics=train_metrics)
    batch = (torch.randn(4, 3, 1), torch.tensor([3, 2, 3, 1]), torch.tensor([0, 1, 1, 0]))
    logged = fit_one_epoch(task, batch)
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "val/acc_best"} <= logged
    assert ({"train/acc", "train/f1"} <= logged) == train_metrics
