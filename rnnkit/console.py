"""What a run prints: the user's metrics, the user's problems, and nothing else.

By default (``extras.verbose: false``) :func:`setup` makes the console quiet, once at the start
of ``train``/``evaluate``/``predict``:

- Python warnings that the user cannot act on (:data:`NOT_YOURS`: a deprecation inside
  Lightning's pytree code, the "does not have many workers" tip) are filtered;
- log records of other packages below WARNING (Lightning's accelerator report, tips, seed and
  checkpoint notices, the model summary) go to the run's log file only, not to the console;
  rnnkit's own INFO records stay, without the ``[time][logger][level]`` prefix;
- :class:`EpochLines` prints one line per epoch with the metrics the progress bar would show,
  when the progress bar is off (``trainer.enable_progress_bar: false``, the default);
- :func:`summary_line` is the last line: the metrics, the run folder, the best checkpoint.

``extras.verbose: true`` (``rnnkit -v``) leaves all of it as the libraries print it, prints
the config tree (``extras.print_config``) and rnnkit's DEBUG records. The composed config is
always in the run folder (``.hydra/config.yaml``).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnkit.engine import Callback
from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

#: (message regex, category) of warnings filtered in quiet mode: none says anything about the
#: user's model, data or config
NOT_YOURS: tuple[tuple[str, type[Warning]], ...] = (
    # torch 2.13 deprecates a check that Lightning's own pytree helper makes, every batch
    (r".*isinstance\(treespec, LeafSpec\)", FutureWarning),
    # a DataLoader throughput tip; rnnkit's datasets live in memory (num_workers=0 is right)
    (r".*does not have many workers", UserWarning),
    # fewer batches than log_every_n_steps: about per-step rows, while rnnkit's tasks log
    # (and this console shows) per-epoch metrics
    (r".*is smaller than the logging interval", UserWarning),
    # under DDP, once per epoch value a task logs: rnnkit's metric objects already reduced it
    # over the processes (rnnkit.metrics.Metric.compute), so sync_dist would add nothing
    (r".*when logging on epoch level in distributed setting", UserWarning),
)

#: loggers whose INFO records are detail, kept out of the quiet console (the log file has them)
DETAIL = frozenset(
    {
        "rnnkit.layers.backends",  # "backend auto: ... picked native"
        "rnnkit.engine.summary",  # the model summary table (Lightning's went to the log file too)
    }
)

_LIBRARIES = ("lightning", "lightning.pytorch", "lightning.fabric")


def verbose(cfg: Mapping[str, Any]) -> bool:
    """Whether ``cfg`` asks for the full output (``extras.verbose``)."""
    extras = cfg.get("extras") or {}
    return bool(extras.get("verbose", False))


class QuietConsole(logging.Filter):
    """A console handler's filter: WARNING and above, and rnnkit's INFO (less :data:`DETAIL`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        ours = record.name == "rnnkit" or record.name.startswith("rnnkit.")
        return ours and record.levelno >= logging.INFO and record.name not in DETAIL


class ConsoleFormatter(logging.Formatter):
    """The message alone; ``warning:``/``error:`` in front of those levels."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


def _console_handlers() -> list[logging.Handler]:
    """The root logger's handler named ``console``: Hydra's (``hydra.job_logging``)."""
    return [h for h in logging.getLogger().handlers if h.get_name() == "console"]


def setup(cfg: Mapping[str, Any]) -> None:
    """Make the console quiet, or not (``extras.verbose``); idempotent, call at a run's start.

    Under Hydra, Lightning's loggers are routed to the root logger's handlers (Hydra's console
    and ``<run dir>/<task_name>.log``) instead of a stream handler of their own.
    """
    quiet = not verbose(cfg)
    consoles = _console_handlers()
    if consoles:
        for name in _LIBRARIES:
            library = logging.getLogger(name)
            for handler in [h for h in library.handlers if type(h) is logging.StreamHandler]:
                library.removeHandler(handler)
            library.propagate = True
    for handler in consoles:
        for old in [f for f in handler.filters if isinstance(f, QuietConsole)]:
            handler.removeFilter(old)
        if quiet:
            handler.addFilter(QuietConsole())
            handler.setFormatter(ConsoleFormatter())
    logging.getLogger("rnnkit").setLevel(logging.NOTSET if quiet else logging.DEBUG)
    for message, category in NOT_YOURS:
        present = [f for f in warnings.filters if _same(f, ("ignore", message, category))]
        if quiet and not present:
            warnings.filterwarnings("ignore", message=message, category=category)
        elif not quiet:
            for f in present:
                warnings.filters.remove(f)


def _same(entry: tuple, wanted: tuple[str, str, type[Warning]]) -> bool:
    """Whether a ``warnings.filters`` entry (regex compiled) is ``(action, regex, category)``."""
    action, message, category, _module, _lineno = entry
    pattern = getattr(message, "pattern", message)
    return (action, pattern, category) == wanted


def _fmt(value: float) -> str:
    """Four decimals for losses and rates (``1.0000``), four digits above ten, none from 1e4."""
    if abs(value) < 10:
        return f"{value:.4f}"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def metrics_text(metrics: Mapping[str, Any]) -> str:
    """``name value`` pairs, two spaces apart, in the order given (tensors and floats)."""
    parts = []
    for name, value in metrics.items():
        try:
            parts.append(f"{name} {_fmt(float(value))}")
        except (TypeError, ValueError):
            continue
    return "  ".join(parts)


class EpochLines(Callback):
    """One console line per training epoch: ``epoch 3/15  train/loss 0.41  val/loss 0.38 ...``.

    The metrics are those the task logs to the progress bar (``prog_bar=True``; every logged
    one under a driver that does not tell them apart); the time is the epoch's wall clock,
    validation included. The line is written when the next epoch starts (or training ends): the
    task logs its training values in its own ``on_train_epoch_end``, which the drivers run
    after this callback's.
    """

    def __init__(self) -> None:
        self._start = 0.0
        self._ended: tuple[int, float] | None = None  # (epoch, seconds) not yet written

    def on_train_epoch_start(self, trainer: Any, task: Any) -> None:
        self._write(trainer)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, task: Any) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._ended = (trainer.current_epoch, time.perf_counter() - self._start)

    def on_train_end(self, trainer: Any, task: Any) -> None:
        self._write(trainer)

    def _write(self, trainer: Any) -> None:
        if self._ended is None:
            return
        epoch, seconds = self._ended
        self._ended = None
        shown = dict(getattr(trainer, "progress_bar_metrics", None) or trainer.callback_metrics)
        total = f"/{trainer.max_epochs}" if (trainer.max_epochs or -1) > 0 else ""
        text = metrics_text(dict(sorted(shown.items(), key=lambda kv: _order(kv[0]))))
        log.info(f"epoch {epoch + 1}{total}  {text}  ({seconds:.1f} s)")


def _order(name: str) -> tuple[int, str]:
    """train/* first, then val/*, then the rest; alphabetical within each."""
    for rank, prefix in enumerate(("train/", "val/")):
        if name.startswith(prefix):
            return rank, name
    return 2, name


def _shown_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """``path`` relative to ``base`` (default: the current folder) when inside it, else as is."""
    try:
        return str(Path(path).resolve().relative_to(Path(base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def summary_line(
    what: str,
    metrics: Mapping[str, float],
    run_dir: str | os.PathLike,
    ckpt: str = "",
    ckpt_label: str = "checkpoint",
    names: Sequence[str] | None = None,
) -> str:
    """The last line of a run: ``<what>: test/acc 0.97 ... | run <dir> | <label> <ckpt>``.

    The test metrics are shown (of every test split: ``test/``, ``test1/``, ...), or the
    validation ones when nothing was tested; with ``names`` (a task's ``summary_metrics``) only
    those after the split's ``/``, and a count of the others, which ``summary.json`` holds. The
    checkpoint is shown relative to the run folder when it lies inside it.
    """
    tested = {k: v for k, v in metrics.items() if k.startswith("test")}
    shown = tested or {k: v for k, v in metrics.items() if k.startswith("val/")}
    hidden = 0
    if names is not None:
        kept = {k: v for k, v in shown.items() if k.partition("/")[2] in names}
        hidden, shown = len(shown) - len(kept), kept
    text = metrics_text(dict(sorted(shown.items()))) or "no metrics"
    if hidden:
        text += f"  (+{hidden} more in summary.json)"
    parts = [f"{what}: {text}", f"run {_shown_path(run_dir)}"]
    if ckpt:
        parts.append(f"{ckpt_label} {_shown_path(ckpt, base=run_dir)}")
    return "  |  ".join(parts)
