"""``Metric``: a value accumulated over the batches of an epoch, with no host sync per update.

A metric declares its states once (:meth:`Metric.add_state`), each with how it combines over
processes; ``update`` adds a batch to them on the device, ``compute`` turns them into the value
(after reducing them over the processes of a distributed run), ``reset`` empties them for the
next epoch. States are buffers, so they move with the module (``.to(device)``); they are left
out of the ``state_dict`` unless :meth:`Metric.persistent` asks for them (a best value that a
resumed run must keep).

A subclass writes ``_update(...)`` and ``_compute()``; the base counts the updates
(``update_count``: 0 means nothing to report this epoch) and reduces before computing.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.metrics.distributed import REDUCTIONS, all_gather_cat, all_reduce, distributed


class Metric(nn.Module):
    """Base of rnnkit's metrics; see the module docstring.

    Attributes:
        update_count: ``update`` calls since the last :meth:`reset` (empty updates count).
    """

    def __init__(self) -> None:
        super().__init__()
        self._defaults: dict[str, Tensor] = {}
        self._reductions: dict[str, str] = {}
        self.update_count = 0

    def add_state(self, name: str, default: Tensor, reduce: str = "sum") -> None:
        """Declare the state ``name``, starting (and reset to) ``default``.

        ``reduce`` combines the processes' states: ``"sum"``, ``"max"``, ``"min"`` elementwise,
        or ``"cat"``: rows appended by every update (kept as a list of tensors, concatenated
        once by :meth:`rows`: appending to one tensor would copy all rows every update); its
        ``default`` is an empty tensor ``(0, ...)`` of the rows' dtype and trailing shape.
        """
        where = f"{type(self).__name__}.add_state({name!r})"
        if reduce not in REDUCTIONS:
            raise ValueError(f"{where}: reduce must be one of {REDUCTIONS}, got {reduce!r}")
        if hasattr(self, name):  # a state named "rows" or "reset" would hide the method
            raise ValueError(f"{where}: the name is taken by an attribute or method")
        self._defaults[name] = default.detach().clone()
        self._reductions[name] = reduce
        if reduce == "cat":
            setattr(self, name, [])
        else:
            self.register_buffer(name, default.detach().clone(), persistent=False)

    def persistent(self, mode: bool = True) -> None:
        """Keep the tensor states in the ``state_dict`` (``True``) or leave them out."""
        for name, reduce in self._reductions.items():
            if reduce != "cat":
                self.register_buffer(name, getattr(self, name), persistent=mode)

    def rows(self, name: str) -> Tensor:
        """The rows of the ``cat`` state ``name`` as one tensor (its default when empty)."""
        parts = getattr(self, name)
        if isinstance(parts, Tensor):  # already one tensor: gathered over the processes
            return parts
        return torch.cat(parts) if parts else self._defaults[name]

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add one batch to the states (the arguments are the subclass's ``_update``'s)."""
        with torch.no_grad():  # a state never keeps the autograd graph of a batch
            self._update(*args, **kwargs)
        self.update_count += 1

    def compute(self) -> Any:
        """The value of every update since the last reset, over all processes."""
        if not distributed():
            return self._compute()
        local = {name: getattr(self, name) for name in self._reductions}
        for name, reduce in self._reductions.items():
            if reduce == "cat":
                setattr(self, name, all_gather_cat(self.rows(name)))
            else:
                setattr(self, name, all_reduce(local[name], reduce))
        try:
            return self._compute()
        finally:  # the local states stay this process's own: a second compute must not add
            for name, value in local.items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Back to the defaults, with no update counted."""
        for name, reduce in self._reductions.items():
            if reduce == "cat":
                setattr(self, name, [])
            else:
                getattr(self, name).copy_(self._defaults[name])
        self.update_count = 0

    def _update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define _update")

    def _compute(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define _compute")
