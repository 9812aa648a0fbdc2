"""``Stacked``: layers on top of each other, dropout between them, never on the recurrent path."""

from __future__ import annotations

from torch import Tensor, nn


class Stacked(nn.Module):
    r"""Feed each layer's outputs to the next.

    .. math::
        \text{out}^{(1)} = \text{layer}_1(x), \quad
        \text{out}^{(l)} = \text{layer}_l(\text{drop}(\text{out}^{(l-1)}))
        \;[+\, \text{drop}(\text{out}^{(l-1)}) \text{ if residual}]

    Dropout acts on what flows *up* between layers, never on a layer's own state from step to
    step (Zaremba, Sutskever & Vinyals 2014, "Recurrent neural network regularization": noise
    on the recurrent path compounds with every step), and not after the
    last layer (torch's rule).

    Args:
        layers: layers with the ``(x, lengths, state) -> (outputs, state)`` face.
        dropout: probability of zeroing an activation between two layers.
        residual: add each layer's input to its output (layers 2..N; sizes must match).

    Shape:
        x (B, T, F), lengths (B,), state: list with one entry per layer (or None)
        -> outputs (B, T, O_last), final state: list with one entry per layer.
        ``feedback`` (true outputs for output-feedback cells) goes to the last layer.
    """

    def __init__(self, layers: list[nn.Module], dropout: float = 0.0, residual: bool = False):
        super().__init__()
        if not layers:
            raise ValueError("Stacked: needs at least one layer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Stacked: dropout must be in [0, 1), got {dropout}")
        for i in range(1, len(layers)):
            if layers[i].input_size != layers[i - 1].output_size:
                raise ValueError(
                    f"Stacked: layer {i} expects input_size={layers[i].input_size} but layer "
                    f"{i - 1} gives output_size={layers[i - 1].output_size}"
                )
            if residual and layers[i].output_size != layers[i].input_size:
                raise ValueError(
                    f"Stacked: residual=True needs layer {i} to keep its width, got "
                    f"{layers[i].input_size} -> {layers[i].output_size}"
                )
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.residual = residual

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        state: list | None = None,
        feedback: Tensor | None = None,
    ) -> tuple[Tensor, list]:
        if state is not None and len(state) != len(self.layers):
            raise ValueError(
                f"Stacked: state must have one entry per layer ({len(self.layers)}), "
                f"got {len(state)}"
            )
        finals = []
        out = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            inp = self.dropout(out) if i > 0 else out
            layer_state = state[i] if state is not None else None
            if i == last and feedback is not None:
                out, final = layer(inp, lengths, layer_state, feedback=feedback)
            else:
                out, final = layer(inp, lengths, layer_state)
            if self.residual and i > 0:
                out = out + inp
            finals.append(final)
        return out, finals
