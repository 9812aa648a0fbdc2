"""Sweeps that survive an interruption: continue an Optuna search without redoing its trials.

The Optuna searches (``configs/hparams_search/*_optuna.yaml``) keep their study in a SQLite file
in the sweep folder (``hydra.sweeper.storage=sqlite:///<sweep dir>/optuna.db``, fixed
``study_name``) and name each trial's folder after its parameters
(``hydra.sweep.subdir=${trial_dir:${hydra.job.override_dirname}}``). To continue a search that
was stopped, run the same command again with the same sweep folder and ``resume=true``::

    python scripts/train.py -m +experiment=quickstart +hparams_search=quickstart_optuna \\
        hydra.sweep.dir=outputs/quickstart/search1 resume=true

:class:`ResumeOptunaStudy` (a Hydra callback, listed in those configs) then, before the sweeper
starts: re-queues the parameters of the trials that were still running when the search stopped
(and marks those trials failed), and lowers ``n_trials`` by the trials already finished, so the
search ends with ``n_trials`` in all. The re-queued trial lands in the same folder, where
``resume=true`` continues it from its ``last.ckpt``; finished trials are not run again.

A plain multirun (``-m a=1,2``) numbers its jobs the same way every time, so re-running it with
the same ``hydra.sweep.dir`` and ``resume=true`` skips finished jobs and resumes the others.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

SQLITE = "sqlite:///"


def trial_dir(override_dirname: str, max_length: int = 120) -> str:
    """A folder name for a job's overrides: readable, filesystem-safe, stable across reruns.

    ``${trial_dir:${hydra.job.override_dirname}}``: characters other than letters, digits and
    ``._=,+-`` become ``_``; a long name is cut and made unique with a short hash.
    """
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "_", override_dirname) or "default"
    if len(safe) > max_length:
        digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:10]
        safe = f"{safe[: max_length - 11]}-{digest}"
    return safe


def register_resolvers() -> None:
    """Register ``trial_dir`` (used by ``hydra.sweep.subdir`` in the Optuna searches)."""
    if not OmegaConf.has_resolver("trial_dir"):
        OmegaConf.register_new_resolver("trial_dir", trial_dir)


register_resolvers()


def prepare_study(storage: str, study_name: str, n_trials: int) -> int:
    """Re-queue interrupted trials of a stored study; return how many trials are still to run.

    Args:
        storage: an Optuna storage URL (``sqlite:///path/optuna.db``).
        study_name: the study to continue (nothing happens if it does not exist yet).
        n_trials: the trials the whole search should have.

    Returns:
        ``n_trials`` minus the trials that already ended (complete, pruned or failed).
    """
    import optuna
    from optuna.trial import TrialState

    if storage.startswith(SQLITE):
        Path(storage[len(SQLITE) :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # a new study: Optuna creates it
        return n_trials
    stale = [t for t in study.trials if t.state == TrialState.RUNNING]
    for trial in stale:
        # the run was killed: the trial never reported; run its parameters again (its folder
        # holds its last.ckpt, which resume=true continues from)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    stale_numbers = {t.number for t in stale}
    done = sum(1 for t in study.trials if t.state in ended and t.number not in stale_numbers)
    remaining = max(0, n_trials - done)
    log.info(
        f"Optuna study {study_name!r}: {done} trials already ended, {len(stale)} interrupted "
        f"(queued again); running {remaining} more"
    )
    return remaining


class ResumeOptunaStudy(Callback):
    """Hydra callback: continue a stored Optuna study (see the module docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        storage, name = sweeper.get("storage"), sweeper.get("study_name")
        if not storage or not name or "n_trials" not in sweeper:
            return
        remaining = prepare_study(str(storage), str(name), int(sweeper.n_trials))
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweeper.n_trials = remaining
