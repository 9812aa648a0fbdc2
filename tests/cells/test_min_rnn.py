"""minGRU and minLSTM (Feng et al. 2024): the sequential mode (the cell's step, backend
``loop``) and the parallel mode (backend ``scan``) against a naive loop of the paper's formulas,
with lengths and a non-zero initial state; and the scan itself, in every chunking."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import MinGRUCell, MinLSTMCell
from rnnkit.cells.linear import positive_g
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import choose_backend
from rnnkit.layers.backends import scan as scan_backend
from rnnkit.layers.backends.scan import linear_recurrence, reverse_scan, scan

F, H, B = 3, 5, 4
SOLVERS = ["sequential", "sequential_python", "chunked", "blocks"]


@pytest.fixture
def solver(request, monkeypatch):
    """Run the scan backend with the given solver whatever the device (CPU picks sequential:
    the C++ pass when the native library is built, else the loop of ``addcmul`` that
    ``sequential_python`` forces), or with the sequence split into blocks of 16 steps (long
    sequences are, at 512)."""
    if request.param == "sequential_python":
        monkeypatch.setattr(scan_backend, "_native_ops", lambda t: None)
    if request.param == "chunked":
        monkeypatch.setattr(scan_backend, "default_chunk", lambda steps, device: 7)
    if request.param == "blocks":
        monkeypatch.setattr(scan_backend, "BLOCK_STEPS", 16)
    return request.param


CELLS = {
    "mingru": lambda: MinGRUCell(F, H),
    "mingru_g": lambda: MinGRUCell(F, H, candidate="g"),
    "minlstm": lambda: MinLSTMCell(F, H),
    "minlstm_g_nobias": lambda: MinLSTMCell(F, H, candidate="g", bias=False),
    "mingru_chrono": lambda: MinGRUCell(F, H, chrono_init=50),
    "minlstm_chrono": lambda: MinLSTMCell(F, H, chrono_init=50),
}


def naive(cell, x: torch.Tensor, h: torch.Tensor, lengths: torch.Tensor):
    """The paper's formulas, one sequence and one step at a time, stopping at each length."""
    g = positive_g if cell.candidate == "g" else (lambda v: v)
    W = cell.weight_ih
    b = cell.bias if cell.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype)
    outs, finals = torch.zeros(*x.shape[:2], H, dtype=x.dtype), []
    for i in range(x.shape[0]):
        h_i = h[i]
        for t in range(int(lengths[i])):
            pre = W @ x[i, t] + b
            if isinstance(cell, MinGRUCell):
                z = torch.sigmoid(pre[:H])
                h_i = (1 - z) * h_i + z * g(pre[H:])
            else:
                f, i_gate = torch.sigmoid(pre[:H]), torch.sigmoid(pre[H : 2 * H])
                h_i = f / (f + i_gate) * h_i + i_gate / (f + i_gate) * g(pre[2 * H :])
            outs[i, t] = h_i
        finals.append(h_i)
    return outs, torch.stack(finals)


