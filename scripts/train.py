"""Train a model: ``python scripts/train.py +experiment=quickstart [-v] [key=value ...]``.

The clone's face of ``rnnkit train`` (:mod:`rnnkit.commands`): Hydra composes
``configs/train.yaml``; :func:`rnnkit.train.train` does the work and returns the metrics; the
value of ``optimized_metric`` goes back to sweepers. ``-v`` is ``extras.verbose=true``.
"""

from __future__ import annotations

import sys

from rnnkit.commands import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
