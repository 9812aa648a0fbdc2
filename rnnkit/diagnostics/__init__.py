"""Diagnostics: look inside recurrent training (gradient flow through time, gates, grad norm).

- :class:`HiddenGradProbe`: framework-free; records dL/dh_t of every ``Recurrent`` in a model.
- :class:`GradientFlow`, :class:`GradNorm`: callbacks (:class:`rnnkit.engine.Callback`) built
  on it (``configs/callbacks/gradient_flow.yaml``, ``configs/callbacks/grad_norm.yaml``).
- :class:`ConfusionMatrixPlot`: true x predicted counts of the test set, as PNG and JSON
  (``configs/callbacks/confusion_matrix.yaml``).
"""

from rnnkit.diagnostics.callbacks import GradientFlow, GradNorm
from rnnkit.diagnostics.confusion import ConfusionMatrixPlot
from rnnkit.diagnostics.probe import GATE_NAMES, HiddenGradProbe, gate_activations

__all__ = [
    "ConfusionMatrixPlot",
    "GATE_NAMES",
    "GradNorm",
    "GradientFlow",
    "HiddenGradProbe",
    "gate_activations",
]
