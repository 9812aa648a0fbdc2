"""The one contract every rnnkit cell follows.

A cell advances one time step: ``(x_t, state) -> (out_t, new_state)``. Layers unroll it over
time without ever asking what kind of cell it is; everything a layer needs to know is an
attribute on the cell:

- ``input_size``, ``hidden_size``, ``output_size``: feature widths of ``x_t``, the state and
  ``out_t``.
- ``fused_mode``: ``"RNN_TANH" | "RNN_RELU" | "LSTM" | "GRU" | None``. Set when the cell's math
  and parameters are exactly torch's, so a layer may call torch's fused kernels instead of the
  Python loop (see ``rnnkit.layers.backends``).
- ``kernel``: name of a hand-written BPTT kernel in ``rnnkit.layers.backends.bptt.KERNELS``
  that runs exactly this cell's math (defaults to ``fused_mode``), or ``None``.
- ``output_feedback``: ``True`` for cells whose state carries their own past outputs (Jordan,
  NARX). Such cells implement :meth:`Cell.teacher_force`, which puts the true output into the
  state (open loop); without it they feed back their own predictions (closed loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

State = Tensor | tuple[Tensor, ...]

# the nonlinearities cells and layers accept by name (``nonlinearity="relu"``)
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


class Cell(nn.Module):
    """Base class of all cells: holds the sizes and the shared helpers, no math.

    Subclasses implement :meth:`init_state`, :meth:`forward` and :meth:`reset_parameters`.
    """

    fused_mode: str | None = None
    kernel: str | None = None
    output_feedback: bool = False

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, output_size=output_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """The zero state for a batch of ``batch_size`` sequences."""
        raise NotImplementedError

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """Advance one step: ``x_t (B, input_size)`` -> ``(out_t (B, output_size), state)``."""
        raise NotImplementedError

    def teacher_force(self, state: State, y_t: Tensor) -> State:
        """Replace the fed-back output in ``state`` by the true output ``y_t (B, output_size)``.

        Only cells with ``output_feedback = True`` implement it (open-loop training).
        """
        raise ValueError(
            f"{type(self).__name__} has no output feedback, so `feedback=` targets cannot be used"
        )

    def _add_torch_weights(self, gates: int, bias: bool) -> None:
        """Register torch's ``weight_ih (G*H, F)``, ``weight_hh (G*H, H)``, ``bias_ih (G*H)`` and
        ``bias_hh (G*H)`` for ``G = gates`` (the biases are ``None`` without ``bias``)."""
        GH = gates * self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(GH, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(GH, self.hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(GH)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(GH)) if bias else None

    def _zeros(self, batch_size: int, width: int, device, dtype) -> Tensor:
        if dtype is None:
            dtype = next(self.parameters()).dtype
        if device is None:
            device = next(self.parameters()).device
        return torch.zeros(batch_size, width, device=device, dtype=dtype)

    def check_input(self, x_t: Tensor) -> None:
        """Raise ``ValueError`` unless ``x_t`` is ``(B, input_size)``."""
        if x_t.dim() != 2 or x_t.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: expected x_t of shape (B, input_size={self.input_size}),"
                f" got {tuple(x_t.shape)}"
            )

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"output_size={self.output_size}"
        )


def check_positive(**sizes: int) -> None:
    """Raise ``ValueError`` naming the first argument that is not a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class ScriptedStepCell(Cell):
    """Base of a cell written as the ``scripted`` backend wants it (CONTRIBUTING, "Cells you
    write yourself"): ``project_input(x)`` (everything that reads only the input), a scriptable
    free function ``step_function(xp_t, state, params) -> (out_t, new_state)`` and
    ``step_parameters()`` (the tensors it reads). ``forward`` is those pieces, so the step's math
    exists once for the loop, the scripted unroll and a single call.

    x_t (B, F), state a tuple of (B, *) tensors -> out_t, new state (a tuple).
    """

    step_function: Callable[[Tensor, list[Tensor], list[Tensor]], tuple[Tensor, list[Tensor]]]

    def project_input(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def step_parameters(self) -> list[Tensor]:
        raise NotImplementedError

    def forward(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self.check_input(x_t)
        out, new = self.step_function(self.project_input(x_t), list(state), self.step_parameters())
        return out, tuple(new)


def uniform_init_(module: nn.Module, hidden_size: int) -> None:
    """torch's RNN initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / hidden_size**0.5
    for weight in module.parameters():
        nn.init.uniform_(weight, -bound, bound)


def check_activation(
    name: str | None, argument: str = "nonlinearity", choices: Iterable[str | None] = ACTIVATIONS
) -> None:
    """Raise ``ValueError`` naming ``argument`` unless ``name`` is one of ``choices``."""
    choices = list(choices)
    if name not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{argument} must be one of {shown}, got {name!r}")
