"""``Bidirectional``: a forward and a backward layer over the same sequence, features joined."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.layers.validation import check_lengths


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is.

    ``x (B, T, F)``: row b becomes ``x[b, L_b-1], ..., x[b, 0], x[b, L_b], ..., x[b, T-1]``.
    Applying it twice gives ``x`` back.
    """
    B, T = x.shape[:2]
    if lengths is None:
        return x.flip(1)
    t = torch.arange(T, device=x.device).expand(B, T)  # (B, T)
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class Bidirectional(nn.Module):
    r"""Run ``forward_layer`` left to right and ``backward_layer`` right to left.

    .. math::
        \overrightarrow{h}_t = \text{fwd}(x_t, \overrightarrow{h}_{t-1}), \quad
        \overleftarrow{h}_t = \text{bwd}(x_t, \overleftarrow{h}_{t+1}), \quad
        \text{out}_t = [\overrightarrow{h}_t ; \overleftarrow{h}_t]

    The backward direction starts at each sequence's true end (``lengths``), not at the
    padding, exactly as ``torch.nn`` does with packed sequences.

    Args:
        forward_layer, backward_layer: layers with the ``(x, lengths, state)`` face, usually
            two :class:`Recurrent` of the same cell type.

    Shape:
        x (B, T, F), lengths (B,) -> outputs (B, T, O_fwd + O_bwd),
        final state ``(fwd_state, bwd_state)``; the backward final state is the state after
        reading the sequence's first step.
    """

    def __init__(self, forward_layer: nn.Module, backward_layer: nn.Module) -> None:
        super().__init__()
        if forward_layer.input_size != backward_layer.input_size:
            raise ValueError(
                "Bidirectional: both directions need the same input_size, got "
                f"{forward_layer.input_size} and {backward_layer.input_size}"
            )
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer

    @property
    def input_size(self) -> int:
        return self.forward_layer.input_size

    @property
    def output_size(self) -> int:
        return self.forward_layer.output_size + self.backward_layer.output_size

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: tuple | None = None
    ) -> tuple[Tensor, tuple]:
        lengths = check_lengths(lengths, x.shape[0], x.shape[1], "Bidirectional")
        fwd_state, bwd_state = state if state is not None else (None, None)
        out_fwd, fwd_final = self.forward_layer(x, lengths, fwd_state)
        out_bwd, bwd_final = self.backward_layer(reverse_padded(x, lengths), lengths, bwd_state)
        outputs = torch.cat([out_fwd, reverse_padded(out_bwd, lengths)], dim=-1)  # (B, T, 2O)
        return outputs, (fwd_final, bwd_final)
