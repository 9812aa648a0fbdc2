"""rnnkit: the classic recurrent family, done properly.

Readable cells (:mod:`rnnkit.cells`), layers that unroll them (:mod:`rnnkit.layers`),
architectures (:mod:`rnnkit.models`), Lightning tasks (:mod:`rnnkit.tasks`) and data
(:mod:`rnnkit.data`). Hydra lives only in :mod:`rnnkit.train`.
"""

from rnnkit import cells, layers, models

__version__ = "0.1.0"

__all__ = ["cells", "layers", "models", "__version__"]
