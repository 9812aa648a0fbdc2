"""Plots where a person would rather look than read; every function writes one PNG and returns it.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``, so
they render with Agg on any machine (no display), keep no global state and are safe in tests.
matplotlib is imported by the first plot, not with this module: a training run imports the
tasks that plot at the end, and matplotlib would add about half a second to every start-up.

- :func:`plot_forecast`: a forecast against the truth (with the context it was made from).
- :func:`plot_attention`: an attention matrix, target steps x source steps.
- :func:`plot_confusion_matrix`: counts (and row-normalised rates) of true x predicted class.
- :func:`plot_learning_curves`: every metric of a Lightning ``metrics.csv`` over steps/epochs.
- :func:`plot_gradient_flow`: :math:`\\lVert \\partial L / \\partial h_t \\rVert` as a heatmap
  (time step x training step) and as lines (one per measurement).
- :func:`plot_gate_stats`: the mean activation of each LSTM/GRU gate over time.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "plot_attention",
    "plot_confusion_matrix",
    "plot_forecast",
    "plot_gate_stats",
    "plot_gradient_flow",
    "plot_learning_curves",
    "read_metrics_csv",
]


def _as_array(values, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """A float numpy array from a tensor/array/list, with a clear error on the wrong rank."""
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().float().cpu().numpy()
    array = np.asarray(values, dtype=float)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dims, got shape {array.shape}"
        )
    return array


def _figure(**kwargs) -> Figure:
    """A new :class:`matplotlib.figure.Figure` (imported here, on the first plot)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # Figure.savefig renders with Agg for .png
    return path


