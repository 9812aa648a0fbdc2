"""rnnkit: the classic recurrent family, done properly.

Readable cells (:mod:`rnnkit.cells`), layers that unroll them (:mod:`rnnkit.layers`),
architectures (:mod:`rnnkit.models`), Lightning tasks (:mod:`rnnkit.tasks`) and data
(:mod:`rnnkit.data`). Hydra lives only in :mod:`rnnkit.train`. Weights move to and from
``torch.nn`` with :func:`from_torch` / :func:`to_torch`; :mod:`rnnkit.bptt` writes BPTT out
by hand.
"""

from rnnkit import bptt, cells, layers, models
from rnnkit.convert import TorchStyleRNN, from_torch, to_torch

__version__ = "0.1.0"

__all__ = [
    "bptt",
    "cells",
    "layers",
    "models",
    "TorchStyleRNN",
    "from_torch",
    "to_torch",
    "__version__",
]
