"""What a config may build, checked before anything is built.

Every ``_target_`` node of a config is a call Hydra will make. Two checks run over all of them
before the first object exists:

- :func:`check_allowed` (configs loaded from disk, e.g. a run folder's ``.hydra/config.yaml``
  that ``eval.py``/``predict.py`` rebuild): every target must be one rnnkit allows, else
  :class:`~rnnkit.errors.UnsafeConfigError` naming the key and the target. A run folder is
  shared like a checkpoint, so its config must not be able to run code (``torch.load`` of a
  pickle, ``os.system``, ...). Allowed: rnnkit's classes and builders (cells, layers, models,
  tasks, data, callbacks, diagnostics; ``rnnkit.engine``'s Trainer, callbacks and loggers),
  torch optimizers and LR schedulers, Lightning callbacks, loggers, strategies and the
  ``Trainer``. The target string is checked before its
  module is imported, and the object it names after (``rnnkit.data.readers.gzip.open`` is
  ``gzip.open``).
- :func:`check_types` (every run): each value given to a target must fit the annotation of the
  parameter it fills (``bool``, ``int``, ``float``, ``str``/paths, ``Literal`` choices, lists,
  mappings, ``None`` for optionals), and each key must be a parameter; so
  ``model.bidirectional=no`` is an error naming the key instead of a bidirectional model.

:func:`instantiate` is Hydra's, recording which config key failed, for the one-line error.
"""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from rnnkit.errors import ConfigError, UnknownConfigKeyError, UnsafeConfigError, closest

__all__ = ["check_allowed", "check_types", "instantiate", "target_nodes", "ALLOWED"]

# modules whose own classes and functions a config from disk may call
RNNKIT_MODULES = (
    "rnnkit.cells",
    "rnnkit.layers",
    "rnnkit.models",
    "rnnkit.tasks",
    "rnnkit.data",
    "rnnkit.callbacks",
    "rnnkit.diagnostics",
    "rnnkit.engine.trainer",
    "rnnkit.engine.callbacks",
    "rnnkit.engine.loggers",
)
ALLOWED = (
    *RNNKIT_MODULES,
    "rnnkit.engine.Trainer",  # the configs' name of rnnkit.engine.trainer.Trainer
    "torch.optim",
    "lightning.pytorch",
    "lightning",
)


def target_nodes(cfg: Any, key: str = "") -> Iterator[tuple[str, DictConfig]]:
    """Every ``(dotted key, node)`` of ``cfg`` that has a ``_target_``, outermost first."""
    if isinstance(cfg, DictConfig):
        if "_target_" in cfg:
            yield key, cfg
        for name in cfg.keys():
            if OmegaConf.is_missing(cfg, name) or OmegaConf.is_interpolation(cfg, name):
                continue
            yield from target_nodes(cfg._get_node(name), f"{key}.{name}" if key else str(name))
    elif isinstance(cfg, ListConfig):
        for i, item in enumerate(cfg._iter_ex(resolve=False)):
            yield from target_nodes(item, f"{key}[{i}]")


def _target_string(node: DictConfig, key: str, where: str) -> str:
    try:
        target = node._target_
    except Exception as exc:  # an interpolation that does not resolve
        raise ConfigError(f"{where}{key}._target_ cannot be resolved: {exc}") from None
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}{key}._target_ is {target!r}, expected a dotted name")
    return target


