"""Builders: plain functions that wire cells into layers (torchtune's builder pattern)."""

from __future__ import annotations

from collections.abc import Callable

from rnnkit.cells.base import Cell, check_positive
from rnnkit.layers.bidirectional import Bidirectional
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.stacked import Stacked

CellFactory = Callable[..., Cell]


def build_stack(
    cell: CellFactory,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    residual: bool = False,
    learn_init: bool = False,
    backend: str = "auto",
) -> Stacked:
    """Build ``num_layers`` recurrent layers of ``cell``, optionally bidirectional.

    Args:
        cell: a cell factory called as ``cell(input_size=..., hidden_size=...)``, for example
            ``functools.partial(LSTMCell, forget_bias=1.0)`` or a Hydra ``_partial_`` config.
        input_size: F, features of the first layer's input.
        hidden_size: H of every cell.
        num_layers: layers stacked on each other.
        bidirectional: each layer reads both directions and concatenates them.
        dropout: between layers, never on the recurrent path.
        residual: add each layer's input to its output (layers 2..N).
        learn_init: learn every layer's initial state.
        backend: execution backend of every layer (``auto|loop|compiled|fused``).

    Returns:
        A :class:`Stacked` whose ``output_size`` is the last layer's width
        (``2 * cell.output_size`` when bidirectional).
    """
    check_positive(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
    layers = []
    width = input_size
    for _ in range(num_layers):

        def make(width: int = width) -> Recurrent:
            return Recurrent(
                cell(input_size=width, hidden_size=hidden_size),
                learn_init=learn_init,
                backend=backend,
            )

        layer = Bidirectional(make(), make()) if bidirectional else make()
        layers.append(layer)
        width = layer.output_size
    return Stacked(layers, dropout=dropout, residual=residual)
