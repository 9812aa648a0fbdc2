"""``HyperparametersMixin``: ``save_hyperparameters`` and ``hparams``, without Lightning.

Tasks and data modules record the arguments they were built with, as Lightning modules do:
``self.save_hyperparameters(ignore=[...])`` inside ``__init__`` reads the named arguments of
every ``__init__`` frame of ``self`` on the call stack (a subclass's values win over its base's;
a ``**kwargs`` parameter is merged in) into ``self.hparams``, a dict whose keys read as
attributes. A checkpoint stores ``dict(hparams)``; ``TaskModule.load_from_checkpoint`` builds
the class again from it.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterable
from typing import Any


class AttributeDict(dict):
    """A dict whose keys also read and write as attributes (``hparams.lr``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(f"no hyper-parameter {key!r}") from exc

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


def _frame_arguments(frame: types.FrameType) -> dict[str, Any]:
    """The named arguments of ``frame``'s function (and its ``**kwargs``), without ``self``."""
    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:count])
    found = {name: frame.f_locals[name] for name in names[1:] if name in frame.f_locals}
    if code.co_flags & inspect.CO_VARKEYWORDS:
        found.update(frame.f_locals.get(code.co_varnames[count], {}) or {})
    return found


def init_arguments(obj: Any, frame: types.FrameType | None) -> dict[str, Any]:
    """The arguments of every ``__init__`` of ``obj`` on the stack above ``frame``, outer last.

    A subclass's ``__init__`` calls its base's, so the frames nearer the top of the stack belong
    to subclasses; their values are applied last and win.
    """
    layers: list[dict[str, Any]] = []
    while frame is not None:
        code = frame.f_code
        if (
            code.co_name == "__init__"
            and code.co_argcount
            and frame.f_locals.get(code.co_varnames[0]) is obj
        ):
            layers.append(_frame_arguments(frame))
        frame = frame.f_back
    merged: dict[str, Any] = {}
    for layer in layers:  # innermost (the base class) first, the outermost subclass last
        merged.update(layer)
    return merged


class HyperparametersMixin:
    """``save_hyperparameters(ignore=...)`` and ``hparams`` (see the module docstring)."""

    _hparams: AttributeDict

    def save_hyperparameters(self, ignore: Iterable[str] | str | None = None) -> None:
        """Record the ``__init__`` arguments of ``self`` (all but ``ignore``) in ``hparams``."""
        skip = {ignore} if isinstance(ignore, str) else set(ignore or ())
        found = init_arguments(self, inspect.currentframe().f_back)
        self.__dict__["_hparams"] = AttributeDict(
            {k: v for k, v in found.items() if k not in skip}
        )

    @property
    def hparams(self) -> AttributeDict:
        """The recorded arguments (empty until :meth:`save_hyperparameters`)."""
        if "_hparams" not in self.__dict__:
            self.__dict__["_hparams"] = AttributeDict()
        return self.__dict__["_hparams"]
