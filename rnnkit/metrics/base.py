"""``Metric``: a value accumulated over the batches of an epoch, with no host sync per update.

A metric declares its states once (:meth:`Metric.add_state`), each with how it combines over
processes; ``update`` adds a batch to them on the device, ``compute`` turns them into the value
(after reducing them over the processes of a distributed run), ``reset`` empties them for the
next epoch. States move and cast with the module (``.to(device)``, ``.double()``) like buffers,
and are left out of the ``state_dict`` unless :meth:`Metric.persistent` asks for them (a best
value that a resumed run must keep). They are not registered buffers on purpose: DDP
broadcasts every buffer from rank 0 before each forward pass, which would overwrite each
process's own counts with rank 0's.

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
        self._persistent = False
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
        setattr(self, name, [] if reduce == "cat" else default.detach().clone())

    def persistent(self, mode: bool = True) -> None:
        """Keep the tensor states in the ``state_dict`` (``True``) or leave them out."""
        self._persistent = mode

    def _tensor_states(self) -> list[str]:
        return [name for name, reduce in self._reductions.items() if reduce != "cat"]

    def _apply(self, fn: Any, recurse: bool = True) -> Metric:
        super()._apply(fn, recurse)
        for name in self._tensor_states():  # what .to() / .double() do to buffers
            setattr(self, name, fn(getattr(self, name)))
        return self

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self._persistent:
            for name in self._tensor_states():
                state = getattr(self, name)
                destination[prefix + name] = state if keep_vars else state.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, *rest):
        if self._persistent:
            for name in self._tensor_states():
                if prefix + name in state_dict:  # taken out: the base would call it unexpected
                    getattr(self, name).copy_(state_dict.pop(prefix + name))
                elif strict:
                    missing.append(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, *rest)

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
