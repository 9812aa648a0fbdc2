"""Predict: ``python scripts/predict.py ckpt_path=X.ckpt input=FILE [output=FILE]``.

``input`` has the training data's format (labels optional). Predictions are written with the
original label names: ``label<TAB>probability<TAB>input`` per sequence, or ``token<TAB>tag``
lines for taggers; to ``output`` or stdout (logs go to stderr).

Language models continue a prompt instead of reading a file:
``python scripts/predict.py ckpt_path=X.ckpt 'prompt="The "' temperature=0.8 top_k=10``
(``prompt='[a, b]'`` for several; ``max_new_tokens=N``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnkit.commands import checkpoint_overrides
from rnnkit.errors import cli
from rnnkit.train import predict

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


@cli  # user errors (bad checkpoint, bad input file, ...) print one line, exit status 2
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    # +experiment=NAME, data.KEY=VALUE, data=NAME: a note, a merge, a helpful error
    sys.argv[1:] = checkpoint_overrides("predict", sys.argv[1:])
    main()
