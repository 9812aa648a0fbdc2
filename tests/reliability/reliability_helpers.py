"""Helpers for the reliability tests: a pause-and-wait callback to kill a run at a known step,
a tiny LightningModule/DataModule with shuffling and dropout (so that a resume that got the
random generators wrong would show), and a runner used in-process and as a subprocess.

Run as a script: ``python reliability_helpers.py OUT_DIR MAX_EPOCHS [PAUSE_STEP MARKER]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.callbacks import NaNGuard, RNGState
from rnnkit.engine.lightning import AtomicCheckpointIO, as_lightning_callback
from rnnkit.utils.checkpointing import resolve_ckpt_path


class PauseAt(L.Callback):
    """At global step ``step`` (mid-epoch), write ``marker`` and sleep so a test can kill us."""

    def __init__(
        self, step: int, marker: str, seconds: float = 120.0, when_exists: str | None = None
    ) -> None:
        super().__init__()
        self.step = step
        self.marker = marker
        self.seconds = seconds
        self.when_exists = when_exists  # a glob: pause only once it matches a file

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step or Path(self.marker).exists():
            return  # pause once only: the resumed run goes through
        if self.when_exists and not list(Path("/").glob(self.when_exists.lstrip("/"))):
            return
        Path(self.marker).write_text(str(os.getpid()))
        time.sleep(self.seconds)


class BlowUpAt(L.Callback):
    """From epoch ``epoch`` on, set every learning rate to ``lr``: the loss diverges to NaN/inf."""

    def __init__(self, epoch: int = 1, lr: float = 1e38) -> None:
        super().__init__()
        self.epoch = epoch
        self.lr = lr

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = self.lr


class ToyTask(L.LightningModule):
    """Regression with dropout: results depend on shuffling and dropout draws."""

    def __init__(self, hidden_size: int = 16, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(4, hidden_size), nn.Tanh(), nn.Dropout(0.3), nn.Linear(hidden_size, 1)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class ToyData(L.LightningDataModule):
    def __init__(self, n: int = 64, batch_size: int = 8) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 4, generator=g)
        y = x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g)
        self.train_set = TensorDataset(x, y)
        self.val_set = TensorDataset(x[:16], y[:16])
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


def toy_run(out_dir, max_epochs: int, callbacks=(), lr: float = 0.05, hidden_size: int = 16):
    """Train the toy (resuming from ``out_dir/checkpoints/last.ckpt`` if it exists)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    L.seed_everything(7, workers=True)
    config = {"model": {"hidden_size": hidden_size}, "task": {"lr": lr}}
    checkpoints = Path(out_dir) / "checkpoints"
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
        plugins=[AtomicCheckpointIO(config=config)],
        callbacks=[
            ModelCheckpoint(dirpath=checkpoints, save_last=True, monitor="val/loss"),
            as_lightning_callback(RNGState()),
            as_lightning_callback(NaNGuard()),
            *callbacks,
        ],
    )
    task = ToyTask(hidden_size=hidden_size, lr=lr)
    trainer.fit(task, ToyData(), ckpt_path=resolve_ckpt_path("last", checkpoints))
    weights = torch.cat([p.detach().flatten() for p in task.parameters()])
    return {
        "val/loss": float(trainer.callback_metrics["val/loss"]),
        "weights_sum": float(weights.double().sum()),
        "global_step": trainer.global_step,
    }


if __name__ == "__main__":
    out, epochs = sys.argv[1], int(sys.argv[2])
    extra = [PauseAt(int(sys.argv[3]), sys.argv[4])] if len(sys.argv) > 4 else []
    result = toy_run(out, epochs, callbacks=extra)
    Path(out, "result.json").write_text(json.dumps(result))


# --- the real pipeline --------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(ROOT / "configs")

# quickstart, small: 4 train steps per epoch (resume after 1 of 2 epochs), no progress bars
QUICK = [
    "+experiment=quickstart",
    "model.hidden_size=16",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=2",
    "+trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "callbacks.model_summary=null",
    "extras.print_config=false",
    "~logger",
]


def compose(overrides: list[str], output_dir: Path):
    """Compose ``configs/train.yaml`` as ``scripts/train.py`` would, writing to ``output_dir``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import rnnkit.utils.config  # noqa: F401 - the resolvers the scripts register

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose("train.yaml", overrides=overrides, return_hydra_config=True)
        HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


def script(name: str, overrides: list[str], env_extra=None, **kwargs) -> subprocess.Popen:
    """Start ``scripts/<name>.py`` with ``overrides`` (helpers importable, as callbacks)."""
    env = {
        **os.environ,
        **(env_extra or {}),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *overrides],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
