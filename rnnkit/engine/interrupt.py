"""SIGTERM during ``fit``: finish the current step, then stop with :class:`SIGTERMException`.

A scheduler's "stop now" must not tear a step (or a checkpoint write) in half. While
:class:`SigtermFlag` is entered, SIGTERM only sets ``received``; the trainer checks it at each
step boundary and raises :class:`SIGTERMException`, whose ``on_exception`` hooks run as for
any error (:class:`~rnnkit.callbacks.RunGuard` saves ``interrupted.ckpt`` there). A handler
installed before (a Python function) is still called.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["SIGTERMException", "SigtermFlag"]


class SIGTERMException(SystemExit):
    """Training stopped at a step boundary because the process received SIGTERM.

    A ``SystemExit`` as Lightning's exception of the same name: ``except Exception`` blocks
    in user code do not swallow it.
    """


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
