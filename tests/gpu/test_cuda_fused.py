"""The ``fused`` backend on the GPU equals ``torch.nn`` there, with cuDNN on and with it off.

Two bidirectional layers on a packed, unsorted variable-length batch (the setting of
``tests/layers/test_parity_torch.py``, whose helpers copy the weights and line up the final
states): outputs, final states and every parameter's gradient agree at float32's tolerance
(:data:`cuda_helpers.FLOAT32`). With cuDNN on, both sides must actually run cuDNN's RNN
(``aten::_cudnn_rnn`` in the profile); with it off, neither does (torch's own CUDA kernels).
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from cuda_helpers import DEVICE, FLOAT32, ON_DEVICE, cuda_only
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.models import build_stack
from tests.layers.test_parity_torch import (
    LENGTHS,
    MODES,
    NUM_LAYERS,
    F,
    H,
    copy_weights_into_torch,
    final_states_as_torch,
)

pytestmark = ON_DEVICE


def fused_and_torch(mode: str, bias: bool):
    """An rnnkit stack on the ``fused`` backend and the torch.nn module with its weights."""
    torch.manual_seed(0)
    make_cell, make_torch = MODES[mode]
    stack = build_stack(
        partial(make_cell, bias=bias), F, H, num_layers=NUM_LAYERS, bidirectional=True,
        backend="fused",
    )  # fmt: skip
    module = make_torch(
        F, H, num_layers=NUM_LAYERS, bidirectional=True, batch_first=True, bias=bias
    )
    copy_weights_into_torch(stack, module)
    return stack.to(DEVICE), module.to(DEVICE)


def forward_both(stack, module, x, lstm: bool):
    """``(outputs, final states)`` of each, final states in torch's layout."""
    ours_out, finals = stack(x, LENGTHS)
    T = x.shape[1]
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    theirs_packed, theirs_final = module(packed)
    theirs_out, _ = pad_packed_sequence(theirs_packed, batch_first=True, total_length=T)
    theirs_final = theirs_final if lstm else (theirs_final,)
    return (ours_out, final_states_as_torch(finals, lstm)), (theirs_out, theirs_final)


def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), F, generator=g)
    x[torch.arange(x.shape[1]) >= LENGTHS[:, None]] = 100.0  # padding garbage must not matter
    return x.to(DEVICE)


@pytest.mark.parametrize("cudnn", [True, False], ids=["cudnn", "no_cudnn"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_fused_on_gpu_matches_torch_nn(mode, bias, cudnn):
    stack, module = fused_and_torch(mode, bias)
    lstm = mode == "lstm"
    with torch.backends.cudnn.flags(enabled=cudnn):
        (ours_out, ours_final), (theirs_out, theirs_final) = forward_both(
            stack, module, batch(), lstm
        )
        w_out = torch.randn_like(ours_out)
        w_final = [torch.randn_like(s) for s in ours_final]

        def loss(out, final):
            weighted = zip(final, w_final, strict=True)
            return (out * w_out).sum() + sum((s * w).sum() for s, w in weighted)

        loss(ours_out, ours_final).backward()
        loss(theirs_out, theirs_final).backward()
    torch.testing.assert_close(ours_out, theirs_out, **FLOAT32)
    for ours, theirs in zip(ours_final, theirs_final, strict=True):
        torch.testing.assert_close(ours, theirs, **FLOAT32)
    for k, layer in enumerate(stack.layers):
        for suffix, part in (("", layer.forward_layer), ("_reverse", layer.backward_layer)):
            for name, p in part.cell.named_parameters():
                theirs_grad = getattr(module, f"{name}_l{k}{suffix}").grad
                where = f"{name}_l{k}{suffix}"
                torch.testing.assert_close(p.grad, theirs_grad, **FLOAT32, msg=where)


def ops_run(fn) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {event.key for event in prof.key_averages()}


@pytest.mark.parametrize("mode", sorted(MODES))
@cuda_only
def test_fused_runs_cudnn_exactly_when_it_is_on(mode):
    stack, module = fused_and_torch(mode, bias=True)
    x = batch()
    for enabled in (True, False):
        with torch.backends.cudnn.flags(enabled=enabled):
            ours = ops_run(lambda: stack(x, LENGTHS)[0].sum().backward())
            theirs = ops_run(lambda: module(x)[0].sum().backward())
        assert ("aten::_cudnn_rnn" in ours) == enabled, sorted(ours)
        assert ("aten::_cudnn_rnn" in theirs) == enabled, sorted(theirs)
