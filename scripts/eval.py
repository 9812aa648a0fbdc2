"""Test a checkpoint: ``python scripts/eval.py ckpt_path=<run dir>/checkpoints/X.ckpt``.

Rebuilds data, model and task from the run's ``.hydra/config.yaml`` and the checkpoint
(vocabularies and label maps included) and prints the test metrics.

The clone's face of ``rnnkit eval`` (:mod:`rnnkit.commands`), with the same overrides.
"""

from __future__ import annotations

import sys

from rnnkit.commands import main

if __name__ == "__main__":
    main(["eval", *sys.argv[1:]])