def plot_forecast(
    truth,
    prediction,
    path: str | Path,
    *,
    context=None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    times: Sequence[str] | None = None,
) -> Path:
    """Plot a forecast against the truth, after the context it was made from.

    Args:
        truth: (H,) or (H, D) true values over the forecast horizon.
        prediction: the forecast, same shape as ``truth``.
        path: PNG file to write.
        context: optional (C,) or (C, D) observed values before the horizon; drawn in grey, and
            the horizon starts at step C.
        labels: names of the D series (one panel each).
        title: figure title.
        times: the time label of every row, context first (dates); the x axis shows some of
            them instead of row numbers.

    Returns:
        ``path``.
    """
    truth = _as_array(truth, "truth", (1, 2))
    prediction = _as_array(prediction, "prediction", (1, 2))
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} must match")
    truth, prediction = truth.reshape(len(truth), -1), prediction.reshape(len(prediction), -1)
    D = truth.shape[1]
    ctx = None
    if context is not None:
        ctx = _as_array(context, "context", (1, 2)).reshape(-1, D) if len(context) else None
    start = 0 if ctx is None else len(ctx)
    steps = np.arange(start, start + len(truth))
    fig = _figure(figsize=(8, 2.2 * D + 0.6))
    axes = fig.subplots(D, 1, sharex=True, squeeze=False)[:, 0]
    for d, ax in enumerate(axes):
        if ctx is not None:
            ax.plot(np.arange(len(ctx)), ctx[:, d], color="0.55", label="context")
            ax.axvline(start - 0.5, color="0.75", linestyle=":")
        ax.plot(steps, truth[:, d], color="black", label="truth")
        ax.plot(steps, prediction[:, d], color="tab:red", linestyle="--", label="forecast")
        ax.set_ylabel(labels[d] if labels is not None and d < len(labels) else f"y[{d}]")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("time step")
    if times is not None:
        total = start + len(truth)
        if len(times) != total:
            raise ValueError(f"times has {len(times)} labels for {total} rows (context + horizon)")
        ticks = np.unique(np.linspace(0, total - 1, min(total, 6)).round().astype(int))
        axes[-1].set_xticks(ticks, [str(times[i]) for i in ticks], rotation=20, fontsize="small")
        axes[-1].set_xlabel("time")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_attention(
    weights,
    path: str | Path,
    *,
    source_tokens: Sequence[str] | None = None,
    target_tokens: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw attention weights as a heatmap: one row per target step, one column per source step.

    Args:
        weights: (T_tgt, T_src) attention weights (each row sums to 1 for softmax attention).
        path: PNG file to write.
        source_tokens: labels of the T_src columns. target_tokens: labels of the T_tgt rows.
            (A decoded output may be shorter or longer than the weights: extra labels are
            dropped, missing ones left blank.)
        title: figure title.
    """
    weights = _as_array(weights, "weights", 2)
    T_tgt, T_src = weights.shape
    fig = _figure(figsize=(max(3.0, 0.35 * T_src + 1.5), max(2.5, 0.35 * T_tgt + 1.0)))
    ax = fig.subplots()
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xlabel("source step")
    ax.set_ylabel("target step")
    if source_tokens is not None:
        ax.set_xticks(range(T_src), _fit_labels(source_tokens, T_src), rotation=90)
    if target_tokens is not None:
        ax.set_yticks(range(T_tgt), _fit_labels(target_tokens, T_tgt))
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_confusion_matrix(
    matrix,
    path: str | Path,
    *,
    labels: Sequence[str] | None = None,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix: rows are true classes, columns predicted ones.

    Args:
        matrix: (C, C) counts, ``matrix[i, j]`` = examples of class i predicted as j (the layout
            of ``torchmetrics.ConfusionMatrix`` and ``sklearn``).
        path: PNG file to write.
        labels: the C class names.
        normalize: colour by the row-normalised rate (recall per class); cells still show counts.
        title: figure title.
    """
    matrix = _as_array(matrix, "matrix", 2)
    C = matrix.shape[0]
    if matrix.shape != (C, C):
        raise ValueError(f"matrix must be square (C, C), got {matrix.shape}")
    if labels is not None and len(labels) != C:
        raise ValueError(f"labels has {len(labels)} names for a {C}-class matrix")
    rows = matrix.sum(axis=1, keepdims=True)
    shown = (
        np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0) if normalize else matrix
    )
    fig = _figure(figsize=(max(3.5, 0.5 * C + 2), max(3.0, 0.5 * C + 1.5)))
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="rate" if normalize else "count")
    names = [str(n) for n in labels] if labels is not None else [str(i) for i in range(C)]
    ax.set_xticks(range(C), names, rotation=45, ha="right")
    ax.set_yticks(range(C), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if C <= 30:
        top = shown.max() if shown.size else 0.0
        for i in range(C):
            for j in range(C):
                color = "white" if shown[i, j] > 0.6 * top else "black"
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.0f}",
                    ha="center",
                    va="center",
                    color=color,
                    fontsize="small",
                )
    if title:
        ax.set_title(title)
    return _save(fig, path)


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[float, float, float]]]:
    """Read a Lightning ``CSVLogger`` ``metrics.csv`` into ``{metric: [(step, epoch, value)]}``.

    Lightning writes one row per logging call with empty cells for the metrics not logged
    then; those cells are skipped. Rows without a ``step`` column use the row index.
    """
    series: dict[str, list[tuple[float, float, float]]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise ValueError(f"{path}: empty CSV, no header")
        for index, row in enumerate(reader):
            step = _to_float(row.get("step"))
            epoch = _to_float(row.get("epoch"))
            step = float(index) if step is None else step
            for key, raw in row.items():
                if key in ("step", "epoch") or key is None:
                    continue
                value = _to_float(raw)
                if value is not None:
                    series.setdefault(key, []).append(
                        (step, math.nan if epoch is None else epoch, value)
                    )
    return series


def _to_float(raw: str | None) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _metric_base(name: str) -> str:
    """``train/loss_epoch``, ``val/loss`` -> ``loss``: one metric of several stages, one panel.

    Names without a stage prefix (``grad_flow/<layer>/first``) keep their full name.
    """
    stage, _, rest = name.partition("/")
    base = rest if stage in ("train", "val", "test", "predict") and rest else name
    return re.sub(r"_(step|epoch)$", "", base)


def plot_learning_curves(
    metrics_csv: str | Path, out_dir: str | Path, *, x: str = "step"
) -> list[Path]:
    """Write one PNG per metric of a ``metrics.csv``; train/val/test of a metric share a panel.

    Args:
        metrics_csv: the ``metrics.csv`` a Lightning ``CSVLogger`` wrote.
        out_dir: folder for the PNGs, named after the metric (``loss.png``, ``acc.png``, ...).
        x: ``"step"`` (global step) or ``"epoch"``.

    Returns:
        The written paths, sorted.
    """
    if x not in ("step", "epoch"):
        raise ValueError(f"x must be 'step' or 'epoch', got {x!r}")
    series = read_metrics_csv(metrics_csv)
    if not series:
        raise ValueError(f"{metrics_csv}: no metric values to plot")
    groups: dict[str, list[str]] = {}
    for name in sorted(series):
        groups.setdefault(_metric_base(name), []).append(name)
    written = []
    for base, names in groups.items():
        fig = _figure(figsize=(6.5, 3.6))
        ax = fig.subplots()
        values = []
        for name in names:
            points = np.array(series[name])  # (N, 3): step, epoch, value
            xs = points[:, 0] if x == "step" else points[:, 1]
            marker = "o" if len(points) == 1 else ("." if len(points) < 40 else None)
            ax.plot(xs, points[:, 2], label=name, marker=marker)
            values.append(points[:, 2])
        every = np.concatenate(values)
        if np.all(every > 0) and every.max() > 1e3 * every.min():
            ax.set_yscale("log")  # e.g. gradient norms spanning orders of magnitude
        ax.set_xlabel(x)
        ax.set_ylabel(base)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", base)
        written.append(_save(fig, Path(out_dir) / f"{safe}.png"))
    return sorted(written)


def plot_gradient_flow(
    norms,
    path: str | Path,
    *,
    train_steps: Sequence[int] | None = None,
    kind: str = "heatmap",
    title: str | None = None,
) -> Path:
    r"""Draw :math:`\lVert \partial L/\partial h_t \rVert` (batch mean) over time steps.

    Args:
        norms: (S, T): for each of S measurements (training steps), the gradient norm at each
            of the T time steps.
        path: PNG file to write.
        train_steps: the S training steps the rows were measured at (default 0..S-1).
        kind: ``"heatmap"`` (time step x training step, log colour scale) or ``"lines"`` (one
            line per measurement over time, log y axis, later steps darker).
        title: figure title.
    """
    norms = _as_array(norms, "norms", 2)
    S, T = norms.shape
    steps = np.arange(S) if train_steps is None else np.asarray(train_steps)
    if len(steps) != S:
        raise ValueError(f"train_steps has {len(steps)} entries for {S} rows of norms")
    positive = norms[norms > 0]
    floor = positive.min() if positive.size else 1e-12
    shown = np.maximum(norms, floor)  # log scale: an exact zero is drawn as the smallest value
    from matplotlib.colors import LogNorm

    fig = _figure(figsize=(7.5, 4.0))
    ax = fig.subplots()
    time = np.arange(1, T + 1)
    if kind == "heatmap":
        image = ax.pcolormesh(
            np.arange(0.5, T + 1),
            _edges(steps),
            shown,
            norm=LogNorm(vmin=shown.min(), vmax=max(shown.max(), shown.min() * 1.0001)),
            cmap="magma",
            shading="flat",
        )
        fig.colorbar(image, ax=ax, label=r"$\|\partial L/\partial h_t\|$")
        ax.set_xlabel("time step t")
        ax.set_ylabel("training step")
    elif kind == "lines":
        cmap = _colormap("viridis")
        for row, step in enumerate(steps):
            ax.plot(time, shown[row], color=cmap(row / max(S - 1, 1)), label=f"step {int(step)}")
        ax.set_yscale("log")
        ax.set_xlabel("time step t")
        ax.set_ylabel(r"$\|\partial L/\partial h_t\|$")
        ax.grid(alpha=0.3, which="both")
        if S <= 8:
            ax.legend(loc="best", fontsize="small")
        else:  # too many lines for a legend: label the first and the last
            ax.plot([], [], color=cmap(0.0), label=f"step {int(steps[0])}")
            ax.plot([], [], color=cmap(1.0), label=f"step {int(steps[-1])}")
            ax.legend(handles=ax.lines[-2:], loc="best", fontsize="small")
    else:
        raise ValueError(f"kind must be 'heatmap' or 'lines', got {kind!r}")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_gate_stats(
    gates: Mapping[str, object], path: str | Path, *, title: str | None = None
) -> Path:
    """Draw the mean activation of each gate over time steps.

    Args:
        gates: ``{gate name: (T,) mean activation}``, for example the ``i, f, g, o`` of an LSTM.
        path: PNG file to write.
        title: figure title.
    """
    if not gates:
        raise ValueError("gates is empty: nothing to plot")
    fig = _figure(figsize=(7.0, 3.6))
    ax = fig.subplots()
    for name, values in gates.items():
        values = _as_array(values, f"gates[{name!r}]", 1)
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel("time step t")
    ax.set_ylabel("mean activation")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _fit_labels(tokens: Sequence[object], count: int) -> list[str]:
    """Exactly ``count`` tick labels: extra tokens dropped, missing ones left blank."""
    labels = [str(t) for t in tokens][:count]
    return labels + [""] * (count - len(labels))


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres, for ``pcolormesh`` rows of uneven spacing."""
    centres = np.asarray(centres, dtype=float)
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def _colormap(name: str):
    from matplotlib import colormaps

    return colormaps[name]
