"""Build and load the C++ time loops of the ``native`` backend (``rnnkit/csrc``), once per machine.

The source is compiled with the system C++ compiler against the installed torch's headers into
``$RNNKIT_CACHE_DIR/native`` (default ``~/.cache/rnnkit/native``), under a name that hashes the
source, the torch build and the flags, so a changed source, a new torch or another CPU gets its
own file and nothing stale is ever loaded. The library is written to a temporary name and
renamed into place, so a crash or a concurrent build never leaves a half-written file under the
final name. ``make install`` builds it ahead (:func:`main`, about 10 s on 2 cores); otherwise
the first use does.

Without a compiler (or with ``RNNKIT_NATIVE=0``) :func:`load` returns ``None`` and says why in
:func:`unavailable_reason`; ``auto`` then uses the pure-PyTorch backends.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

SOURCE = Path(__file__).resolve().parents[2] / "csrc" / "recurrent_loops.cpp"
_NAMESPACE = "rnnkit_native"
_state: dict = {}  # "ops" once loaded, or "error" once failed


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def _march() -> list[str]:
    """The widest x86-64 level this CPU runs (AVX-512 halves the gate pass at H=128)."""
    flags = _cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return ["-march=x86-64-v4"]
    if {"avx2", "fma", "bmi2"} <= flags:
        return ["-march=x86-64-v3"]
    return []


#: fast math, but NaN and Inf keep their meaning (a NaN must reach the loss, where the NaN
#: guard sees it, not vanish in a relu); glibc declares its vector exp/tanh only under
#: ``__FAST_MATH__``, which ``-fno-finite-math-only`` clears, so it is defined back
_FAST_MATH = ["-ffast-math", "-fno-finite-math-only", "-D__FAST_MATH__"]


def compile_command(output: Path) -> list[str]:
    """The compiler command line that builds the library into ``output``."""
    from torch.utils import cpp_extension

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    lib_dirs = cpp_extension.library_paths()
    return [
        os.environ.get("CXX", "g++"),
        "-shared", "-fPIC", "-std=c++20", "-O3", "-fopenmp-simd", *_march(), *_FAST_MATH,
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-w",
        *[f"-I{p}" for p in cpp_extension.include_paths()],
        str(SOURCE), "-o", str(output),
        *[f"-L{p}" for p in lib_dirs], "-lc10", "-ltorch_cpu",
        *[f"-Wl,-rpath,{p}" for p in lib_dirs],
    ]  # fmt: skip


def library_path() -> Path:
    """Where the library for this source, torch and CPU lives (built or not)."""
    cache = Path(os.environ.get("RNNKIT_CACHE_DIR", Path.home() / ".cache" / "rnnkit"))
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join(compile_command(Path("out"))).encode())
    digest.update(f"{torch.__version__} {torch.__file__} {sys.version}".encode())
    return cache / "native" / f"recurrent_loops-{digest.hexdigest()[:16]}.so"


def build(path: Path) -> float:
    """Compile into ``path`` (atomically); returns the seconds it took."""
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler {compiler!r} on PATH (set CXX to one)")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.so")
    start = time.perf_counter()
    result = subprocess.run(compile_command(partial), capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        first_error = next(
            (ln for ln in result.stderr.splitlines() if "error" in ln), result.stderr[-300:]
        )
        raise RuntimeError(f"compiling {SOURCE.name} failed: {first_error.strip()}")
    os.replace(partial, path)
    return time.perf_counter() - start


def load():
    """``torch.ops.rnnkit_native`` with the loops loaded (built first if needed), or ``None``."""
    if "ops" in _state or "error" in _state:
        return _state.get("ops")
    if os.environ.get("RNNKIT_NATIVE", "1") == "0":
        _state["error"] = "disabled by RNNKIT_NATIVE=0"
        return None
    try:
        path = library_path()
        if not path.exists():
            log.info("native backend: compiling %s (once per machine)...", SOURCE.name)
            log.info("native backend: built %s in %.1f s", path, build(path))
        torch.ops.load_library(str(path))
        _state["ops"] = getattr(torch.ops, _NAMESPACE)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
        _state["error"] = str(err).splitlines()[0]
        log.warning("native backend unavailable (%s); auto uses the PyTorch backends", err)
    return _state.get("ops")


#: both sides of a recurrent weight at least this: its matmul runs on oneDNN, weight pre-packed
PACK_MIN_HIDDEN = 256


def packed_weight(weight: torch.Tensor) -> torch.Tensor | None:
    """``weight (N, K)`` in oneDNN's layout when that path is the faster one, else ``None``."""
    if (
        min(weight.shape) < PACK_MIN_HIDDEN
        or weight.dtype != torch.float32
        or not torch.backends.mkldnn.is_available()
    ):
        return None
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)


def unavailable_reason() -> str | None:
    """Why :func:`load` gave ``None``, or ``None`` if it loaded (call :func:`load` first)."""
    return _state.get("error")


def main() -> None:
    """Build ahead of first use (``make install`` runs this); never fails the install."""
    target = library_path()
    if target.exists():
        print(f"native backend: up to date: {target}")
    else:
        try:
            print(f"native backend: built {target} in {build(target):.1f} s")
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            print(f"native backend: not built ({error}); auto uses the PyTorch backends")


if __name__ == "__main__":
    main()
