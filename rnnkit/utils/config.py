"""Hydra/OmegaConf helpers for :mod:`rnnkit.train`: resolvers, the ``info`` fill, printing.

Only :mod:`rnnkit.train` and this package know Hydra; everything else takes plain arguments.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from rnnkit.utils.logging import get_logger, global_rank

log = get_logger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _package_file(package: str, name: str) -> str:
    """``${package_file:sklearn.datasets,data/digits.csv.gz}``: a file shipped in a package.

    Found from the top-level package's folder without importing it: importing scikit-learn
    alone costs seconds of start-up, for a file that is read as plain CSV.
    """
    top, *inner = package.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package_file: package {package!r} is not installed (needed for {name!r})"
        )
    folders = [Path(folder, *inner) for folder in spec.submodule_search_locations]
    found = [folder / name for folder in folders if (folder / name).exists()]
    return str((found or [folders[0] / name])[0])


def register_resolvers() -> None:
    """Register rnnkit's OmegaConf resolvers once: ``project_root`` and ``package_file``."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("package_file"):
        OmegaConf.register_new_resolver("package_file", _package_file)


register_resolvers()


def fill_from_info(cfg: DictConfig, info: Mapping[str, Any], where: str) -> list[str]:
    """Fill every missing (``???``) top-level key of ``cfg`` from ``info``; return those filled.

    Raises:
        KeyError: naming each key that is still missing because ``info`` does not have it.
    """
    filled, missing = [], []
    for key in list(cfg.keys()):
        if not OmegaConf.is_missing(cfg, key):
            continue
        if key in info:
            with open_dict(cfg):
                value = info[key]
                cfg[key] = list(value) if isinstance(value, tuple) else value
            filled.append(str(key))
        else:
            missing.append(str(key))
    if missing:
        raise KeyError(
            f"{where}: {', '.join(repr(k) for k in missing)} is still missing ('???'). The "
            f"datamodule's info provides {sorted(info)}; set it in the config or on the command "
            f"line ({where}.{missing[0]}=...)."
        )
    return filled


def print_config_tree(
    cfg: DictConfig,
    order: Sequence[str] = ("data", "model", "task", "callbacks", "logger", "trainer", "paths"),
    resolve: bool = False,
    save_to: str | Path | None = None,
) -> None:
    """Print the composed config as a rich tree on rank zero (optionally save it as text)."""
    if global_rank() != 0:
        return
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    fields = [f for f in order if f in cfg] + [f for f in cfg if f not in order]
    for field in fields:
        branch = tree.add(str(field), style="bold", guide_style="dim")
        value = cfg[field]
        if isinstance(value, DictConfig):
            text = OmegaConf.to_yaml(value, resolve=resolve)
        else:
            text = str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    if save_to is not None:
        with open(save_to, "w") as file:
            rich.print(tree, file=file)


def apply_extras(cfg: DictConfig) -> None:
    """Optional niceties before a run, driven by ``cfg.extras`` (see ``configs/extras``)."""
    extras = cfg.get("extras")
    if not extras:
        return
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        # unresolved: `???` keys are filled from the data afterwards, and paths stay readable
        print_config_tree(cfg, resolve=False)


def metric_value(metrics: Mapping[str, Any], name: str | None) -> float | None:
    """The value of ``name`` in ``metrics`` (for sweeps); a clear error if it was not logged."""
    if not name:
        return None
    if name not in metrics:
        if name.startswith("val/") and not any(k.startswith("val/") for k in metrics):
            return None  # a run without validation (train.py said so): nothing to optimize
        raise KeyError(
            f"optimized_metric {name!r} was not logged; logged metrics: {sorted(metrics)}"
        )
    return float(metrics[name])
