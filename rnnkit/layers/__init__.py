"""Layers: unroll cells over time (``Recurrent``), stack them, read both directions, and the
non-recurrent ``SlidingWindow`` baseline with the same face."""

from rnnkit.layers.bidirectional import Bidirectional, reverse_padded
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.sliding_window import SlidingWindow
from rnnkit.layers.stacked import Stacked

__all__ = ["Bidirectional", "Recurrent", "SlidingWindow", "Stacked", "reverse_padded"]
