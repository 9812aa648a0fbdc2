"""``RunGuard``: what every rnnkit training adds to Lightning's loop (``train()`` adds it).

- **SIGTERM** (a scheduler's "stop now"): Lightning stops at the next batch boundary with a
  ``SIGTERMException``; this callback then saves ``<checkpoint dir>/interrupted.ckpt`` (the
  weights and loop state of that moment). ``train()`` marks the run ``interrupted`` and the
  script exits with 143. ``ckpt_path=last`` resumes from ``last.ckpt`` (the last epoch end: the
  resumed run ends exactly as an uninterrupted one); ``ckpt_path=<dir>/interrupted.ckpt``
  continues from the moment of the signal instead (mid-epoch, so not bit-identical).
- **Orphaned checkpoints**: a kill between ``ModelCheckpoint`` writing a new best file and
  deleting the old one leaves two; on resume the one the checkpoint does not track is removed.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from rnnkit.utils.logging import get_logger

__all__ = ["RunGuard", "INTERRUPTED"]

INTERRUPTED = "interrupted.ckpt"
log = get_logger(__name__)


class RunGuard(L.Callback):
    """Save a checkpoint on SIGTERM; remove untracked "best" checkpoints when resuming.

    Args:
        dirpath: the run's checkpoint folder.
    """

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            self.saved = self.dirpath / INTERRUPTED
            trainer.save_checkpoint(self.saved)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is None:
            return
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                _remove_orphans(callback)


def _remove_orphans(callback: ModelCheckpoint) -> None:
    """Files of ``callback``'s name pattern that it no longer tracks (left by a kill)."""
    prefix = (callback.filename or "").split("{", 1)[0]
    if not prefix:
        return  # a pattern with no fixed part: nothing tells its files from the user's
    tracked = {Path(p).name for p in callback.best_k_models}
    tracked |= {Path(callback.last_model_path).name, Path(callback.best_model_path).name}
    for path in Path(callback.dirpath).glob(f"{prefix}*.ckpt"):
        if path.name not in tracked:
            log.info(f"Removing {path}: a checkpoint the resumed run does not track")
            path.unlink(missing_ok=True)
