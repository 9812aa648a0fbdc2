"""2-layer bidirectional stacks against torch.nn.RNN/LSTM/GRU on packed variable-length batches."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import ElmanCell, GRUCell, LSTMCell
from rnnkit.models import build_stack

F, H, NUM_LAYERS = 3, 5, 2
LENGTHS = torch.tensor([4, 7, 1, 5])  # unsorted on purpose
MODES = {
    "rnn_tanh": (partial(ElmanCell, nonlinearity="tanh"), partial(nn.RNN, nonlinearity="tanh")),
    "rnn_relu": (partial(ElmanCell, nonlinearity="relu"), partial(nn.RNN, nonlinearity="relu")),
    "lstm": (LSTMCell, nn.LSTM),
    "gru": (GRUCell, nn.GRU),
}


def copy_weights_into_torch(stack, module):
    """Write each rnnkit cell's weights under torch's per-layer names (weight_ih_l1_reverse...)."""
    with torch.no_grad():
        for k, layer in enumerate(stack.layers):
            for suffix, part in (("", layer.forward_layer), ("_reverse", layer.backward_layer)):
                for name, p in part.cell.named_parameters():
                    getattr(module, f"{name}_l{k}{suffix}").copy_(p)


def final_states_as_torch(finals, lstm: bool):
    """rnnkit's [(fwd, bwd) per layer] -> torch's (num_layers * 2, B, H) (and c for LSTM)."""
    flat = [s for fwd_bwd in finals for s in fwd_bwd]
    if lstm:
        return torch.stack([h for h, _ in flat]), torch.stack([c for _, c in flat])
    return (torch.stack(flat),)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_two_layer_bidirectional_matches_packed_torch(mode, bias):
    torch.manual_seed(0)
    make_cell, make_torch = MODES[mode]
    stack = build_stack(
        partial(make_cell, bias=bias),
        F,
        H,
        num_layers=NUM_LAYERS,
        bidirectional=True,
        backend="loop",  # the cells' own math, not a torch kernel standing in for it
    )
    module = make_torch(
        F, H, num_layers=NUM_LAYERS, bidirectional=True, batch_first=True, bias=bias
    )
    copy_weights_into_torch(stack, module)
    B, T = len(LENGTHS), int(LENGTHS.max())
    x = torch.randn(B, T, F)
    x[torch.arange(T) >= LENGTHS[:, None]] = 100.0  # padding garbage must not matter

    ours_out, finals = stack(x, LENGTHS)
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    theirs_packed, theirs_final = module(packed)
    theirs_out, _ = pad_packed_sequence(theirs_packed, batch_first=True, total_length=T)
    theirs_final = theirs_final if mode == "lstm" else (theirs_final,)
    ours_final = final_states_as_torch(finals, lstm=mode == "lstm")

    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_out, theirs_out, **tol)
    for ours, theirs in zip(ours_final, theirs_final, strict=True):  # h_n (and c_n)
        torch.testing.assert_close(ours, theirs, **tol)

    # gradients of every parameter, through outputs and final states
    w_out = torch.randn_like(ours_out)
    w_final = [torch.randn_like(s) for s in ours_final]

    def loss(out, final):
        return (out * w_out).sum() + sum(
            (s * w).sum() for s, w in zip(final, w_final, strict=True)
        )

    loss(ours_out, ours_final).backward()
    loss(theirs_out, theirs_final).backward()
    for k, layer in enumerate(stack.layers):
        for suffix, part in (("", layer.forward_layer), ("_reverse", layer.backward_layer)):
            for name, p in part.cell.named_parameters():
                theirs_grad = getattr(module, f"{name}_l{k}{suffix}").grad
                torch.testing.assert_close(p.grad, theirs_grad, **tol, msg=f"{name}_l{k}{suffix}")
