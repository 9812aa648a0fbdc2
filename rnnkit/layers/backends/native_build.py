"""Build and load the C++ time loops of the ``native`` backend (``rnnkit/csrc``), once per machine.

Every ``rnnkit/csrc/*.cpp`` is compiled (in parallel, one object each) with the system C++
compiler against the installed torch's headers and linked into one library in
``$RNNKIT_CACHE_DIR/native`` (default ``~/.cache/rnnkit/native``), under a name that hashes
every source and header, the compiler, the torch build and the flags, so a changed source,
compiler or torch, or another CPU, gets its own file. ``recurrent_loops.cpp`` declares the op
library (``TORCH_LIBRARY(rnnkit_native, m)``); any other file adds ops to it with
``TORCH_LIBRARY_FRAGMENT(rnnkit_native, m)``, so a new kernel is a new file and nothing else.
The library is written under a name unique to the building process and thread and renamed into
place, so a crash or a concurrent build never leaves a half-written file under the final name; a
cached file that fails to load is rebuilt once. ``make install`` builds it ahead (:func:`main`);
otherwise the first use does.

Why not ``torch.utils.cpp_extension.load`` (checked in torch 2.13): it serialises builds with a
lock file (``FileBaton`` on ``<build dir>/lock``) that a build killed half-way (Ctrl-C, an OOM
kill, a cluster job's time limit) leaves behind, and every later ``load`` then waits on it
forever, with no owner check and no time-out (``FileBaton.wait`` spins while the file exists);
here there is no lock to go stale, concurrent builds each write their own file and the last
rename wins. It also keys its cache on the extension's name only (a changed torch or CPU reuses
a stale build until its source hash differs) and needs ninja.

Without a compiler, or when anything in building or loading fails, or with ``RNNKIT_NATIVE=0``,
:func:`load` returns ``None`` and says why in :func:`unavailable_reason`; ``auto`` then uses
the pure-PyTorch backends.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from rnnkit.utils.logging import get_logger

log = get_logger(__name__)

#: the C++ sources: every ``*.cpp`` here is compiled; ``*.h`` are their shared headers
SOURCE_DIR = Path(__file__).resolve().parents[2] / "csrc"
_NAMESPACE = "rnnkit_native"
_TORCH_DIR = Path(torch.__file__).resolve().parent
_state: dict = {}  # "ops" once loaded, or "error" once failed
_lock = threading.Lock()  # one build per process, however many threads ask


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
#: ``__FAST_MATH__``, which ``-fno-finite-math-only`` clears, so it is defined back. Only the
#: compile step sees these: linking a shared library with ``-ffast-math`` (gcc < 13) adds
#: ``crtfastmath.o``, which turns on flush-to-zero for the whole process at load.
_FAST_MATH = ["-ffast-math", "-fno-finite-math-only", "-D__FAST_MATH__"]


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CXX", "g++"))  # "ccache g++" is two words


def sources() -> list[Path]:
    """The translation units, in a fixed order."""
    return sorted(SOURCE_DIR.glob("*.cpp"))


def compile_command(source: Path, obj: Path) -> list[str]:
    """Compile ``source`` into the object file ``obj``."""
    includes = [
        _TORCH_DIR / "include",
        _TORCH_DIR / "include" / "torch" / "csrc" / "api" / "include",
    ]
    return [
        *_compiler(), "-c", "-fPIC", "-std=c++17", "-O3", "-fopenmp", *_march(), *_FAST_MATH,
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}", "-w",
        *[f"-I{p}" for p in includes], str(source), "-o", str(obj),
    ]  # fmt: skip


def link_command(objects: list[Path], output: Path) -> list[str]:
    """Link ``objects`` against torch into the shared library ``output`` (no fast-math flags)."""
    lib = _TORCH_DIR / "lib"
    # at::parallel_for is OpenMP inlined from torch's headers: link the OpenMP runtime torch
    # ships and runs (one thread pool in the process), or the compiler's if torch has none
    openmp = lib / "libgomp.so.1"
    return [
        *_compiler(), "-shared", *map(str, objects), "-o", str(output),
        f"-L{lib}", "-lc10", "-ltorch_cpu", str(openmp) if openmp.exists() else "-fopenmp",
        f"-Wl,-rpath,{lib}",
    ]  # fmt: skip


def _compiler_version() -> str:
    try:
        result = subprocess.run([*_compiler(), "--version"], capture_output=True, text=True)
        return result.stdout.split("\n", 1)[0]
    except OSError:
        return "no compiler"


def library_path() -> Path:
    """Where the library for this source, compiler, torch and CPU lives (built or not)."""
    cache = Path(os.environ.get("RNNKIT_CACHE_DIR", Path.home() / ".cache" / "rnnkit"))
    digest = hashlib.sha256()
    for path in sorted(SOURCE_DIR.glob("*.cpp")) + sorted(SOURCE_DIR.glob("*.h")):
        digest.update(f"{path.name}\0".encode() + path.read_bytes() + b"\0")
    commands = compile_command(Path("c"), Path("o")) + link_command([Path("o")], Path("so"))
    digest.update(" ".join([*commands, _compiler_version()]).encode())
    digest.update(f"{torch.__version__} {_TORCH_DIR} {sys.version}".encode())
    return cache / "native" / f"rnnkit_native-{digest.hexdigest()[:16]}.so"


def _first_error(stderr: str) -> str:
    line = next((ln for ln in stderr.splitlines() if "error" in ln), stderr[-300:])
    return line.strip()


def build(path: Path) -> float:
    """Compile every source (in parallel) and link them into ``path`` (atomically); returns the
    seconds it took."""
    if shutil.which(_compiler()[0]) is None:
        raise RuntimeError(f"no C++ compiler {_compiler()[0]!r} on PATH (set CXX to one)")
    units = sources()
    if not units:
        raise RuntimeError(f"no C++ sources in {SOURCE_DIR}")
    path.parent.mkdir(parents=True, exist_ok=True)
    unique = f"{os.getpid()}.{threading.get_ident()}"
    objects = [path.with_name(f"{path.stem}.{src.stem}.{unique}.partial.o") for src in units]
    partial = path.with_name(f"{path.stem}.{unique}.partial.so")
    start = time.perf_counter()
    jobs: list = []
    try:
        jobs += [
            (src, subprocess.Popen(compile_command(src, obj), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True))
            for src, obj in zip(units, objects, strict=True)
        ]  # fmt: skip
        failed = None
        for src, job in jobs:
            _, stderr = job.communicate(timeout=600)
            if job.returncode != 0 and failed is None:
                failed = f"compiling {src.name} failed: {_first_error(stderr)}"
        if failed is not None:
            raise RuntimeError(failed)
        result = subprocess.run(
            link_command(objects, partial), capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"linking {path.name} failed: {_first_error(result.stderr)}")
        os.replace(partial, path)
    finally:
        for _, job in jobs:
            if job.poll() is None:  # a compile timed out: end it before its object goes
                job.kill()
                job.wait()
        for obj in objects:
            obj.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return time.perf_counter() - start


def _load_library(path: Path, rebuild: bool) -> None:
    if rebuild or not path.exists():
        log.info("native backend: compiling %s (once per machine)...", SOURCE_DIR)
        log.info("native backend: built %s in %.1f s", path, build(path))
    torch.ops.load_library(str(path))


def load():
    """``torch.ops.rnnkit_native`` with the loops loaded (built first if needed), or ``None``."""
    with _lock:
        if "ops" in _state or "error" in _state:
            return _state.get("ops")
        if os.environ.get("RNNKIT_NATIVE", "1") == "0":
            _state["error"] = "disabled by RNNKIT_NATIVE=0"
            return None
        try:
            path = library_path()
            try:
                _load_library(path, rebuild=False)
            except OSError:  # a cached file that does not load (say, half-copied): build anew
                _load_library(path, rebuild=True)
            _state["ops"] = getattr(torch.ops, _NAMESPACE)
        except Exception as err:  # whatever breaks, the PyTorch backends still work
            _state["error"] = (
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            )
            log.warning("native backend unavailable (%s); auto uses the PyTorch backends", err)
        return _state.get("ops")


def unavailable_reason() -> str | None:
    """Why :func:`load` gave ``None``, or ``None`` if it loaded (call :func:`load` first)."""
    return _state.get("error")


def main() -> None:
    """Build ahead of first use (``make install`` runs this); never fails the install."""
    try:
        target = library_path()
        if target.exists():
            print(f"native backend: up to date: {target}")
        else:
            print(f"native backend: built {target} in {build(target):.1f} s")
    except Exception as error:  # noqa: BLE001 - the PyTorch backends still work without it
        print(f"native backend: not built ({error}); auto uses the PyTorch backends")


if __name__ == "__main__":
    main()
