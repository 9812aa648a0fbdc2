"""ConfusionMatrixPlot on a real ClassificationTask: counts equal the ones computed by hand."""

from __future__ import annotations

import functools
import json

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.diagnostics import ConfusionMatrixPlot
from rnnkit.tasks import ClassificationTask
from tests.helpers import LightningTrainer

B, T, F, C = 24, 5, 3, 3


class MeanLinear(nn.Module):
    """model(x, lengths) -> (B, C): a linear map of the mean input."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(F, C)

    def forward(self, x, lengths=None):
        return self.linear(x.mean(1))


def loader(regression: bool = False) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, F, generator=g)
    lengths = torch.full((B,), T)
    y = torch.randn(B, 1, generator=g) if regression else torch.randint(0, C, (B,), generator=g)
    return DataLoader(TensorDataset(x, lengths, y), batch_size=8)


def trainer(tmp_path, callback) -> LightningTrainer:
    return LightningTrainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )


def test_confusion_matrix_counts_and_files(tmp_path):
    torch.manual_seed(0)
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)
    task = ClassificationTask(MeanLinear(), optimizer, num_classes=C, label_names=["a", "b", "c"])
    callback = ConfusionMatrixPlot()
    trainer(tmp_path, callback).test(task, loader())

    expected = torch.zeros(C, C, dtype=torch.long)
    with torch.no_grad():
        for x, lengths, y in loader():
            for true, pred in zip(y.tolist(), task(x, lengths).argmax(-1).tolist(), strict=True):
                expected[true, pred] += 1
    assert torch.equal(callback.matrix, expected) and int(expected.sum()) == B
    saved = json.loads((tmp_path / "confusion_matrix.json").read_text())
    assert saved == {"labels": ["a", "b", "c"], "matrix": expected.tolist()}
    assert (tmp_path / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def test_regression_is_skipped(tmp_path):
    optimizer = functools.partial(torch.optim.SGD, lr=0.1)

    class One(MeanLinear):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(F, 1)

    task = ClassificationTask(One(), optimizer, num_classes=None)
    callback = ConfusionMatrixPlot()
    trainer(tmp_path, callback).test(task, loader(regression=True))
    assert callback.matrix is None and not (tmp_path / "confusion_matrix.png").exists()
