r"""``HiddenGradProbe``: :math:`\partial L/\partial h_t` at every step of every recurrent layer.

What is measured is the *total* derivative of the loss with respect to each step's output
:math:`h_t` (for Elman, LSTM and GRU the output is the hidden state), backpropagated through
the loss **and** through every later step:

.. math::
    \frac{dL}{dh_t} = \frac{\partial L}{\partial h_t}
    + \Big(\frac{\partial h_{t+1}}{\partial h_t}\Big)^{\!\top} \frac{dL}{dh_{t+1}}
    \;[+\ \text{the path through } c_t \text{ for an LSTM}]

This is the quantity that vanishes (or explodes) with distance from the loss. It is *not* the
gradient of the layer's stacked output tensor ``(B, T, H)``: that one holds only the first,
direct term, which for a many-to-one model (a loss on :math:`h_T` only) is zero at every
:math:`t < T` whatever the network.

How: while the probe is active, a forward hook on every :class:`rnnkit.layers.Recurrent`
re-runs that layer's unroll through the reference ``loop`` backend with a thin wrapper around
its cell that keeps each step's output (``retain_grad``) and, optionally, the gate activations,
and returns that result in place of the layer's own. The ``loop`` backend gives the same numbers
as every other backend (``tests/layers`` checks it), so the loss is unchanged; fused kernels
(cuDNN) keep :math:`h_t` inside the kernel, which is why the reference loop is needed. Cell math
is never touched: the gates are recomputed from the cell's parameters, the step's input and the
previous state, for cells whose ``fused_mode`` says their math is torch's (``LSTM``, ``GRU``).
The cost is one extra forward of the hooked layers on the steps the probe is active.

Usage (no Lightning needed)::

    with HiddenGradProbe(model, gates=True) as probe:
        loss = loss_fn(model(x), y)
        loss.backward()
    probe.grad_norms()   # {layer name: (T,) batch mean of ||dL/dh_t||}
    probe.gate_means()   # {layer name: {"i": (T,), "f": (T,), ...}}
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from rnnkit.layers.backends import run_unroll
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.validation import check_lengths

__all__ = ["GATE_NAMES", "HiddenGradProbe", "gate_activations"]

#: the gates each ``fused_mode`` has, in torch's chunk order
GATE_NAMES = {"LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}


def gate_activations(cell: nn.Module, x_t: Tensor, state) -> dict[str, Tensor] | None:
    """The gate activations a torch-math LSTM/GRU cell computes at one step, recomputed.

    Args:
        cell: a cell with ``fused_mode`` ``"LSTM"`` or ``"GRU"`` and torch's parameters
            (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``; chunks i,f,g,o / r,z,n).
        x_t: (B, F) the step's input. state: the state before the step.

    Returns:
        ``{gate: (B, H) activation}`` (sigmoid gates, tanh candidate), or ``None`` for a cell
        whose gates are not torch's.
    """
    mode = getattr(cell, "fused_mode", None)
    if mode not in GATE_NAMES:
        return None
    h = state[0] if isinstance(state, tuple) else state
    gi = x_t @ cell.weight_ih.T  # (B, G*H)
    gh = h @ cell.weight_hh.T  # (B, G*H)
    if cell.bias_ih is not None:
        gi, gh = gi + cell.bias_ih, gh + cell.bias_hh
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        return {"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = (i_r + h_r).sigmoid()
    # torch's GRU: the reset gate multiplies W_hn h + b_hn (fused_mode "GRU" promises this)
    return {"r": r, "z": (i_z + h_z).sigmoid(), "n": (i_n + r * h_n).tanh()}


@dataclass
class _Call:
    """What one forward call of one layer left behind."""

    outputs: list[Tensor] = field(default_factory=list)  # T tensors (B, O), grads retained
    gates: list[dict[str, Tensor]] = field(default_factory=list)  # T dicts of (B,) means
    valid: Tensor | None = None  # (B, T) bool, None when every step is valid


class _WatchedCell:
    """Duck-typed stand-in for a cell: delegates every step, keeps what the probe needs."""

    def __init__(self, cell: nn.Module, call: _Call, gates: bool) -> None:
        self.cell = cell
        self.call = call
        self.gates = gates and getattr(cell, "fused_mode", None) in GATE_NAMES

    def __getattr__(self, name: str):  # sizes, output_feedback, teacher_force, ...
        return getattr(self.cell, name)

    def __call__(self, x_t: Tensor, state):
        if self.gates:
            with torch.no_grad():
                acts = gate_activations(self.cell, x_t, state)
            self.call.gates.append({k: v.float().mean(dim=-1) for k, v in acts.items()})  # (B,)
        out_t, new_state = self.cell(x_t, state)
        if out_t.requires_grad:
            out_t.retain_grad()
        self.call.outputs.append(out_t)
        return out_t, new_state


class HiddenGradProbe:
    """Context manager that records :math:`dL/dh_t` (and gates) of every ``Recurrent`` in a model.

    Args:
        model: any module; every :class:`rnnkit.layers.Recurrent` inside it is watched (the
            model's class does not matter).
        gates: also record the mean activation of each gate of LSTM/GRU cells.

    After ``backward()`` (inside or after the ``with`` block), :meth:`grad_norms` and
    :meth:`gate_means` return one entry per watched layer, keyed by its name in ``model``. A
    layer called several times while active (a decoder run step by step) has its calls joined
    along time.
    """

    def __init__(self, model: nn.Module, gates: bool = False) -> None:
        self.layers = {
            name or type(model).__name__: m
            for name, m in model.named_modules()
            if isinstance(m, Recurrent)
        }
        self.gates = gates
        self.calls: dict[str, list[_Call]] = {name: [] for name in self.layers}
        self._handles: list = []

    def __enter__(self) -> HiddenGradProbe:
        for name, layer in self.layers.items():
            self._handles.append(
                layer.register_forward_hook(self._make_hook(name), with_kwargs=True)
            )
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Detach the hooks (what was recorded stays readable)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _make_hook(self, name: str):
        signature = inspect.signature(Recurrent.forward)

        def hook(layer: Recurrent, args, kwargs, output):
            if not torch.is_grad_enabled():
                return None  # evaluation inside the probe: nothing to backpropagate
            bound = signature.bind(layer, *args, **kwargs)
            bound.apply_defaults()
            x, lengths, state, feedback = (
                bound.arguments[k] for k in ("x", "lengths", "state", "feedback")
            )
            B, T, _ = x.shape
            lengths = check_lengths(lengths, B, T, f"HiddenGradProbe({name})")
            if state is None:
                state = layer.initial_state(B, device=x.device, dtype=x.dtype)
            call = _Call()
            if lengths is not None:
                call.valid = torch.arange(T, device=x.device) < lengths.to(x.device)[:, None]
            watched = _WatchedCell(layer.cell, call, self.gates)
            result = run_unroll("loop", watched, x, lengths, state, feedback)
            self.calls[name].append(call)
            return result

        return hook

    def grad_norms(self) -> dict[str, Tensor]:
        r"""``{layer: (T,)}``: :math:`\lVert dL/dh_t \rVert_2` per sequence, averaged over the
        sequences still running at step t (steps past a sequence's end are left out).

        A step whose output did not reach the loss counts as zero. Layers that were not called
        are left out.
        """
        result = {}
        for name, calls in self.calls.items():
            per_call = []
            for call in calls:
                norms = torch.stack(
                    [
                        torch.zeros(o.shape[0], device=o.device)
                        if o.grad is None
                        else o.grad.detach().float().norm(dim=-1)
                        for o in call.outputs
                    ],
                    dim=1,
                )  # (B, T)
                per_call.append(_masked_mean(norms, call.valid))
            if per_call:
                result[name] = torch.cat(per_call).cpu()
        return result

    def gate_means(self) -> dict[str, dict[str, Tensor]]:
        """``{layer: {gate: (T,)}}``: mean gate activation per step over hidden units and the
        sequences still running; only LSTM/GRU layers, only with ``gates=True``."""
        result: dict[str, dict[str, Tensor]] = {}
        for name, calls in self.calls.items():
            per_gate: dict[str, list[Tensor]] = {}
            for call in calls:
                if not call.gates:
                    continue
                for gate in call.gates[0]:
                    values = torch.stack([step[gate] for step in call.gates], dim=1)  # (B, T)
                    per_gate.setdefault(gate, []).append(_masked_mean(values, call.valid))
            if per_gate:
                result[name] = {g: torch.cat(v).cpu() for g, v in per_gate.items()}
        return result


def _masked_mean(values: Tensor, valid: Tensor | None) -> Tensor:
    """Mean over the batch of ``values (B, T)``, counting only ``valid (B, T)`` entries."""
    if valid is None:
        return values.mean(dim=0)
    weights = valid.to(values.dtype)
    return (values * weights).sum(dim=0) / weights.sum(dim=0).clamp_min(1.0)  # (T,)
