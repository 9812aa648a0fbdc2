"""Layers: unroll cells over time (``Recurrent``), stack them, read both directions."""

from rnnkit.layers.bidirectional import Bidirectional, reverse_padded
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.stacked import Stacked

__all__ = ["Bidirectional", "Recurrent", "Stacked", "reverse_padded"]
