"""The ``native`` backend's C++ loops: built once, loaded, never stale, and right where the
parity suite (tests/layers/test_backends.py) does not reach: float32 on oneDNN's brgemm with
its columns split over threads, gradcheck in float64, a clear answer when it cannot be built."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import threading

import pytest
import torch

from rnnkit.cells import ElmanCell, GRUCell, JordanCell, LSTMCell, NARXCell
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import BACKENDS, choose_backend, native_build

CELLS = {
    "elman": ElmanCell,
    "elman_relu": functools.partial(ElmanCell, nonlinearity="relu"),
    "gru": GRUCell,
    "gru_reset_before": functools.partial(GRUCell, reset_after=False),
    "lstm": LSTMCell,
}
FEEDBACK_CELLS = {
    "jordan": lambda i, h: JordanCell(i, h, output_size=h, output_activation="tanh"),
    "jordan_decay": lambda i, h: JordanCell(i, h, output_size=h, memory_decay=0.5),
    "narx": lambda i, h: NARXCell(i, h, h, input_delays=1, output_delays=2),
    "narx_sigmoid": lambda i, h: NARXCell(i, h, h, output_delays=2, nonlinearity="sigmoid"),
    "narx_output_form": lambda i, h: NARXCell(i, 3, h, output_delays=2),  # 2 H > 3 * 3 outputs
}


def test_the_library_builds_and_loads_on_this_machine():
    assert native_build.load() is not None, native_build.unavailable_reason()
    assert native_build.library_path().exists()


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradcheck_float64(name):
    torch.manual_seed(0)
    layer = Recurrent(CELLS[name](3, 4), backend="native", learn_init=True).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3])

    def f(x, *params):
        out, state = torch.func.functional_call(
            layer, dict(zip(names, params, strict=True)), (x, lengths)
        )
        return (out, *state) if isinstance(state, tuple) else (out, state)

    names = [n for n, _ in layer.named_parameters()]
    assert torch.autograd.gradcheck(f, (x, *layer.parameters()))


@pytest.mark.parametrize("H", [5, 37, 256])
@pytest.mark.parametrize("name", sorted(CELLS) + sorted(FEEDBACK_CELLS))
def test_float32_brgemm_path_matches_loop(name, H):
    # float32 matmuls run on oneDNN's brgemm, the columns split in blocks over the threads:
    # one block (H=5), blocks not a multiple of 16 wide (H=37), and a large hidden size
    torch.manual_seed(1)
    cell = {**CELLS, **FEEDBACK_CELLS}[name](8, H)
    x = torch.randn(4, 7, 8)
    lengths = torch.tensor([7, 2, 5, 1])
    results = {}
    for backend in ["loop", "native"]:
        cell.zero_grad()
        out, state = Recurrent(cell, backend=backend)(x, lengths)
        state = state[0] if isinstance(state, tuple) else state
        (out.square().sum() + state.sum()).backward()
        results[backend] = (out, state, [p.grad.clone() for p in cell.parameters()])
    (out_l, st_l, gr_l), (out_n, st_n, gr_n) = results["loop"], results["native"]
    torch.testing.assert_close(out_n, out_l, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(st_n, st_l, rtol=1e-4, atol=1e-5)
    for a, b in zip(gr_n, gr_l, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["gru", "gru_reset_before", "elman"])
def test_auto_runs_gru_and_elman_natively_on_cpu(name):
    cell = CELLS[name](3, 4)
    assert choose_backend(cell, torch.device("cpu"), None) == "native"
    with torch.no_grad():
        assert choose_backend(cell, torch.device("cpu"), None) == "native"


@pytest.mark.parametrize("change", ["edit a source", "edit a header", "add a source"])
def test_library_name_tracks_every_source(tmp_path, monkeypatch, change):
    first = native_build.library_path()
    copy = tmp_path / "csrc"
    shutil.copytree(native_build.SOURCE_DIR, copy)
    monkeypatch.setattr(native_build, "SOURCE_DIR", copy)
    assert native_build.library_path() == first  # the name hashes contents, not the place
    if change == "add a source":
        (copy / "new_kernel.cpp").write_text("// a new kernel\n")
    else:
        edited = copy / ("common.h" if change == "edit a header" else "lstm.cpp")
        edited.write_text(edited.read_text() + "\n// changed\n")
    assert native_build.library_path() != first  # a stale build is never loaded


def test_every_source_file_is_compiled_into_the_one_library(tmp_path, monkeypatch):
    # as in rnnkit/csrc: one file declares the op library, another adds to it with a fragment
    (tmp_path / "main.cpp").write_text(
        "#include <torch/library.h>\n"
        "namespace { int64_t one() { return 1; } }\n"
        'TORCH_LIBRARY(rnnkit_probe, m) { m.def("one() -> int", &one); }\n'
    )
    (tmp_path / "more.cpp").write_text(
        "#include <torch/library.h>\n"
        "namespace { int64_t plus_one(int64_t x) { return x + 1; } }\n"
        'TORCH_LIBRARY_FRAGMENT(rnnkit_probe, m) { m.def("plus_one(int x) -> int", &plus_one); }\n'
    )
    monkeypatch.setattr(native_build, "SOURCE_DIR", tmp_path)
    target = tmp_path / "out" / "probe.so"
    native_build.build(target)
    torch.ops.load_library(str(target))
    assert torch.ops.rnnkit_probe.plus_one(torch.ops.rnnkit_probe.one()) == 2


def test_a_failed_build_leaves_nothing_under_the_final_name(tmp_path, monkeypatch):
    (tmp_path / "ok.cpp").write_text('extern "C" int rnnkit_ok() { return 1; }\n')
    (tmp_path / "broken.cpp").write_text("this is not C++\n")
    monkeypatch.setattr(native_build, "SOURCE_DIR", tmp_path)
    target = tmp_path / "out" / "lib.so"
    with pytest.raises(RuntimeError, match="compiling broken.cpp failed: .*error"):
        native_build.build(target)
    assert not target.exists() and not list(target.parent.glob("*"))


def test_without_the_library_auto_falls_back_and_native_says_why(tmp_path):
    # a fresh process, native disabled: auto must still run GRU (on bptt/fused), and asking for
    # native by name is a one-line error with the reason
    code = (
        "import torch\n"
        "from rnnkit.cells import GRUCell\n"
        "from rnnkit.layers import Recurrent\n"
        "from rnnkit.layers.backends import choose_backend\n"
        "cell = GRUCell(3, 4)\n"
        "print(choose_backend(cell, torch.device('cpu'), None))\n"
        "Recurrent(cell)(torch.randn(2, 3, 3))\n"
        "try:\n"
        "    Recurrent(cell, backend='native')(torch.randn(2, 3, 3))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    env = {"RNNKIT_NATIVE": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert out[0] == "bptt"
    assert out[1] == (
        "backend 'native' cannot run GRUCell (fused_mode='GRU', kernel='GRU', disabled by "
        "RNNKIT_NATIVE=0); use 'auto' or 'loop'"
    )
    assert not BACKENDS["native"][0](CELLS["gru"](3, 4), torch.zeros(1))  # GRU feeds nothing back


@pytest.mark.parametrize("name", ["gru", "narx"])
def test_torch_compile_of_a_model_runs_the_native_unroll_eagerly(name):
    # the C++ ops have no fake-tensor kernels: without the graph break, dynamo fails to trace
    torch.manual_seed(2)
    cell = GRUCell(3, 4) if name == "gru" else NARXCell(3, 1, 4, output_delays=2)
    layer = Recurrent(cell, backend="native")
    x = torch.randn(2, 5, 3)
    compiled, _ = torch.compile(layer)(x)
    torch.testing.assert_close(compiled, layer(x)[0])


def test_mixed_precision_leaves_the_hand_written_loops_for_torchs_kernels():
    layer = Recurrent(GRUCell(3, 4), backend="auto")
    x = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert choose_backend(layer.cell, torch.device("cpu"), None) == "fused"
        out, _ = layer(x)
    torch.testing.assert_close(out.float(), layer(x)[0], atol=0.05, rtol=0.05)
    assert not BACKENDS["native"][0](GRUCell(3, 4).bfloat16(), None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(ValueError, match="backend 'bptt' cannot run GRUCell.*autocast"):
            Recurrent(GRUCell(3, 4), backend="bptt")(x)


@pytest.mark.parametrize("name", ["elman_relu", "gru", "lstm", "jordan_relu", "narx_relu"])
def test_a_nan_propagates_as_in_the_loop(name):
    # fast math must not let a relu or a gate turn NaN into a number (the NaN guard needs it)
    cell = {
        **CELLS,
        "jordan_relu": lambda i, h: JordanCell(i, h, nonlinearity="relu"),
        "narx_relu": lambda i, h: NARXCell(i, 2, h, nonlinearity="relu"),
    }[name](3, 4)
    x = torch.randn(2, 4, 3)
    x[0, 1, 0] = float("nan")
    want, _ = Recurrent(cell, backend="loop")(x)
    got, _ = Recurrent(cell, backend="native")(x)
    assert torch.equal(got.isnan(), want.isnan()) and bool(want.isnan().any())
    torch.testing.assert_close(got.nan_to_num(), want.nan_to_num())


@pytest.mark.parametrize("backend", ["bptt", "native"])
@pytest.mark.parametrize("T", [1, 3])
def test_a_gradient_of_a_gradient_is_a_clear_error(backend, T):
    # a gradient penalty needs the backward to be differentiable; the hand-written one is not
    layer = Recurrent(GRUCell(3, 4), backend=backend).double()
    x = torch.randn(2, T, 3, dtype=torch.float64, requires_grad=True)
    out, _ = layer(x)
    with pytest.raises(RuntimeError, match="first order only.*backend='loop'"):
        torch.autograd.grad(out.square().sum(), x, create_graph=True)
    (first,) = torch.autograd.grad(layer(x)[0].square().sum(), x)  # first order still works
    assert first.shape == x.shape


def test_loading_the_library_leaves_subnormals_alone():
    # linking with -ffast-math (gcc < 13) would switch on flush-to-zero for the whole process
    code = (
        "import torch\n"
        "from rnnkit.layers.backends import native_build\n"
        "assert native_build.load() is not None\n"
        "tiny32 = torch.tensor([1e-39]) * 1.0\n"
        "tiny64 = torch.tensor([1e-310], dtype=torch.float64) * 1.0\n"
        "print(tiny32.item(), tiny64.item())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert [float(v) for v in out.stdout.split()] == pytest.approx([1e-39, 1e-310], rel=1e-3)


def test_concurrent_builds_of_one_library_do_not_collide(tmp_path, monkeypatch):
    # two threads of one process build the same file: each writes its own partial file
    (tmp_path / "tiny.cpp").write_text('extern "C" int rnnkit_tiny() { return 1; }\n')
    monkeypatch.setattr(native_build, "SOURCE_DIR", tmp_path)
    target = tmp_path / "out" / "tiny.so"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            native_build.build(target)
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and target.exists()
    assert [p.name for p in target.parent.iterdir()] == ["tiny.so"]  # no partial files left
