"""Hand-written BPTT (rnnkit.bptt's loop, Werbos 1990) against autograd, to 1e-10 in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.bptt import ElmanParams, elman_bptt, elman_bptt_modules
from rnnkit.cells import ElmanCell
from rnnkit.layers import Recurrent

F, H, C, T = 3, 4, 5, 6
TOL = dict(rtol=1e-10, atol=1e-10)


def random_params(dtype=torch.float64) -> ElmanParams:
    return ElmanParams(
        torch.randn(H, F, dtype=dtype),
        torch.randn(H, H, dtype=dtype) * 0.5,
        torch.randn(H, dtype=dtype),
        torch.randn(C, H, dtype=dtype),
        torch.randn(C, dtype=dtype),
    )


def autograd_reference(params, x, targets, h0):
    """The same network written plainly, differentiated by autograd."""
    params = [p.clone().requires_grad_() for p in params]
    h0 = h0.clone().requires_grad_()
    W_xh, W_hh, b_h, W_hz, b_z = params
    h, loss = h0, 0.0
    for t in range(x.shape[-2]):
        h = torch.tanh(x[..., t, :] @ W_xh.T + h @ W_hh.T + b_h)
        log_z = torch.log_softmax(h @ W_hz.T + b_z, dim=-1)
        target = targets[..., t, :] if targets.is_floating_point() else targets[..., t]
        if targets.is_floating_point():
            loss = loss - (target * log_z).sum()
        else:
            loss = loss - log_z.gather(-1, target.unsqueeze(-1)).sum()
    grads = torch.autograd.grad(loss, [*params, h0])
    return loss.detach(), grads[:-1], grads[-1]


@pytest.mark.parametrize("batch", [None, 3])
@pytest.mark.parametrize("soft_targets", [False, True])
def test_matches_autograd(batch, soft_targets):
    torch.manual_seed(0)
    params = random_params()
    lead = () if batch is None else (batch,)
    x = torch.randn(*lead, T, F, dtype=torch.float64)
    h0 = torch.randn(*lead, H, dtype=torch.float64)
    if soft_targets:
        targets = torch.softmax(torch.randn(*lead, T, C, dtype=torch.float64), -1)
    else:
        targets = torch.randint(C, (*lead, T))
    loss, grads, grad_h0 = elman_bptt(params, x, targets, h0)
    ref_loss, ref_grads, ref_h0 = autograd_reference(params, x, targets, h0)
    torch.testing.assert_close(loss, ref_loss, **TOL)
    for name, got, want in zip(ElmanParams._fields, grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL, msg=name)
    torch.testing.assert_close(grad_h0, ref_h0, **TOL)
    assert grad_h0.shape == h0.shape


def test_elman_cell_and_linear_head_interop():
    torch.manual_seed(0)
    cell, head = ElmanCell(F, H).double(), nn.Linear(H, C).double()
    x = torch.randn(2, T, F, dtype=torch.float64)
    targets = torch.randint(C, (2, T))
    h0 = torch.randn(2, H, dtype=torch.float64, requires_grad=True)
    # autograd through rnnkit's own layer
    hidden, _ = Recurrent(cell, backend="loop")(x, state=h0)
    logits = head(hidden)  # (B, T, C)
    ref_loss = nn.functional.cross_entropy(
        logits.reshape(-1, C), targets.reshape(-1), reduction="sum"
    )
    ref_loss.backward()
    modules = nn.ModuleDict({"cell": cell, "head": head})
    loss, grads, grad_h0 = elman_bptt_modules(cell, head, x, targets, h0.detach())
    torch.testing.assert_close(loss, ref_loss.detach(), **TOL)
    assert grads.keys() == dict(modules.named_parameters()).keys()
    for name, p in modules.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, **TOL, msg=name)
    torch.testing.assert_close(grad_h0, h0.grad, **TOL)


def test_relu_cell_is_refused():
    with pytest.raises(ValueError, match="nonlinearity='relu'"):
        elman_bptt_modules(
            ElmanCell(F, H, nonlinearity="relu"),
            nn.Linear(H, C),
            torch.randn(T, F),
            torch.zeros(T, dtype=torch.long),
        )


@pytest.mark.parametrize(
    "x,targets,match",
    [
        (torch.randn(2, T, F + 1), torch.zeros(2, T, dtype=torch.long), "F=3"),
        (torch.randn(2, T, F), torch.zeros(2, T + 1, dtype=torch.long), "targets"),
    ],
)
def test_bad_shapes_raise(x, targets, match):
    params = random_params(torch.float32)
    with pytest.raises(ValueError, match=match):
        elman_bptt(params, x, targets, torch.zeros(2, H))
