"""Test a checkpoint: ``python scripts/eval.py ckpt_path=<run dir>/checkpoints/X.ckpt``.

Rebuilds data, model and task from the run's ``.hydra/config.yaml`` and the checkpoint
(vocabularies and label maps included) and prints the test metrics.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnkit.commands import checkpoint_overrides
from rnnkit.errors import cli
from rnnkit.train import evaluate

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


@cli  # user errors (bad checkpoint, bad input file, ...) print one line, exit status 2
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    # +experiment=NAME, data.KEY=VALUE, data=NAME: a note, a merge, a helpful error
    sys.argv[1:] = checkpoint_overrides("eval", sys.argv[1:])
    main()
