"""SIGTERM during ``fit``: finish the current step, then stop with ``Terminated``.

A scheduler's "stop now" must not tear a step (or a checkpoint write) in half. While
:class:`SigtermFlag` is entered, SIGTERM only sets ``received``; the trainer checks it at each
step boundary and raises :class:`~rnnkit.engine.callback.Terminated`, whose ``on_exception``
hooks run as for any error (:class:`~rnnkit.callbacks.RunGuard` saves ``interrupted.ckpt``
there). A handler installed before (a Python function) is still called.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

from rnnkit.engine.callback import Terminated

__all__ = ["SigtermFlag", "is_terminated"]


def is_terminated(exc: BaseException) -> bool:
    """Whether ``exc`` is a driver's "stopped by SIGTERM": rnnkit's :class:`Terminated`, or
    Lightning's ``SIGTERMException`` (its module is loaded if Lightning raised it; nothing is
    imported to check)."""
    lightning = sys.modules.get("lightning.pytorch.utilities.exceptions")
    return isinstance(exc, Terminated) or (
        lightning is not None and isinstance(exc, lightning.SIGTERMException)
    )


class SigtermFlag:
    """A context in which SIGTERM sets :attr:`received` instead of ending the process.

    Installed only in the main thread (Python delivers signals there); elsewhere it is inert.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if callable(self._previous):
            self._previous(signum, frame)

    def __enter__(self) -> SigtermFlag:
        self.received = False
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGTERM, previous)
            self._installed = False
