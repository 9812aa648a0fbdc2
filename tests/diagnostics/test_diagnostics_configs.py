"""The diagnostics configs compose with the real ``configs/`` and work inside ``train(cfg)``."""

from __future__ import annotations

import numpy as np

from rnnkit.train import train
from tests.helpers import FAST


def test_gradient_flow_from_the_command_line(compose_cfg, tmp_path):
    # python scripts/train.py +experiment=adding_lstm +diagnostics=gradient_flow
    cfg = compose_cfg(["+experiment=adding_lstm", "+diagnostics=gradient_flow", *FAST])
    assert cfg.callbacks.gradient_flow.gates is True
    train(cfg)
    out = tmp_path / "run" / "gradient_flow"
    saved = np.load(out / "gradient_flow.npz")
    layer = "model.encoder.layers.0"
    assert saved[layer].shape == (1, cfg.data.seq_length) and np.all(saved[layer] > 0)
    for kind in ("heatmap", "lines", "gates"):
        assert (out / f"{layer}_{kind}.png").read_bytes().startswith(b"\x89PNG")


def test_grad_norm_and_confusion_matrix_callbacks(compose_cfg, tmp_path):
    overrides = ["+experiment=quickstart", "callbacks=[default,grad_norm,confusion_matrix]"]
    metrics = train(compose_cfg([*overrides, *FAST]))
    assert metrics["train/grad_norm"] > 0
    assert (tmp_path / "run" / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")
