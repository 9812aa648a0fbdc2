"""NARX's delay-line product (``feedback._delay_line_linear``) against the sum it stands for.

It picks one of three ways by shape (tap by tap for wide values, unfolded windows for few
taps, a ``conv1d`` for many); the NARX rows of ``test_backends.py`` are small and reach only
some of them, so each is forced here (the thresholds lowered) and compared, values and
gradients in float64, with ``b + sum_k W_k v_{t + n - 1 - k}`` written as a loop.
"""

from __future__ import annotations

import pytest
import torch

from rnnkit.layers.backends import feedback


def reference(history, seq, weight, bias):
    """Output ``t`` of ``T = W + S - n + 1``: ``bias + sum_k W_k line[t + n - 1 - k]``."""
    D = history.shape[2]
    n = weight.shape[1] // D
    line = torch.cat([history.flip(1), seq], dim=1)  # (B, W + S, D), oldest first
    T = line.shape[1] - n + 1
    steps = []
    for t in range(T):
        a = sum(line[:, t + n - 1 - k] @ weight[:, k * D : (k + 1) * D].t() for k in range(n))
        steps.append(a if bias is None else a + bias)
    return torch.stack(steps)  # (T, B, H)


WAYS = {  # (SHIFTED_MIN_WIDTH, WINDOW_TAPS) that force each way at D = 3, n = 3
    "tap_by_tap": (3, 4),
    "windows": (4, 4),
    "conv1d": (4, 2),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("batch", [1, 4])
def test_delay_line_product_matches_the_sum(monkeypatch, way, with_bias, batch):
    width, taps = WAYS[way]
    monkeypatch.setattr(feedback, "SHIFTED_MIN_WIDTH", width)
    monkeypatch.setattr(feedback, "WINDOW_TAPS", taps)
    torch.manual_seed(0)
    D, n, H, W, S = 3, 3, 5, 2, 7
    leaves = {
        "history": torch.randn(batch, W, D, dtype=torch.float64),
        "seq": torch.randn(batch, S, D, dtype=torch.float64),
        "weight": torch.randn(H, n * D, dtype=torch.float64),
        "bias": torch.randn(H, dtype=torch.float64) if with_bias else None,
    }
    inputs = {k: v.requires_grad_() for k, v in leaves.items() if v is not None}
    got = feedback._delay_line_linear(**leaves)
    assert got.shape == (W + S - n + 1, batch, H) and got.is_contiguous()
    want = reference(**leaves)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    probe = torch.randn_like(want)
    grads = torch.autograd.grad((got * probe).sum(), list(inputs.values()))
    ref_grads = torch.autograd.grad((want * probe).sum(), list(inputs.values()))
    for name, g, r in zip(inputs, grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12, msg=f"d/d{name} ({way})")
