"""SRUCell against the ``sru`` package 2.6.0 (its CPU path), weights copied: outputs, final cell
states and the gradients of every weight and the input, with padding and a non-zero c0."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from rnnkit.cells import SRUCell
from rnnkit.layers import Recurrent

with warnings.catch_warnings():  # it warns that its CUDA kernels cannot be built (no GPU)
    warnings.simplefilter("ignore")
    import sru

T, B = 7, 3
LENGTHS = torch.tensor([7, 3, 5])
# (F, H, options): the highway term is x_t (F == H) or a fourth chunk of W x_t (F != H)
SHAPES = {
    "identity_skip": (4, 4, dict(highway_bias=-1.0)),
    "projected_skip": (3, 5, dict(highway_bias=0.5)),
    "no_skip": (3, 5, dict(has_skip_term=False)),
    "identity_skip_no_rescale": (4, 4, dict(rescale=False)),
}


def pair(F: int, H: int, options: dict) -> tuple[SRUCell, sru.SRUCell]:
    """Our cell and the package's, with the package's (random) weights copied into ours."""
    torch.manual_seed(0)
    theirs = sru.SRUCell(F, H, **options).double()
    with torch.no_grad():
        theirs.weight_c.normal_()  # not the init: every term must matter
        theirs.bias.normal_()
    ours = SRUCell(F, H, **options).double()
    k = theirs.weight.shape[1] // H
    assert ours.weight_ih.shape == (k * H, F)
    with torch.no_grad():
        # theirs: (F, H * k), the k matrices interleaved per unit; ours: chunks of rows
        ours.weight_ih.copy_(theirs.weight.view(F, H, k).permute(2, 1, 0).reshape(k * H, F))
        ours.weight_c.copy_(theirs.weight_c)
        ours.bias.copy_(theirs.bias)
    assert math.isclose(ours.highway_scale, float(theirs.scale_x), rel_tol=1e-7)
    ours.highway_scale = float(theirs.scale_x)  # theirs was rounded to float32 (a buffer)
    return ours, theirs


def their_weight_grad(ours: SRUCell, H: int) -> torch.Tensor:
    k = ours.weight_ih.shape[0] // H
    F = ours.input_size
    return ours.weight_ih.grad.view(k, H, F).permute(2, 1, 0).reshape(F, H * k)


@pytest.mark.parametrize("backend", ["loop", "bptt"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_matches_the_sru_package(shape, with_lengths, backend):
    F, H, options = SHAPES[shape]
    ours, theirs = pair(F, H, options)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, F, dtype=torch.float64, generator=g)
    c0 = torch.randn(B, H, dtype=torch.float64, generator=g)
    lengths = LENGTHS if with_lengths else None
    pad = (torch.arange(T)[:, None] >= LENGTHS) if with_lengths else None  # (T, B), 1 = pad

    x_ours = x.transpose(0, 1).clone().requires_grad_(True)  # batch-first
    c0_ours = c0.clone().requires_grad_(True)
    h_ours, c_ours = Recurrent(ours, backend=backend)(x_ours, lengths, state=c0_ours)
    x_theirs, c0_theirs = x.clone().requires_grad_(True), c0.clone().requires_grad_(True)
    with warnings.catch_warnings():  # "Running SRU on CPU with grad_enabled=True"
        warnings.simplefilter("ignore")
        h_theirs, c_theirs = theirs(x_theirs, c0_theirs, mask_pad=pad)
    torch.testing.assert_close(h_ours.transpose(0, 1), h_theirs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c_ours, c_theirs, rtol=1e-10, atol=1e-12)

    w = torch.linspace(-1, 1, H, dtype=torch.float64)
    ((h_ours * w).sum() + c_ours.sin().sum()).backward()
    ((h_theirs * w).sum() + c_theirs.sin().sum()).backward()
    close = dict(rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(their_weight_grad(ours, H), theirs.weight.grad, **close)
    torch.testing.assert_close(ours.weight_c.grad, theirs.weight_c.grad, **close)
    torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, **close)
    torch.testing.assert_close(x_ours.grad.transpose(0, 1), x_theirs.grad, **close)
    torch.testing.assert_close(c0_ours.grad, c0_theirs.grad, **close)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_inference_matches_the_packages_cpp_path(shape):
    # without grad the package runs its own C++ loop (sru_cpu_impl.cpp), not the Python one
    F, H, options = SHAPES[shape]
    ours, theirs = pair(F, H, options)
    ours, theirs = ours.float(), theirs.float()
    x, c0 = torch.randn(T, B, F), torch.randn(B, H)
    pad = torch.arange(T)[:, None] >= LENGTHS
    with torch.no_grad():
        h_theirs, c_theirs = theirs(x, c0, mask_pad=pad)
        h_ours, c_ours = Recurrent(ours)(x.transpose(0, 1), LENGTHS, state=c0)
    torch.testing.assert_close(h_ours.transpose(0, 1), h_theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(c_ours, c_theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("F,H", [(64, 64), (48, 96)])
def test_init_follows_the_sru_package(F, H):
    """The package's ``reset_parameters`` distributions (its order of draws differs): uniform
    weights with these bounds, zero forget bias, the highway bias, for both cells alike."""
    torch.manual_seed(0)
    ours, theirs = SRUCell(F, H, highway_bias=-2.0), sru.SRUCell(F, H, highway_bias=-2.0)
    k = theirs.weight.shape[1] // H
    bound = math.sqrt(3 / F)
    bounds = [bound, bound * math.sqrt(0.5), bound * math.sqrt(0.5), bound * ours.highway_scale]
    theirs_chunks = theirs.weight.detach().view(F, H, k).permute(2, 1, 0)  # (k, H, F)
    for j, mine in enumerate(ours.weight_ih.detach().view(k, H, F)):
        for w in (mine, theirs_chunks[j]):  # the max of F*H uniform draws is near the bound
            assert 0.98 * bounds[j] < float(w.abs().max()) <= bounds[j] * (1 + 1e-6), j
    for w in (ours.weight_c.detach(), theirs.weight_c.detach()):
        assert 0.9 * math.sqrt(1.5) < float(w.abs().max()) <= math.sqrt(1.5) * (1 + 1e-6)
    torch.testing.assert_close(ours.bias.detach(), theirs.bias.detach(), rtol=0, atol=0)
