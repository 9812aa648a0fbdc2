"""Predict: ``python scripts/predict.py ckpt_path=X.ckpt input=FILE [output=FILE]``.

``input`` has the training data's format (labels optional). Predictions are written with the
original label names: ``label<TAB>probability<TAB>input`` per sequence, or ``token<TAB>tag``
lines for taggers; to ``output`` or stdout (logs go to stderr).

Language models continue a prompt instead of reading a file:
``python scripts/predict.py ckpt_path=X.ckpt 'prompt="The "' temperature=0.8 top_k=10``
(``prompt='[a, b]'`` for several; ``max_new_tokens=N``).

The clone's face of ``rnnkit predict`` (:mod:`rnnkit.commands`), with the same overrides.
"""

from __future__ import annotations

import sys

from rnnkit.commands import main

if __name__ == "__main__":
    main(["predict", *sys.argv[1:]])
