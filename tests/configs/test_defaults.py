"""One source for every default: a model or task YAML never disagrees with the Python it calls.

The rule (CONTRIBUTING, "Defaults"): widths have no Python default, so the YAML (or the caller)
is their only source; any other value a full YAML file restates must equal the Python default
of the argument it sets, and every key must be an argument of its ``_target_``. A variant (a
file that starts from another option of its group, like ``seq2seq_bahdanau`` from ``seq2seq``)
exists to change values: only its keys are checked, not their values.
"""

from __future__ import annotations

import inspect

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from tests.helpers import CONFIG_DIR, options

WIDTHS = ("hidden_size", "embedding_size", "embedding_dim")


def _is_variant(group: str, option: str) -> bool:
    """Whether ``option`` starts from another option of ``group`` (not a ``base/`` part)."""
    raw = OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml")
    entries = [str(d).split("@")[0] for d in raw.get("defaults", [])]
    return any(e != "_self_" and not e.startswith("base/") for e in entries)


def _check(node: DictConfig, where: str, values: bool = True) -> None:
    """Every plain top-level value of ``node`` against the signature of its ``_target_``.

    Nested factories (a cell or layer ``_partial_``) are that module's own settings: their
    values (a NARX cell's delays, say) are choices of each config, not restated defaults.
    """
    target = str(node._target_)
    params = inspect.signature(get_object(target)).parameters
    for key in node:
        if key == "_target_" or OmegaConf.is_missing(node, key):
            continue
        assert key in params, f"{where}.{key}: {target} has no argument {key!r}"
        nested = OmegaConf.is_interpolation(node, key) or isinstance(node[key], DictConfig)
        if nested or not values:
            continue
        default = params[key].default
        if default is inspect.Parameter.empty or (default is None and key in WIDTHS):
            continue  # no Python default: the YAML is the one source
        value = node[key]
        assert value == default, (
            f"{where}.{key} = {value!r}, but {target}'s default for {key} is {default!r}: "
            "remove the Python default or make them equal (one source for each value)"
        )


@pytest.mark.parametrize("group", ["model", "task"])
def test_yaml_values_equal_the_python_defaults_they_restate(group: str, compose_cfg) -> None:
    for option in options(group):
        cfg = compose_cfg([f"{group}={option}"])
        _check(cfg[group], f"{group}={option}", values=not _is_variant(group, option))


@pytest.mark.parametrize("option", options("model"))
def test_model_widths_have_no_python_default(option: str, compose_cfg) -> None:
    cfg = compose_cfg([f"model={option}"])
    params = inspect.signature(get_object(cfg.model._target_)).parameters
    for name in WIDTHS:
        if name in params:
            default = params[name].default
            assert default in (inspect.Parameter.empty, None), (
                f"{cfg.model._target_}: {name} defaults to {default!r}; widths come from the "
                "YAML or the caller, never from a second default in Python"
            )
