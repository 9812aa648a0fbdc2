r"""Callbacks that show what training does inside: gradient flow, gates, gradient norm.

- :class:`GradientFlow`: every ``every_n_steps`` training steps, :math:`\lVert dL/dh_t \rVert`
  for t = 1..T in every recurrent layer (see :mod:`rnnkit.diagnostics.probe`), optionally the
  mean LSTM/GRU gate activations; logs summaries, and at the end of training writes a heatmap
  (time step x training step), a line plot and the raw numbers into the run directory.
- :class:`GradNorm`: logs ``train/grad_norm``, the epoch mean of the norm of all gradients just
  before each optimizer step (before the driver clips them with ``trainer.gradient_clip_val``),
  and ``train/grad_norm_max``, the largest of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from rnnkit.diagnostics.probe import HiddenGradProbe
from rnnkit.engine import Callback
from rnnkit.plots import plot_gate_stats, plot_gradient_flow
from rnnkit.utils.logging import get_logger

__all__ = ["GradNorm", "GradientFlow"]

log = get_logger(__name__)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class GradientFlow(Callback):
    r"""Measure how the gradient flows back through time, and draw it.

    Every ``every_n_steps`` optimizer steps (and at step 0), the training step runs with a
    :class:`~rnnkit.diagnostics.HiddenGradProbe` on the module, so after ``backward`` the
    callback knows, for every :class:`rnnkit.layers.Recurrent` in the model, the batch mean of
    :math:`\lVert dL/dh_t \rVert` at each time step t = 1..T. It logs, per layer,
    ``grad_flow/<layer>/first`` (t = 1), ``.../last`` (t = T) and ``.../first_over_last``; with
    ``gates=True`` also ``gates/<layer>/<gate>`` (mean over time), to every logger at the step
    measured. After every training epoch and when training ends it writes into
    ``output_dir/gradient_flow/``:

    - ``<layer>_heatmap.png``: log-norm per time step (x) and training step (y);
    - ``<layer>_lines.png``: one line per measurement, log y axis;
    - ``<layer>_gates.png``: mean gate activation over time at the last measurement;
    - ``gradient_flow.npz`` (``<layer>`` -> (S, T) norms, ``steps`` -> (S,)) and
      ``summary.json`` (first/last/ratio at the first and last measurement).

    Args:
        every_n_steps: measure when ``trainer.global_step`` is a multiple of it.
        gates: also record LSTM/GRU gate activations.
        output_dir: the run directory; ``None`` uses ``trainer.default_root_dir``.
        plot: write the PNGs at the end of training (the numbers are always kept).

    Attributes:
        last_metrics: what was logged at the last measurement.
        steps: the training steps measured. norms: ``{layer: [(T,) tensors]}``, one per step.
        gates_history: ``{layer: [{gate: (T,)}]}``.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        gates: bool = False,
        output_dir: str | None = None,
        plot: bool = True,
    ) -> None:
        super().__init__()
        if (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise ValueError(f"every_n_steps must be a positive integer, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.gates = gates
        self.output_dir = output_dir
        self.plot = plot
        self.steps: list[int] = []
        self.norms: dict[str, list[torch.Tensor]] = {}
        self.gates_history: dict[str, list[dict[str, torch.Tensor]]] = {}
        self.last_metrics: dict[str, float] = {}
        self._probe: HiddenGradProbe | None = None
        self._warned = False

    # measuring ------------------------------------------------------------------------------

    def on_train_batch_start(self, trainer, task, batch, batch_idx) -> None:
        step = trainer.global_step
        # with gradient accumulation several batches share a global step: measure the first
        if step % self.every_n_steps or (self.steps and self.steps[-1] == step):
            return
        probe = HiddenGradProbe(task, gates=self.gates)
        if not probe.layers:
            if not self._warned:
                log.warning(
                    "GradientFlow: %s has no rnnkit Recurrent layer; nothing to measure",
                    type(task).__name__,
                )
                self._warned = True
            return
        self._probe = probe.__enter__()

    def on_after_backward(self, trainer, task) -> None:
        if self._probe is None:
            return
        probe, self._probe = self._probe, None
        probe.remove()
        norms = probe.grad_norms()
        if not norms:
            return
        step = trainer.global_step
        self.steps.append(step)
        metrics: dict[str, float] = {}
        for name, values in norms.items():
            self.norms.setdefault(name, []).append(values)
            first, last = float(values[0]), float(values[-1])
            metrics[f"grad_flow/{name}/first"] = first
            metrics[f"grad_flow/{name}/last"] = last
            metrics[f"grad_flow/{name}/first_over_last"] = first / last if last > 0 else 0.0
        for name, gates in probe.gate_means().items():
            self.gates_history.setdefault(name, []).append(gates)
            metrics.update({f"gates/{name}/{g}": float(v.mean()) for g, v in gates.items()})
        # straight to the loggers, at the step measured: self.log would repeat the value at
        # every later log_every_n_steps row until the next measurement
        self.last_metrics = metrics
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:
        if self._probe is not None:  # the step ended without a backward (skipped batch)
            self._probe.remove()
            self._probe = None

    # results --------------------------------------------------------------------------------

    def matrix(self, layer: str) -> np.ndarray:
        """(S, T) norms of ``layer`` over the S measurements (T must not change between them)."""
        rows = self.norms[layer]
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:  # variable T across batches: pad with NaN (drawn blank)
            T = max(lengths)
            return np.stack(
                [np.pad(r.numpy(), (0, T - len(r)), constant_values=np.nan) for r in rows]
            )
        return torch.stack(rows).numpy()

    def summary(self) -> dict[str, dict[str, float]]:
        """Per layer: |dL/dh_1|, |dL/dh_T| and their ratio at the first and last measurement."""
        out = {}
        for name, rows in self.norms.items():
            entry = {}
            for label, values in (("first_step", rows[0]), ("last_step", rows[-1])):
                first, last = float(values[0]), float(values[-1])
                entry[f"{label}/dh_1"] = first
                entry[f"{label}/dh_T"] = last
                entry[f"{label}/ratio"] = first / last if last > 0 else 0.0
            out[name] = entry
        return out

    def on_train_epoch_end(self, trainer, task) -> None:
        self.save(trainer, task)  # after every epoch, so an interrupted run keeps its plots

    def on_train_end(self, trainer, task) -> None:
        self.save(trainer, task)

    def save(self, trainer, task) -> None:
        """Write the numbers and (with ``plot``) the pictures of every measurement so far."""
        if not self.steps or not trainer.is_global_zero:
            return
        root = Path(self.output_dir or trainer.default_root_dir) / "gradient_flow"
        root.mkdir(parents=True, exist_ok=True)
        arrays = {name: self.matrix(name) for name in self.norms}
        np.savez(root / "gradient_flow.npz", steps=np.array(self.steps), **arrays)
        (root / "summary.json").write_text(json.dumps(self.summary(), indent=2))
        if not self.plot:
            return
        for name, matrix in arrays.items():
            title = (
                f"{type(task.model).__name__ if hasattr(task, 'model') else ''} "
                f"{name}: batch mean of ||dL/dh_t||".strip()
            )
            plot_gradient_flow(
                matrix,
                root / f"{_slug(name)}_heatmap.png",
                train_steps=self.steps,
                kind="heatmap",
                title=title,
            )
            plot_gradient_flow(
                matrix,
                root / f"{_slug(name)}_lines.png",
                train_steps=self.steps,
                kind="lines",
                title=title,
            )
        for name, history in self.gates_history.items():
            plot_gate_stats(
                history[-1],
                root / f"{_slug(name)}_gates.png",
                title=f"{name}: mean gate activation (step {self.steps[-1]})",
            )
        log.info("GradientFlow: wrote %s", root)


class GradNorm(Callback):
    r"""Log ``train/grad_norm``: the norm of all parameter gradients before the optimizer step.

    The norm of every step is that of all gradients as one vector,
    :math:`\lVert g \rVert_p = (\sum_i |g_i|^p)^{1/p}` (``p = inf``: the largest
    :math:`|g_i|`), taken in ``on_before_optimizer_step``: after AMP unscaled the gradients
    and *before* they are clipped, so it is the norm that ``trainer.gradient_clip_val``
    (algorithm ``norm``) is compared against. At each training epoch's end the callback logs
    the mean over the epoch's steps as ``train/grad_norm`` and the largest as
    ``train/grad_norm_max``; a mean well above the clip value means clipping is active on most
    steps. The norms stay on the device until then: no host sync per step.

    Args:
        norm_type: the p of the p-norm (2.0; ``inf`` for the largest absolute entry).
    """

    def __init__(self, norm_type: float = 2.0) -> None:
        super().__init__()
        self.norm_type = float(norm_type)
        self._norms: list[torch.Tensor] = []  # 0-d, one per optimizer step of the epoch

    def on_train_epoch_start(self, trainer, task) -> None:
        self._norms = []

    def on_before_optimizer_step(self, trainer, task, optimizer) -> None:
        grads = [p.grad.detach() for p in task.parameters() if p.grad is not None]
        if grads:  # no parameter has a gradient (yet): nothing to measure
            norms = torch.stack([torch.linalg.vector_norm(g, self.norm_type) for g in grads])
            self._norms.append(torch.linalg.vector_norm(norms, self.norm_type))

    def on_train_epoch_end(self, trainer, task) -> None:
        if not self._norms:
            return
        norms = torch.stack(self._norms)
        task.log("train/grad_norm", norms.mean())
        task.log("train/grad_norm_max", norms.max())
