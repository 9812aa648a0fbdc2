"""``RunGuard``: what every rnnkit training adds to the driver's loop (``train()`` adds it).

- **SIGTERM** (a scheduler's "stop now"): the driver stops at the next batch boundary and hands
  the callbacks :class:`~rnnkit.engine.callback.Terminated` (Lightning's ``SIGTERMException``,
  translated by the adapter); this callback then saves ``<checkpoint dir>/interrupted.ckpt``
  (the weights and loop state of that moment). ``train()`` marks the run ``interrupted`` and the
  script exits with 143. ``ckpt_path=last`` resumes from ``last.ckpt`` (the last epoch end: the
  resumed run ends exactly as an uninterrupted one); ``ckpt_path=<dir>/interrupted.ckpt``
  continues from the moment of the signal instead (mid-epoch, so not bit-identical).
- **Orphaned checkpoints**: a kill between a checkpoint callback writing a new best file and
  deleting the old one leaves two; on resume the one the checkpoint does not track is removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.engine import Callback, Terminated
from rnnkit.utils.logging import get_logger

__all__ = ["RunGuard", "INTERRUPTED"]

INTERRUPTED = "interrupted.ckpt"
log = get_logger(__name__)


class RunGuard(Callback):
    """Save a checkpoint on SIGTERM; remove untracked "best" checkpoints when resuming.

    Args:
        dirpath: the run's checkpoint folder.
    """

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None
        self._fitting = False  # a SIGTERM outside fit (testing) has no training to keep
        self._resumed = False  # fit restored a checkpoint (this callback's state with it)

    def on_fit_start(self, trainer: Any, task: Any) -> None:
        self._fitting = True

    def on_fit_end(self, trainer: Any, task: Any) -> None:
        self._fitting = False

    def on_load_checkpoint(self, trainer: Any, task: Any, checkpoint: dict[str, Any]) -> None:
        self._resumed = True

    def on_exception(self, trainer: Any, task: Any, exception: BaseException) -> None:
        if isinstance(exception, Terminated) and self._fitting:
            self.saved = self.dirpath / INTERRUPTED
            trainer.save_checkpoint(self.saved)

    def on_train_start(self, trainer: Any, task: Any) -> None:
        if not self._resumed:
            return
        for callback in trainer.callbacks:
            # a checkpoint callback (Lightning's or rnnkit's): it tracks the files it wrote
            if hasattr(callback, "best_k_models") and getattr(callback, "dirpath", None):
                _remove_orphans(callback)


def _remove_orphans(callback: Any) -> None:
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
