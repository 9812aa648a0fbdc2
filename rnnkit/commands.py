"""The ``rnnkit`` command: ``rnnkit train|eval|predict [-v] [Hydra options] [key=value ...]``.

``rnnkit train ARGS`` is ``python scripts/train.py ARGS`` for an installed rnnkit, run from any
folder, with the same overrides (``eval`` and ``predict`` likewise). Hydra composes the configs
that ship inside the package (``pkg://rnnkit.configs``, the wheel's copy of the repository's
``configs/``), or, in a clone, ``configs/`` itself. A folder of your own configs laid out the
same way (``my_configs/experiment/NAME.yaml``, ``my_configs/data/NAME.yaml``) joins them with
``--config-dir my_configs``. Data paths are relative to the folder you run in; runs go to
``./outputs/<task_name>/<date-time>/`` (``RNNKIT_OUTPUT_DIR`` moves them).

``-v``/``--verbose`` is the override ``extras.verbose=true``: the full console output.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: what ``eval`` and ``predict`` take from the training run, not from the command line
FROM_THE_RUN = ("experiment", "data", "model", "task")
RUN_CONFIG = "<run dir>/.hydra/config.yaml next to ckpt_path"

USAGE = """\
usage: rnnkit train   [-v] [--config-dir DIR] [key=value ...]   train (and test) a model
       rnnkit eval    [-v] ckpt_path=FILE [key=value ...]       test a checkpoint
       rnnkit predict [-v] ckpt_path=FILE input=FILE [output=FILE]
The overrides are those of scripts/train.py, eval.py and predict.py; `rnnkit train --help`
lists the config groups, `rnnkit train +experiment=quickstart --cfg job` prints a config.
"""


def config_path() -> str:
    """What Hydra composes: ``pkg://rnnkit.configs`` when installed, else the clone's configs/."""
    if (Path(__file__).resolve().parent / "configs" / "train.yaml").is_file():
        return "pkg://rnnkit.configs"  # a wheel: configs/ was packaged as rnnkit/configs/
    return str(Path(__file__).resolve().parents[1] / "configs")


def checkpoint_overrides(command: str, overrides: Sequence[str]) -> list[str]:
    """``eval``/``predict`` overrides with lightning-hydra-template habits made to work.

    Data, model and task come from the training run (:data:`RUN_CONFIG`), so that they fit the
    checkpoint's weights, vocabulary and label map. Hence:

    - ``+experiment=NAME`` is dropped, with a note on stderr (the run already knows it);
    - ``data.KEY=VALUE`` (with or without ``+``) is merged onto the run's data config;
    - ``data=NAME``, ``model...``, ``task...`` are refused with a one-line error (exit status
      2) that says what can be overridden and how.
    """
    kept = []
    for arg in overrides:
        key, sep, value = arg.partition("=")
        name = key.lstrip("+")
        group = name.split(".")[0].split("/")[0]
        if not sep or key.startswith(("-", "~")) or group not in FROM_THE_RUN:
            kept.append(arg)
        elif group == "experiment":
            print(
                f"note: {command}: {arg} is not needed (ignored): data, model and task come "
                f"from the run that wrote ckpt_path ({RUN_CONFIG})",
                file=sys.stderr,
            )
        elif group == "data" and "." in name:
            kept.append(f"++{name}={value}")  # merged onto the run's data config
        else:
            _refuse(
                f"{command}: {arg}: {group} comes from the training run ({RUN_CONFIG}) so that "
                "it fits the checkpoint; override data keys with data.KEY=VALUE (for example "
                "data.test_path=other.csv), the trainer with trainer.KEY=VALUE, or name another "
                "training config with run_config=PATH"
            )
    return kept


def _refuse(message: str) -> None:
    from rnnkit.cli import EXIT_USER_ERROR

    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_USER_ERROR)


# the recipes import rnnkit.train (torch, Lightning) only once Hydra has composed the config:
# `--help` and `--cfg job` answer at once
def _train(cfg: Any) -> float | None:
    from rnnkit.train import train
    from rnnkit.utils.config import metric_value

    return metric_value(train(cfg), cfg.get("optimized_metric"))  # what sweepers optimize


def _eval(cfg: Any) -> None:
    from rnnkit.train import evaluate

    evaluate(cfg)


def _predict(cfg: Any) -> None:
    from rnnkit.train import predict

    predict(cfg)


COMMANDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "train": ("train.yaml", _train),
    "eval": ("eval.yaml", _eval),
    "predict": ("eval.yaml", _predict),
}


def main(argv: Sequence[str] | None = None) -> Any:
    """Run ``rnnkit COMMAND ARGS`` (``argv`` defaults to ``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return None
    command, *rest = args
    if command not in COMMANDS:
        _refuse(f"unknown command {command!r}; use one of {', '.join(COMMANDS)}")
    if "-v" in rest or "--verbose" in rest:
        rest = [a for a in rest if a not in ("-v", "--verbose")] + ["extras.verbose=true"]
    if command != "train":
        rest = checkpoint_overrides(command, rest)
    import hydra

    from rnnkit.cli import handle_errors

    config_name, recipe = COMMANDS[command]
    original = sys.argv

    @functools.wraps(recipe)
    def run(cfg: Any) -> Any:
        # during the run, the command line as given: Lightning's DDP launcher starts each
        # process with `python sys.argv[0] sys.argv[1:]` (or `python -m` this module)
        parsed, sys.argv = sys.argv, original
        try:
            return recipe(cfg)
        finally:
            sys.argv = parsed

    entry = handle_errors(
        hydra.main(version_base="1.3", config_path=config_path(), config_name=config_name)(run)
    )
    sys.argv = [original[0], *rest]  # what Hydra parses
    try:
        return entry()
    finally:
        sys.argv = original
