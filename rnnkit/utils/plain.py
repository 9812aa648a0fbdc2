"""Configs and hyper-parameters as plain data (dicts, lists, numbers, strings, tensors).

Plain data is what ``torch.load(weights_only=True)`` and JSON accept, and what two runs'
configs are compared on (:func:`first_difference`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["to_plain", "first_difference", "MISSING"]


def _dotted_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}" if module else name


def to_plain(value: Any) -> Any:
    """``value`` as data that ``torch.load(weights_only=True)`` accepts.

    OmegaConf containers become dicts/lists (resolved when possible), ``functools.partial`` a
    Hydra-style ``{"_target_": ..., "_partial_": True, **kwargs}``, classes and functions their
    dotted name, paths strings, numpy arrays tensors; anything else unknown its ``repr``.
    """
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover
        DictConfig = ListConfig = ()  # type: ignore[assignment]
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor, torch.dtype)):
        return value
    if DictConfig and isinstance(value, (DictConfig, ListConfig)):
        try:
            container = OmegaConf.to_container(value, resolve=True)
        except Exception:  # unresolvable interpolation: keep it as written
            container = OmegaConf.to_container(value, resolve=False)
        return to_plain(container)
    if isinstance(value, Mapping):
        return {
            str(k) if not isinstance(k, (int, str)) else k: to_plain(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_plain(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, functools.partial):
        plain = {"_target_": _dotted_name(value.func), "_partial_": True}
        if value.args:
            plain["_args_"] = [to_plain(a) for a in value.args]
        plain.update({k: to_plain(v) for k, v in value.keywords.items()})
        return plain
    if isinstance(value, type) or callable(value):
        return _dotted_name(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return torch.from_numpy(value.copy())
        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return repr(value)


MISSING = object()


def first_difference(saved: Any, current: Any, prefix: str) -> tuple[str, Any, Any] | None:
    """The first dotted key where two plain configs differ: ``(key, saved, current)``."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        for key in sorted(set(saved) | set(current), key=str):
            a, b = saved.get(key, MISSING), current.get(key, MISSING)
            found = first_difference(a, b, f"{prefix}.{key}")
            if found:
                return found
        return None
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        if len(saved) != len(current):
            return prefix, list(saved), list(current)
        for i, (a, b) in enumerate(zip(saved, current, strict=False)):
            found = first_difference(a, b, f"{prefix}[{i}]")
            if found:
                return found
        return None
    if current == "???":  # not filled in yet (from the data): nothing to compare
        return None
    if saved != current:
        return prefix, saved, current
    return None
