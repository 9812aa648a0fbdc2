"""A seeded toy task and data module for the engine tests, and a hand-written loop to compare.

Regression with dropout and a shuffled loader, so a driver that drew one random number more or
less than the plain loop (or resumed without the generators) would end with other weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.engine import DataModule, TaskModule


class ToyTask(TaskModule):
    """``y = sum(x)``; logs ``train/loss`` and ``val/loss`` (epoch means) at their epoch ends."""

    def __init__(self, hidden_size: int = 16, lr: float = 0.05, scheduler: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(4, hidden_size), nn.Tanh(), nn.Dropout(0.3), nn.Linear(hidden_size, 1)
        )
        self._sums = {"train": [], "val": [], "test": []}

    def _step(self, batch, stage: str):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self._sums[stage].append(loss.detach())
        return loss

    def _log_mean(self, stage: str) -> None:
        if self._sums[stage]:
            self.log(f"{stage}/loss", torch.stack(self._sums[stage]).mean(), prog_bar=True)
        self._sums[stage] = []

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx):
        return self.net(batch[0])

    def on_train_epoch_end(self):
        self._log_mean("train")

    def on_validation_epoch_end(self):
        self._log_mean("val")

    def on_test_epoch_end(self):
        self._log_mean("test")

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        if self.hparams.scheduler == "step":
            return {
                "optimizer": optimizer,
                "lr_scheduler": {
                    "scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5),
                    "interval": "epoch",
                },
            }
        if self.hparams.scheduler == "plateau":
            return {
                "optimizer": optimizer,
                "lr_scheduler": {
                    "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(
                        optimizer, factor=0.5, patience=0
                    ),
                    "monitor": "val/loss",
                },
            }
        return optimizer


class ToyData(DataModule):
    """64 training pairs (8 shuffled batches of 8), 16 validation and test pairs."""

    def __init__(self, n: int = 64, batch_size: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 4, generator=g)
        y = x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
        self.train_set = TensorDataset(x, y)
        self.val_set = TensorDataset(x[:16] + 0.5, y[:16])
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def predict_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


def weights(task: nn.Module) -> torch.Tensor:
    """Every parameter, flattened into one vector."""
    return torch.cat([p.detach().flatten() for p in task.parameters()])


def plain_loop(
    task: ToyTask,
    data: ToyData,
    epochs: int,
    clip: float | None = None,
    algorithm: str = "norm",
    validate: bool = True,
) -> None:
    """The hand-written PyTorch loop the engine must equal: per epoch a fresh shuffled
    iterator, the steps, then one pass over the validation loader in eval mode."""
    configured = task.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    scheduler = (
        configured.get("lr_scheduler", {}).get("scheduler")
        if isinstance(configured, dict)
        else None
    )
    train, val = data.train_dataloader(), data.val_dataloader()
    params = list(task.parameters())
    for _ in range(epochs):
        task.train()
        losses = []
        for x, y in train:
            loss = nn.functional.mse_loss(task.net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                if algorithm == "norm":
                    torch.nn.utils.clip_grad_norm_(params, clip)
                else:
                    torch.nn.utils.clip_grad_value_(params, clip)
            optimizer.step()
            losses.append(loss.detach())
        if validate:
            task.eval()
            with torch.inference_mode():
                val_losses = [nn.functional.mse_loss(task.net(x), y) for x, y in val]
            val_loss = torch.stack(val_losses).mean()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(float(val_loss))
        elif scheduler is not None:
            scheduler.step()
