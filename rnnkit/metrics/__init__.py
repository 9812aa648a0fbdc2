"""rnnkit's metric objects: epoch values accumulated on the device, reduced over processes.

:class:`Metric` is the base (states, ``update``, ``compute``, ``reset``); the metrics the tasks
use are here, each equal to its torchmetrics counterpart (``tests/metrics`` checks), without
importing torchmetrics (or its scipy and matplotlib) into a training run.
"""

from rnnkit.metrics.aggregation import Max, Mean, Min
from rnnkit.metrics.base import Metric
from rnnkit.metrics.bleu import BLEUScore
from rnnkit.metrics.classification import Accuracy, MacroF1
from rnnkit.metrics.perplexity import Perplexity
from rnnkit.metrics.regression import MeanAbsoluteError, MeanSquaredError

__all__ = [
    "Metric",
    "Mean",
    "Max",
    "Min",
    "Accuracy",
    "MacroF1",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "BLEUScore",
    "Perplexity",
]