def _under(name: str, roots: Sequence[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def _locate(target: str, key: str, where: str = "") -> Any:
    from hydra.utils import get_object

    try:
        return get_object(target)
    except Exception:
        module, _, name = target.rpartition(".")
        hint = ""
        try:
            import importlib

            found = closest(name, dir(importlib.import_module(module))) if module else None
            hint = f"; did you mean '{module}.{found}'?" if found else ""
        except Exception:  # the module itself does not import
            pass
        raise ConfigError(
            f"{where}config key '{key}._target_': {target!r} does not exist{hint}"
        ) from None


def _allowed_object(obj: Any) -> bool:
    import torch

    module = getattr(obj, "__module__", "") or ""
    if _under(module, RNNKIT_MODULES):
        return inspect.isclass(obj) or inspect.isfunction(obj)
    if not inspect.isclass(obj):
        return False
    if _under(module, ("torch.optim",)):
        schedulers = (
            torch.optim.lr_scheduler.LRScheduler,
            torch.optim.lr_scheduler.ReduceLROnPlateau,
        )
        return issubclass(obj, (torch.optim.Optimizer, *schedulers))
    if _under(module, ("lightning.pytorch",)):
        import lightning.pytorch as pl  # only for a Lightning target: a run on rnnkit's Trainer

        kinds = (pl.Callback, pl.loggers.Logger, pl.Trainer, pl.strategies.Strategy)
        return issubclass(obj, kinds)
    return False


def check_allowed(cfg: DictConfig, source: str | os.PathLike) -> None:
    """Refuse a config (loaded from ``source``) that would call anything not allowed.

    Raises:
        UnsafeConfigError: ``source: config key 'data._target_' is 'torch.load', ...``.
    """
    where = f"{source}: "
    for key, node in target_nodes(cfg):
        target = _target_string(node, key, where)
        refusal = UnsafeConfigError(
            f"{where}config key '{key}._target_' is {target!r}, which a config loaded from "
            "disk may not call (it could run code); allowed: rnnkit's cells, layers, models, "
            "tasks, data, callbacks and diagnostics, rnnkit's Trainer, its callbacks and "
            "loggers, torch optimizers and LR schedulers, Lightning callbacks, loggers, "
            "strategies and the Trainer"
        )
        if not _under(target, ALLOWED):  # refused before anything is imported
            raise refusal
        if not _allowed_object(_locate(target, key, where)):
            raise refusal


# --- types --------------------------------------------------------------------------------------
def _parameters(obj: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """``(parameters, type hints, takes **kwargs)`` of a target, following ``**kwargs`` up the
    class hierarchy (a DataModule passes them to its base)."""
    functions = (
        [c.__init__ for c in obj.__mro__ if "__init__" in vars(c)]
        if inspect.isclass(obj)
        else [obj]
    )
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    var_keyword = True
    for function in functions:
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return params, hints, True
        try:
            hints.update(
                {k: v for k, v in typing.get_type_hints(function).items() if k not in hints}
            )
        except Exception:  # an annotation that does not evaluate: check names only
            pass
        var_keyword = False
        for p in signature.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                var_keyword = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                params.setdefault(p.name, p)
        if not var_keyword or function is object.__init__:
            break
    if inspect.isclass(obj) and var_keyword and functions[-1] is object.__init__:
        var_keyword = False  # the chain of **kwargs ends at object: no other key is accepted
    return params, hints, var_keyword


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a config value fits a type annotation (unknown annotations accept anything)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = typing.get_args(hint)
        if isinstance(value, (bool, int, float, str)) and any(a in _NAMES for a in arms):
            # `float | Tensor` given "abc": a config scalar can only be one of the plain arms
            arms = tuple(a for a in arms if a in _NAMES or typing.get_origin(a) is typing.Literal)
        return any(_fits(value, h) for h in arms)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if isinstance(value, DictConfig) and "_target_" in value:
        return True  # built by Hydra: its result's type is not known here
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if (
        hint is str
        or hint is os.PathLike
        or (inspect.isclass(hint) and issubclass(hint, os.PathLike))
    ):
        return isinstance(value, str)
    container = origin or hint
    if (
        inspect.isclass(container)
        and issubclass(container, (list, tuple, Sequence))
        and container is not str
    ):
        return isinstance(value, ListConfig)
    if inspect.isclass(container) and issubclass(container, (dict, Mapping)):
        return isinstance(value, DictConfig)
    return True


def _expected(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = [_expected(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _check_value(key: str, value: Any, hint: Any) -> None:
    # null is left to the target: many parameters take None without saying so
    if value is None or value == "???" or _fits(value, hint):
        return
    if isinstance(value, (ListConfig, DictConfig)):
        shown = "a list" if isinstance(value, ListConfig) else "a mapping"
    else:
        shown = repr(value)
    raise ConfigError(f"config key '{key}' is {shown}, expected {_expected(hint)}")


def _value(node: DictConfig, name: str) -> Any:
    try:
        return node[name]
    except Exception:  # an interpolation only the running job can resolve (${hydra:...})
        return None


def check_types(cfg: DictConfig, top_level: Mapping[str, Any] | None = None) -> None:
    """Check every value given to a ``_target_`` against its parameter (see module docstring).

    Args:
        top_level: plain top-level keys and their annotations (``{"seed": int | None}``).

    Raises:
        UnknownConfigKeyError: a key the target does not take (with the closest one).
        ConfigError: ``config key 'model.bidirectional' is 'no', expected true or false``.
    """
    for key, hint in (top_level or {}).items():
        if key in cfg:
            _check_value(key, _value(cfg, key), hint)
    for key, node in target_nodes(cfg):
        target = _target_string(node, key, "")
        params, hints, var_keyword = _parameters(_locate(target, key))
        for name in node.keys():
            name = str(name)
            full = f"{key}.{name}" if key else name
            if name.startswith("_") and name.endswith("_"):
                continue  # Hydra's own keys (_target_, _partial_, _args_, ...)
            if name not in params:
                if var_keyword:
                    continue
                raise UnknownConfigKeyError(full, params, where=f"the arguments of {target}")
            if OmegaConf.is_missing(node, name):
                continue
            _check_value(full, _value(node, name), hints.get(name, params[name].annotation))


def instantiate(node: DictConfig, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``; an error keeps the failing node's key as ``config_key``."""
    try:
        return hydra_instantiate(node, *args, **kwargs)
    except InstantiationException as exc:
        exc.config_key = node._get_full_key(None) or None  # type: ignore[attr-defined]
        raise