@pytest.mark.parametrize("solver", SOLVERS, indirect=True)
@pytest.mark.parametrize("T", [5, 101])
@pytest.mark.parametrize("backend", ["loop", "scan", "auto"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_both_modes_match_the_naive_loop(name, backend, T, solver):
    torch.manual_seed(0)
    cell = CELLS[name]().double()
    x = torch.randn(B, T, F, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64)  # a previous hidden state that is not zero
    lengths = torch.tensor([T, T // 2, 1, T - 3])
    want_out, want_h = naive(cell, x, h0, lengths)
    out, h = Recurrent(cell, backend=backend)(x, lengths, state=h0)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, want_h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS, indirect=True)
@pytest.mark.parametrize("name", sorted(CELLS))
def test_parallel_mode_continues_from_a_previous_hidden_state(name, solver):
    # minGRU-pytorch's parallel mode once ignored the previous hidden state: a sequence split in
    # two, the second half started from the first half's state, must give the whole's numbers
    torch.manual_seed(1)
    cell = CELLS[name]().double()
    x = torch.randn(B, 150, F, dtype=torch.float64)
    layer = Recurrent(cell, backend="scan")
    whole, h_whole = layer(x)
    first, h_first = layer(x[:, :80])
    second, h_second = layer(x[:, 80:], state=h_first)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_second, h_whole, rtol=1e-12, atol=1e-12)
    stepped, h_stepped = Recurrent(cell, backend="loop")(x[:, 80:], state=h_first)
    torch.testing.assert_close(second, stepped, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS, indirect=True)
@pytest.mark.parametrize("name", sorted(CELLS))
def test_parallel_gradients_match_the_sequential_ones(name, solver):
    torch.manual_seed(2)
    T = 101
    grads = []
    for backend in ("loop", "scan"):
        torch.manual_seed(3)
        layer = Recurrent(CELLS[name](), learn_init=True, backend=backend).double()
        with torch.no_grad():
            layer.init_params[0].normal_()
        x = torch.randn(B, T, F, dtype=torch.float64, requires_grad=True)
        out, h = layer(x, torch.tensor([T, 50, 1, 99]))
        ((out * torch.linspace(-1, 1, H, dtype=torch.float64)).sum() + h.sin().sum()).backward()
        grads.append([x.grad, *(p.grad for p in layer.parameters())])
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def reference_recurrence(a, b, h):
    hs = []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        hs.append(h)
    return torch.stack(hs)


@pytest.mark.parametrize("native", [True, False], ids=["cpp", "python"])
@pytest.mark.parametrize("T", [1, 2, 17, 64, 100])
def test_scan_in_every_chunking_is_the_recurrence(T, native, monkeypatch):
    if not native:  # the sequential solver's loop of addcmul, not its C++ pass
        monkeypatch.setattr(scan_backend, "_native_ops", lambda t: None)
    g = torch.Generator().manual_seed(T)
    a = torch.rand(T, 3, 2, dtype=torch.float64, generator=g)
    b = torch.randn(T, 3, 2, dtype=torch.float64, generator=g)
    h0 = torch.randn(3, 2, dtype=torch.float64, generator=g)
    want = reference_recurrence(a, b, h0)
    # the transpose: delta_t = g_t + a_{t+1} delta_{t+1}, written out
    want_reverse = [b[-1]]
    for t in range(T - 2, -1, -1):
        want_reverse.insert(0, b[t] + a[t + 1] * want_reverse[0])
    for chunk in sorted({1, 2, 3, 7, 10, T - 1, T, T + 5} - {0}):
        torch.testing.assert_close(scan(a, b, h0, chunk), want, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(
            reverse_scan(a, b, chunk), torch.stack(want_reverse), rtol=1e-12, atol=1e-12
        )


def test_scan_is_stable_over_long_sequences_in_float32():
    # decays near 1 and near 0 over T = 4000: the chunked products neither blow up nor vanish
    g = torch.Generator().manual_seed(0)
    T = 4000
    a = torch.cat([torch.rand(T // 2, 8, 16, generator=g) * 0.01 + 0.99,
                   torch.rand(T // 2, 8, 16, generator=g) * 0.5])  # fmt: skip
    b = torch.randn(T, 8, 16, generator=g)
    h0 = torch.randn(8, 16, generator=g)
    want = reference_recurrence(a.double(), b.double(), h0.double())
    got = scan(a, b, h0, 63)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("solver", SOLVERS, indirect=True)
@pytest.mark.parametrize("T", [6, 23])
def test_linear_recurrence_gradcheck_and_gradgradcheck(T, solver):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(T, 2, 1, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(T, 2, 1, dtype=torch.float64, generator=g).requires_grad_()
    h0 = torch.randn(2, 1, dtype=torch.float64, generator=g).requires_grad_()
    assert torch.autograd.gradcheck(linear_recurrence, (a, b, h0))
    assert torch.autograd.gradgradcheck(linear_recurrence, (a, b, h0))


def test_minlstm_gates_stay_finite_where_both_underflow():
    cell = MinLSTMCell(1, 1, bias=False)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[-300.0], [-310.0], [1.0]]))
    a, b = cell.scan_coefficients(torch.ones(1, 1))
    # f / (f + i) with f = e^-300, i = e^-310 (both 0 in float32): sigma(10)
    torch.testing.assert_close(a, torch.tensor([[torch.sigmoid(torch.tensor(10.0))]]))
    assert torch.isfinite(b).all()


@pytest.mark.parametrize("name", sorted(CELLS))
def test_auto_picks_the_scan(name):
    cell = CELLS[name]()
    with torch.no_grad():
        assert choose_backend(cell, torch.device("cpu"), None) == "scan"
    assert choose_backend(cell, torch.device("cpu"), None) == "scan"


def test_scan_refuses_feedback_and_other_cells():
    from rnnkit.cells import GRUCell

    with pytest.raises(ValueError, match="scan"):
        Recurrent(GRUCell(F, H), backend="scan")(torch.randn(2, 3, F))


@pytest.mark.parametrize("cls", [MinGRUCell, MinLSTMCell])
def test_chrono_init_spreads_the_keep_factor_over_time_scales_up_to_t_max(cls):
    """At x = 0 the keep factor a = u / (1 + u), u ~ U(1, T_max - 1): a unit holds h for about
    u steps (Tallec & Ollivier 2018); the default init keeps about half a step's worth."""
    torch.manual_seed(0)
    a, _ = cls(F, 256, chrono_init=100).scan_coefficients(torch.zeros(1, F))
    u = a / (1 - a)
    assert u.min() >= 1 - 1e-4 and u.max() <= 99 + 1e-2
    assert u.max() > 90 and u.min() < 5  # spread over the whole range
    a_plain, _ = cls(F, 256).scan_coefficients(torch.zeros(1, F))
    assert (a_plain / (1 - a_plain)).max() < 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(chrono_init=2), "integer >= 3"),
        (dict(chrono_init=10.0), "integer >= 3"),
        (dict(chrono_init=10, bias=False), "needs bias=True"),
    ],
)
def test_chrono_init_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MinGRUCell(F, H, **kwargs)
