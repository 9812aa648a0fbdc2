"""Move models between ``torch.nn`` and rnnkit with the same weights: ``from_torch``, ``to_torch``.

``from_torch(nn.LSTM(...))`` gives a :class:`TorchStyleRNN`: rnnkit cells in a
:class:`~rnnkit.layers.Stacked` (built by :func:`~rnnkit.models.build_stack`) behind the face of
``torch.nn.RNN/LSTM/GRU`` (same constructor arguments, ``batch_first`` honoured, ``hx`` and
``h_n`` laid out as ``(num_layers * num_directions, B, H)``, ``PackedSequence`` accepted), so it
drops into code written for torch. ``model.stack`` is the plain batch-first rnnkit stack.
``to_torch`` goes back, from a :class:`TorchStyleRNN`, a ``Stacked`` of ``Recurrent`` /
``Bidirectional`` layers, one such layer, or one cell, whenever every cell's math is torch's
(``cell.fused_mode`` is set); anything else raises ``ValueError`` saying why.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.cells.base import Cell
from rnnkit.layers import Bidirectional, Recurrent, Stacked
from rnnkit.models.builders import build_stack

# fused_mode -> (rnnkit cell factory, torch layer, torch cell)
_MODES = {
    "RNN_TANH": (partial(ElmanCell, nonlinearity="tanh"), nn.RNN, nn.RNNCell),
    "RNN_RELU": (partial(ElmanCell, nonlinearity="relu"), nn.RNN, nn.RNNCell),
    "LSTM": (LSTMCell, nn.LSTM, nn.LSTMCell),
    "GRU": (GRUCell, nn.GRU, nn.GRUCell),
}
_CELL_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class TorchStyleRNN(nn.Module):
    r"""An rnnkit stack with the constructor, inputs and outputs of ``torch.nn.RNN/LSTM/GRU``.

    Args:
        mode: ``"RNN_TANH"``, ``"RNN_RELU"``, ``"LSTM"`` or ``"GRU"`` (torch's names).
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional: as in
            ``torch.nn.RNN``.
        backend: the rnnkit execution backend of every layer.

    Shape:
        input (T, B, F), or (B, T, F) with ``batch_first``, or (T, F) unbatched, or a
        ``PackedSequence``; hx (D*num_layers, B, H) (a pair ``(h_0, c_0)`` for LSTM) or None;
        lengths (B,) optional, an alternative to packing
        -> output like the input with H*D features (zeros past each length), h_n like hx.

    Attributes:
        stack: the :class:`~rnnkit.layers.Stacked` doing the work, batch-first.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {mode!r}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.stack = build_stack(
            partial(_MODES[mode][0], bias=bias),
            input_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            backend=backend,
        )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.num_directions * self.hidden_size

    def cell(self, layer: int, direction: int = 0) -> Cell:
        """The cell of ``layer`` (0-based) and ``direction`` (0 forward, 1 backward)."""
        return _cells_of(self.stack.layers[layer])[direction]

    def forward(
        self, input: Tensor | PackedSequence, hx=None, lengths: Tensor | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor | tuple[Tensor, Tensor]]:
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            if lengths is not None:
                raise ValueError("TorchStyleRNN: give lengths= or a PackedSequence, not both")
            x, lengths = pad_packed_sequence(input, batch_first=True)  # (B, T, F)
        elif input.dim() == 2:
            unbatched = True
            x = input.unsqueeze(0)  # (1, T, F)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if self.mode == "LSTM" else hx.unsqueeze(1)
        else:
            x = input if self.batch_first else input.transpose(0, 1)  # (B, T, F)
        state = None if hx is None else self._split(hx, x.shape[0])
        out, finals = self.stack(x, lengths, state)  # (B, T, D*H)
        h_n = self._join(finals)
        if packed:
            output = pack_padded_sequence(out, lengths, batch_first=True, enforce_sorted=False)
            return output, h_n
        if unbatched:
            h_n = tuple(h.squeeze(1) for h in h_n) if self.mode == "LSTM" else h_n.squeeze(1)
            return out.squeeze(0), h_n
        return (out if self.batch_first else out.transpose(0, 1)), h_n

    def _split(self, hx, batch_size: int) -> list:
        """torch's ``(D*num_layers, B, H)`` (or ``(h, c)``) -> one rnnkit state per layer."""
        parts = hx if self.mode == "LSTM" else (hx,)
        expected = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        for part in parts:
            if part.shape != expected:
                raise ValueError(
                    f"TorchStyleRNN: hx must have shape (num_layers * num_directions, B, "
                    f"hidden_size) = {expected}, got {tuple(part.shape)}"
                )

        def direction(i: int):
            return tuple(p[i] for p in parts) if self.mode == "LSTM" else parts[0][i]

        D = self.num_directions
        return [
            (direction(D * layer), direction(D * layer + 1)) if D == 2 else direction(layer)
            for layer in range(self.num_layers)
        ]

    def _join(self, finals: list):
        """One rnnkit final state per layer -> torch's ``h_n`` (or ``(h_n, c_n)``)."""
        flat = [s for f in finals for s in (f if self.bidirectional else (f,))]
        if self.mode == "LSTM":
            return torch.stack([h for h, _ in flat]), torch.stack([c for _, c in flat])
        return torch.stack(flat)  # (D*num_layers, B, H)

    def extra_repr(self) -> str:
        return (
            f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"batch_first={self.batch_first}, bidirectional={self.bidirectional}"
        )


def from_torch(module: nn.Module, backend: str = "auto") -> nn.Module:
    """The rnnkit equivalent of a ``torch.nn`` recurrent module, with copies of its weights.

    Args:
        module: ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (any ``num_layers``, ``bidirectional``,
            ``batch_first``, ``nonlinearity``, ``bias``, ``dropout``), or one of
            ``nn.RNNCell``, ``nn.LSTMCell``, ``nn.GRUCell``.
        backend: the execution backend of the rnnkit layers.

    Returns:
        A :class:`TorchStyleRNN` for a layer (same call and outputs as ``module``), or an
        :class:`~rnnkit.cells.ElmanCell`/``LSTMCell``/``GRUCell`` for a cell, on the module's
        device and dtype and in its train/eval mode.

    Raises:
        ValueError: for ``nn.LSTM(proj_size > 0)`` (rnnkit's LSTM has no projection) and for
            any other module.
    """
    param = next(module.parameters())
    if isinstance(module, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        mode = "LSTM" if isinstance(module, nn.LSTMCell) else "GRU"
        if isinstance(module, nn.RNNCell):
            mode = "RNN_TANH" if module.nonlinearity == "tanh" else "RNN_RELU"
        cell = _MODES[mode][0](module.input_size, module.hidden_size, bias=module.bias)
        _copy(cell, _CELL_PARAMS, module, _CELL_PARAMS)
        return cell.to(device=param.device, dtype=param.dtype).train(module.training)
    if not isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        raise ValueError(
            "from_torch: expected nn.RNN, nn.LSTM, nn.GRU or their cells, got "
            f"{type(module).__name__}"
        )
    if getattr(module, "proj_size", 0) != 0:
        raise ValueError(
            f"from_torch: nn.LSTM with proj_size={module.proj_size} has no rnnkit equivalent "
            "(LSTMCell has no projection); use proj_size=0"
        )
    model = TorchStyleRNN(
        module.mode,
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        dropout=module.dropout,
        bidirectional=module.bidirectional,
        backend=backend,
    )
    for layer in range(module.num_layers):
        for direction in range(model.num_directions):
            names = _layer_param_names(layer, direction)
            _copy(model.cell(layer, direction), _CELL_PARAMS, module, names)
    return model.to(device=param.device, dtype=param.dtype).train(module.training)


def to_torch(model: nn.Module) -> nn.Module:
    """The ``torch.nn`` equivalent of an rnnkit model, with copies of its weights.

    Args:
        model: a :class:`TorchStyleRNN` (gives back its ``batch_first``); a
            :class:`~rnnkit.layers.Stacked` of :class:`~rnnkit.layers.Recurrent` or
            :class:`~rnnkit.layers.Bidirectional` layers, or one such layer (gives a
            ``batch_first=True`` module, rnnkit's layout); or an Elman/LSTM/GRU cell (gives
            ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``).

    Raises:
        ValueError: naming the part whose math torch cannot run: a cell without
            ``fused_mode`` (Jordan, NARX, ``GRUCell(reset_after=False)``, a sliding window),
            cell types or hidden sizes or bias settings that differ between layers, a learned
            initial state, residual connections, or directions of different types.
    """
    param = next(model.parameters())
    if isinstance(model, Cell):
        mode = _mode_of(model, "to_torch")
        bias = model.bias_ih is not None
        torch_cell = _MODES[mode][2]
        kwargs = {"nonlinearity": mode[4:].lower()} if mode.startswith("RNN") else {}
        module = torch_cell(model.input_size, model.hidden_size, bias=bias, **kwargs)
        _copy(module, _CELL_PARAMS, model, _CELL_PARAMS)
        return module.to(device=param.device, dtype=param.dtype).train(model.training)
    batch_first = True
    if isinstance(model, TorchStyleRNN):
        batch_first = model.batch_first
        model = model.stack
    if isinstance(model, (Recurrent, Bidirectional)):
        model = Stacked([model])
    if not isinstance(model, Stacked):
        raise ValueError(
            "to_torch: expected a TorchStyleRNN, Stacked, Recurrent, Bidirectional or a cell, "
            f"got {type(model).__name__}"
        )
    if model.residual:
        raise ValueError("to_torch: torch's RNNs have no residual connections (residual=True)")
    cells = [_cells_of(layer) for layer in model.layers]  # [layer][direction]
    first = cells[0][0]
    mode = _mode_of(first, "to_torch")
    bias = first.bias_ih is not None
    for i, layer_cells in enumerate(cells):
        if len(layer_cells) != len(cells[0]):
            raise ValueError("to_torch: every layer must be bidirectional, or none")
        for cell in layer_cells:
            if _mode_of(cell, "to_torch") != mode or (cell.bias_ih is not None) != bias:
                raise ValueError(
                    f"to_torch: torch needs one cell type and one bias setting for all layers; "
                    f"layer {i} has {type(cell).__name__}({cell.extra_repr()}) but layer 0 "
                    f"has {type(first).__name__}({first.extra_repr()})"
                )
            if cell.hidden_size != first.hidden_size:
                raise ValueError(
                    f"to_torch: torch needs one hidden_size for all layers, got "
                    f"{cell.hidden_size} in layer {i} and {first.hidden_size} in layer 0"
                )
    kwargs = {"nonlinearity": mode[4:].lower()} if mode.startswith("RNN") else {}
    module = _MODES[mode][1](
        first.input_size,
        first.hidden_size,
        num_layers=len(cells),
        bias=bias,
        batch_first=batch_first,
        dropout=model.dropout.p,
        bidirectional=len(cells[0]) == 2,
        **kwargs,
    )
    for layer, layer_cells in enumerate(cells):
        for direction, cell in enumerate(layer_cells):
            _copy(module, _layer_param_names(layer, direction), cell, _CELL_PARAMS)
    return module.to(device=param.device, dtype=param.dtype).train(model.training)


def _cells_of(layer: nn.Module) -> list[Cell]:
    """The cells of a ``Recurrent`` ([cell]) or ``Bidirectional`` ([forward, backward])."""
    if isinstance(layer, Bidirectional):
        directions = [layer.forward_layer, layer.backward_layer]
    else:
        directions = [layer]
    cells = []
    for part in directions:
        if not isinstance(part, Recurrent):
            raise ValueError(
                f"to_torch: torch's RNNs run only recurrent cells, got a {type(part).__name__}"
            )
        if part.learn_init:
            raise ValueError(
                "to_torch: torch's RNNs have no learned initial state (learn_init=True); pass "
                "the state as hx instead"
            )
        cells.append(part.cell)
    return cells


def _mode_of(cell: Cell, who: str) -> str:
    if cell.fused_mode not in _MODES:
        raise ValueError(
            f"{who}: {type(cell).__name__}({cell.extra_repr()}) has no torch.nn equivalent "
            "(its math is not exactly torch's RNN, LSTM or GRU)"
        )
    return cell.fused_mode


def _layer_param_names(layer: int, direction: int) -> tuple[str, ...]:
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    return tuple(name + suffix for name in _CELL_PARAMS)


@torch.no_grad()
def _copy(dst: nn.Module, dst_names, src: nn.Module, src_names) -> None:
    for dst_name, src_name in zip(dst_names, src_names, strict=True):
        # torch modules built with bias=False have no bias attributes at all
        target, source = getattr(dst, dst_name, None), getattr(src, src_name, None)
        if (target is None) != (source is None):
            raise ValueError(f"bias mismatch copying {src_name} to {dst_name}")
        if target is not None:
            target.copy_(source)
