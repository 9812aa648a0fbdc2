#!/usr/bin/env bash
# The GPU checks of issue 17 in one run on a fresh GPU machine, in under 8 minutes: the gpu
# tests (tests/gpu/, `pytest -m gpu`) and the CUDA benchmark (scripts/bench.py --device cuda
# --quick), each under a time limit, results written to files.
#
#   scripts/gpu_check.sh --fetch-wheels   # first, where pip reaches PyPI: the pure-Python
#                                         # packages a GPU image usually lacks (Hydra,
#                                         # OmegaConf, ANTLR's runtime), as wheels in
#                                         # .gpu-wheels/ (git-ignored; carry it to the GPU)
#   scripts/gpu_check.sh [RESULTS_DIR]    # on the GPU machine; RESULTS_DIR defaults to $OUT
#                                         # where that is set, else gpu-results/
#
# Installs nothing into the machine's Python: torch is the machine's own CUDA build, the
# missing packages go to a private folder from .gpu-wheels/ (or, with no wheels, from PyPI
# through `pip install -e .`, which keeps the installed torch), and rnnkit is imported from
# this checkout (PYTHONPATH). Writes: env.txt (GPU, driver, versions), pytest.log and
# junit.xml, bench.log, bench.json and bench.md. Without CUDA it stops with one `error:` line.
#
# A second, shorter run after a fix: PYTEST_ARGS="-k autocast" (appended to pytest's
# arguments, split at spaces) and BENCH=0 (no table); TESTS_S and BENCH_S change the time
# limits (seconds).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WHEELS=${RNNKIT_WHEELS:-$REPO/.gpu-wheels}
# what the gpu tests import beyond torch (module names)
NEEDED="hydra omegaconf antlr4 lightning torchmetrics sklearn statsmodels matplotlib pytest"
# worst case about 7 minutes in all (a lease of 15 GPU minutes then still holds a rerun);
# the estimate from the test count and sizes is 2-4 minutes (never measured yet)
TESTS_S=${TESTS_S:-240}
BENCH_S=${BENCH_S:-150}

die() {
    echo "error: $*" >&2
    exit 1
}

if [ "${1:-}" = "--fetch-wheels" ]; then
    # the versions this checkout is tested with: those of the local venv when there is one
    PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
    mkdir -p "$WHEELS"
    for pkg in hydra-core omegaconf antlr4-python3-runtime; do
        version=$("$PYTHON" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$pkg") ||
            die "$pkg is not installed in $PYTHON: its version is what gets fetched"
        # pip wheel: antlr4-python3-runtime 4.9.3 is published as a source archive only
        "$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$WHEELS" "$pkg==$version" ||
            die "pip could not fetch $pkg==$version"
    done
    ls -l "$WHEELS"
    exit 0
fi

PYTHON=${PYTHON:-python3}
RESULTS=${1:-${OUT:-$REPO/gpu-results}}
"$PYTHON" - <<'EOF' || exit 1
import sys
try:
    import torch
except ImportError:
    sys.exit(f"error: {sys.executable} has no torch; set PYTHON to the Python that has CUDA torch")
if not torch.cuda.is_available():
    sys.exit(f"error: no CUDA GPU is visible to {sys.executable} (torch {torch.__version__}, "
             f"CUDA build {torch.version.cuda}); run this on a GPU machine")
EOF

missing() {
    "$PYTHON" -c 'import importlib.util as u, sys
print(" ".join(m for m in sys.argv[1:] if u.find_spec(m) is None))' $NEEDED
}
if [ -n "$(missing)" ]; then
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/rnnkit-site \
            "$WHEELS"/*.whl || die "could not install the wheels in $WHEELS"
        export PYTHONPATH=/tmp/rnnkit-site${PYTHONPATH:+:$PYTHONPATH}
    else
        "$PYTHON" -m pip install -q --retries 0 --timeout 15 -e "$REPO" ||
            die "no wheels in $WHEELS and PyPI unreachable; run scripts/gpu_check.sh --fetch-wheels where pip works and bring .gpu-wheels/"
    fi
    [ -z "$(missing)" ] || die "still missing after installing: $(missing)"
fi

mkdir -p "$RESULTS" || die "cannot write to $RESULTS"
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# the C++ loops of `native` are CPU only and not under test here: skip their compile
export RNNKIT_NATIVE=0
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    "$PYTHON" -c 'import sys, torch, lightning
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, lightning {lightning.__version__}, "
      f"GPU {torch.cuda.get_device_name()} (capability {torch.cuda.get_device_capability()})")'
} >"$RESULTS/env.txt" 2>&1
cat "$RESULTS/env.txt"

status=0
timeout_flag=$("$PYTHON" -c 'import pytest_timeout' 2>/dev/null && echo --timeout=150)
# SIGINT at the limit: pytest stops, prints its summary and still writes junit.xml
timeout -s INT -k 20 "$TESTS_S" "$PYTHON" -m pytest tests/gpu -m gpu -p no:cacheprovider -rfEs \
    -q $timeout_flag --junitxml="$RESULTS/junit.xml" ${PYTEST_ARGS:-} 2>&1 |
    tee "$RESULTS/pytest.log" | tail -40
[ "${PIPESTATUS[0]}" = 0 ] || status=1

if [ "${BENCH:-1}" != 0 ]; then
    timeout -k 10 "$BENCH_S" "$PYTHON" scripts/bench.py --device cuda --quick \
        --json "$RESULTS/bench.json" --markdown "$RESULTS/bench.md" 2>&1 | tee "$RESULTS/bench.log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

echo "results in $RESULTS: $(ls "$RESULTS" | tr '\n' ' ')"
[ "$status" = 0 ] || echo "error: a step failed or ran out of time (see pytest.log, bench.log)" >&2
exit "$status"
