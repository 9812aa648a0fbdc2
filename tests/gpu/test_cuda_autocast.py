"""Mixed precision (``torch.autocast`` in bfloat16 and float16) on the GPU: what runs, what
steps aside, and how far the result is from float32.

The hand-written ``bptt`` loops (and ``native``'s) write into buffers of one dtype, so under
autocast they step aside (``bptt.autocast_active``): ``auto`` runs ``fused`` (cuDNN, which
handles autocast itself) for cells with a torch kernel and ``loop`` (each step's matmuls in
the low precision) for the rest, and asking for ``bptt`` by name is a clear error that says
autocast is why. The autocast result is compared with the float32 result of the same model on
the same device at a tolerance of a few units of the low precision's last place over the six
steps (bfloat16 has 8 mantissa bits, float16 11): :data:`TOLERANCE`. Gradients are compared
for smooth cells only: a ReLU's gradient jumps at zero, and one of these cases has a
pre-activation of 1.7e-3, which bfloat16's rounding moves across it (bias gradient off by 0.7);
outputs and states, continuous in the pre-activations, are compared for every cell.
"""

from __future__ import annotations

import pytest
import torch
from cuda_helpers import DEVICE, ON_DEVICE, to_cpu64

from rnnkit.layers import Recurrent
from rnnkit.layers.backends import bptt, choose_backend, fused
from tests.layers.test_backends import CELLS, LENGTHS, F, H, assert_same, build, run, sequences

pytestmark = ON_DEVICE

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: autocast against float32, both on the device (bfloat16's unit roundoff is 2^-8 = 3.9e-3,
#: float16's 2^-11 = 4.9e-4)
TOLERANCE = {
    torch.bfloat16: dict(rtol=4e-2, atol=4e-2),
    torch.float16: dict(rtol=5e-3, atol=5e-3),
}


def autocast(dtype: torch.dtype):
    return torch.autocast(DEVICE.type, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("name", sorted(CELLS))
def test_auto_under_autocast_runs_fused_or_loop(name, dtype):
    cell = CELLS[name](input_size=F, hidden_size=H).to(DEVICE)
    with autocast(dtype):
        assert not bptt.supports(cell, None)
        picked = choose_backend(cell, DEVICE, None)
    assert picked == ("fused" if fused.supports(cell, None) else "loop")


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("backend", ["bptt", "native"])
def test_hand_written_loops_under_autocast_say_autocast_is_why(backend, dtype):
    layer = Recurrent(CELLS["gru"](input_size=F, hidden_size=H), backend=backend).to(DEVICE)
    with autocast(dtype), pytest.raises(ValueError, match="autocast"):
        layer(torch.randn(2, 3, F, device=DEVICE))


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("name", sorted(CELLS))
def test_autocast_is_close_to_float32(name, dtype):
    model = build(name, "auto", bidirectional=False).float().to(DEVICE)
    x = sequences().float().to(DEVICE)
    want = run(model, x, LENGTHS)
    with autocast(dtype):
        got = run(model, x, LENGTHS)
    assert all(torch.isfinite(t).all() for t in [got[0], *got[1], *got[2]])
    # parameters stay float32 under autocast, and so do their gradients
    assert all(g.dtype == torch.float32 for g in got[2])
    got, want = to_cpu64(got), to_cpu64(want)
    if getattr(model.layers[0].cell, "nonlinearity", None) == "relu":
        got, want = (got[0], got[1], []), (want[0], want[1], [])
    assert_same(got, want, **TOLERANCE[dtype])
