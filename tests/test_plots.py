"""Every plot writes a real PNG (decoded to check), and bad input fails with a clear message."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from rnnkit import plots

ROOT = Path(__file__).resolve().parents[1]


def assert_png(path: Path) -> np.ndarray:
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path
    image = imread(path)  # decodes the whole file
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 0, f"{path} is blank"
    return image


def write_metrics_csv(path: Path) -> Path:
    # the layout Lightning's CSVLogger writes: one row per log call, empty cells elsewhere
    rows = ["epoch,step,train/loss,train/grad_norm,val/loss,val/acc,grad_flow/rnn/first"]
    for step in range(0, 20, 2):
        rows.append(f"{step // 10},{step},{1 / (step + 1)},{0.5 + step},,,")
    for epoch in range(2):
        rows.append(f"{epoch},{epoch * 10 + 9},,,{0.8 - 0.2 * epoch},{0.5 + 0.1 * epoch},")
    rows.append("1,10,,,,,1e-9")  # a metric of no stage, logged once
    path.write_text("\n".join(rows) + "\n")
    return path


def test_forecast_with_context_and_tensors(tmp_path):
    t = torch.linspace(0, 6, 40)
    path = plots.plot_forecast(
        t[30:].sin(), t[30:].sin() + 0.1, tmp_path / "f.png", context=t[:30].sin(), title="sine"
    )
    assert_png(path)
    two = np.stack([np.arange(10.0), -np.arange(10.0)], axis=1)
    assert_png(plots.plot_forecast(two, two * 1.1, tmp_path / "f2.png", labels=["a", "b"]))
    with pytest.raises(ValueError, match="must match"):
        plots.plot_forecast(np.zeros(5), np.zeros(6), tmp_path / "bad.png")


def test_forecast_axis_shows_the_dates(tmp_path):
    months = [f"1991-{m:02d}" for m in range(1, 13)]
    y = np.arange(12.0)
    path = plots.plot_forecast(y[8:], y[8:] + 1, tmp_path / "d.png", context=y[:8], times=months)
    assert_png(path)
    with pytest.raises(ValueError, match="times has 11 labels for 12 rows"):
        plots.plot_forecast(y[8:], y[8:], tmp_path / "x.png", context=y[:8], times=months[1:])


def test_attention_and_confusion(tmp_path):
    weights = torch.softmax(torch.randn(4, 6), dim=-1)
    assert_png(
        plots.plot_attention(
            weights, tmp_path / "a.png", source_tokens=list("abcdef"), target_tokens=list("wxyz")
        )
    )
    # a decoded output shorter than the attention rows still plots (blank labels)
    assert_png(plots.plot_attention(weights, tmp_path / "a2.png", target_tokens=["w"]))
    matrix = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    assert_png(plots.plot_confusion_matrix(matrix, tmp_path / "c.png", labels=["x", "y", "z"]))
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="labels"):
        plots.plot_confusion_matrix(matrix, tmp_path / "bad.png", labels=["x"])


def test_gradient_flow_and_gates(tmp_path):
    norms = np.exp(-np.arange(12.0))[None, :] * np.arange(1, 6)[:, None]  # (S=5, T=12)
    norms[0, -1] = 0.0  # an exact zero must not break the log scale
    for kind in ("heatmap", "lines"):
        assert_png(
            plots.plot_gradient_flow(
                norms, tmp_path / f"{kind}.png", train_steps=[0, 10, 20, 40, 80], kind=kind
            )
        )
    assert_png(plots.plot_gradient_flow(np.ones((20, 3)), tmp_path / "many.png", kind="lines"))
    with pytest.raises(ValueError, match="kind"):
        plots.plot_gradient_flow(norms, tmp_path / "bad.png", kind="pie")
    gates = {g: torch.rand(12) for g in "ifgo"}
    assert_png(plots.plot_gate_stats(gates, tmp_path / "gates.png"))


def test_read_metrics_csv_skips_empty_cells(tmp_path):
    series = plots.read_metrics_csv(write_metrics_csv(tmp_path / "metrics.csv"))
    assert set(series) == {
        "train/loss",
        "train/grad_norm",
        "val/loss",
        "val/acc",
        "grad_flow/rnn/first",
    }
    assert len(series["train/loss"]) == 10 and len(series["val/loss"]) == 2
    assert series["val/acc"][1] == (19.0, 1.0, pytest.approx(0.6))


def test_learning_curves_group_stages(tmp_path):
    paths = plots.plot_learning_curves(write_metrics_csv(tmp_path / "metrics.csv"), tmp_path / "p")
    names = ["acc.png", "grad_flow_rnn_first.png", "grad_norm.png", "loss.png"]
    assert [p.name for p in paths] == names
    for path in paths:
        assert_png(path)


def load_plot_script():
    spec = importlib.util.spec_from_file_location("plot_script", ROOT / "scripts" / "plot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plot_script_writes_every_metric(tmp_path, capsys):
    script = load_plot_script()
    run = tmp_path / "run"
    (run / "csv" / "version_0").mkdir(parents=True)
    write_metrics_csv(run / "csv" / "version_0" / "metrics.csv")
    assert script.main([str(run)]) == 0
    written = sorted((run / "plots").glob("*.png"))
    assert [p.name for p in written] == [
        "acc.png",
        "grad_flow_rnn_first.png",
        "grad_norm.png",
        "loss.png",
    ]
    assert capsys.readouterr().out.split() == [str(p) for p in written]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / "empty")])
    assert "no metrics.csv" in capsys.readouterr().err
