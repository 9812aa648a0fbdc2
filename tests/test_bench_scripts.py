"""The benchmark scripts run: ``scripts/bench_tasks.py``'s measurements on a tiny setting (every
case, one epoch of 4 batches, one fit a side) give well-formed rows and load no Lightning, its
darts/neuralforecast comparisons skip when those are missing, and ``scripts/bench_startup.py``'s
probe is valid code. Nothing is timed against a threshold and nothing is downloaded."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"

#: every case of bench_tasks at 4 batches an epoch, then the rows and the Lightning modules loaded
TINY_RUN = f"""
import argparse, json, sys
sys.path.insert(0, {str(SCRIPTS)!r})
import bench_tasks
args = argparse.Namespace(quick=True, clock="cpu", task_cases=bench_tasks.DEFAULT_CASES, fits=1,
                          no_libraries=True, batches=4)
rows = bench_tasks.bench_tasks(args)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning"))
print("ROWS", json.dumps({{"rows": rows, "markdown": bench_tasks.markdown(rows),
                          "lightning": loaded}}))
"""


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while it is built
    spec.loader.exec_module(module)
    return module


def test_bench_tasks_rows_are_well_formed_and_load_no_lightning():
    out = subprocess.run(
        [sys.executable, "-c", TINY_RUN],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = (x for x in out.stdout.splitlines() if x.startswith("ROWS "))
    result = json.loads(line.removeprefix("ROWS "))
    rows = result["rows"]
    cases = load_script("bench_tasks").DEFAULT_CASES
    assert [(r["task"], r["backend"]) for r in rows] == [tuple(c) for c in cases]
    for row in rows:
        for key in ("plain_step", "task_step", "plain_epoch", "task_epoch"):
            assert row[key] > 0, row
        for key in ("step_ratio", "epoch_ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, row
    # a header, the separator, one line per row
    assert len(result["markdown"].splitlines()) == 2 + len(rows)
    assert result["lightning"] == []  # rnnkit's Trainer: the default path imports no Lightning


@pytest.mark.parametrize("library", ["darts", "neuralforecast"])
def test_library_comparisons_skip_when_missing(library, monkeypatch, tmp_path, capsys):
    bench_tasks = load_script("bench_tasks")
    monkeypatch.setitem(sys.modules, library, None)  # `import darts` raises ImportError
    bench = getattr(bench_tasks, f"bench_{library}")
    assert bench(tmp_path, 1, 5) is None
    assert f"{library}: skipped" in capsys.readouterr().out


def test_bench_startup_imports_and_its_probe_is_an_rnnkit_callback():
    from rnnkit.engine import Callback

    bench_startup = load_script("bench_startup")
    compile(bench_startup.REPORT, "<report>", "exec")
    for statement in bench_startup.IMPORTS.values():
        compile(f"{statement}\n{bench_startup.REPORT}\n_startup_report()", "<row>", "exec")
    probe: dict = {}
    exec(compile(bench_startup.FIRST_STEP, "startup_probe.py", "exec"), probe)
    first_step = probe["FirstStep"]
    assert issubclass(first_step, Callback)
    assert "on_train_batch_start" in vars(first_step)
    assert callable(probe["_startup_report"])
