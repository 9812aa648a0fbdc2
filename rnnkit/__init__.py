"""rnnkit: the classic recurrent family, done properly.

Readable cells (:mod:`rnnkit.cells`), layers that unroll them (:mod:`rnnkit.layers`),
architectures (:mod:`rnnkit.models`), Lightning tasks (:mod:`rnnkit.tasks`) and data
(:mod:`rnnkit.data`). Hydra lives only in :mod:`rnnkit.train`. Weights move to and from
``torch.nn`` with :func:`from_torch` / :func:`to_torch`; :mod:`rnnkit.bptt` writes BPTT out
by hand.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

# imported at first use (PEP 562): `import rnnkit.errors` or the `rnnkit` command's config
# composition do not pay for torch
_SUBMODULES = ("bptt", "cells", "layers", "models")
_FROM_CONVERT = ("TorchStyleRNN", "from_torch", "to_torch")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"rnnkit.{name}")
    if name in _FROM_CONVERT:
        return getattr(importlib.import_module("rnnkit.convert"), name)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


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
