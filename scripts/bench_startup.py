"""Start-up of a training run: seconds from the command to the first training step, by part.

Issue 18's figure: ``python scripts/train.py +experiment=quickstart`` from the command to its
first training batch. Each figure is a fresh interpreter (a subprocess), timed twice:

- **wall**: elapsed seconds from the process's start (``/proc/self/stat``) to the point;
- **cpu**: user + system CPU seconds of the process at that point, which the other jobs of a
  shared machine inflate far less than elapsed time.

Rows: the interpreter alone, ``import torch``, torch with Hydra/OmegaConf/NumPy (what a run
needs), ``import torch._dynamo`` and ``import lightning`` (what a run does *not* import: the
compiled backend and the Lightning driver of ``trainer=ddp``), ``import rnnkit.train``, and the
quickstart itself up to its first training step (a callback added with ``+callbacks.…`` prints
the figures and ends the process there). Medians of ``--repeats`` runs.

    OMP_NUM_THREADS=1 python scripts/bench_startup.py --repeats 3
    python -X importtime -c "import rnnkit.train" 2> importtime.txt   # the import tree
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "STARTUP"

#: prints the figures of this process as one line; ``python -c`` runs it after a statement
REPORT = f"""
import os
def _startup_report():
    fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    wall = float(open("/proc/uptime").read().split()[0]) - started
    t = os.times()
    print("{MARK}", wall, t.user + t.system, flush=True)
"""

IMPORTS = {
    "python (nothing imported)": "pass",
    "import torch": "import torch",
    "torch, hydra, omegaconf, numpy": "import torch, hydra, omegaconf, numpy",
    "import torch._dynamo": "import torch._dynamo",
    "import lightning": "import lightning",
    "import rnnkit.train": "import rnnkit.train",
}

#: a callback module for the quickstart: report at the first training batch, then stop
FIRST_STEP = (
    REPORT
    + """
from rnnkit.engine import Callback

class FirstStep(Callback):
    def on_train_batch_start(self, *args, **kwargs):
        _startup_report()
        os._exit(0)
"""
)


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith(MARK):
            _, wall, cpu = line.split()
            return float(wall), float(cpu)
    raise RuntimeError(f"{' '.join(args)}: no {MARK} line (exit {out.returncode}):\n"
                       f"{out.stderr[-2000:]}")  # fmt: skip


def measure(repeats: int) -> list[tuple[str, float, float]]:
    """``(row, median wall s, median cpu s)`` for every import row and the quickstart."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnkit-startup-") as tmp:
        (Path(tmp) / "startup_probe.py").write_text(FIRST_STEP)
        probe_env = dict(env, PYTHONPATH=os.pathsep.join([tmp, env["PYTHONPATH"]]))
        commands = {
            row: [sys.executable, "-c", f"{statement}\n{REPORT}\n_startup_report()"]
            for row, statement in IMPORTS.items()
        }
        commands["quickstart, to the first training step"] = [
            sys.executable, str(ROOT / "scripts" / "train.py"), "+experiment=quickstart",
            "+callbacks.startup_probe._target_=startup_probe.FirstStep",
            f"hydra.run.dir={tmp}/run{{}}",  # a fresh run folder each time, not in outputs/
        ]  # fmt: skip
        for row, command in commands.items():
            figures = [
                _run([a.format(i) if "{}" in a else a for a in command],
                     probe_env if "quickstart" in row else env)
                for i in range(repeats)
            ]  # fmt: skip
            wall = statistics.median(f[0] for f in figures)
            cpu = statistics.median(f[1] for f in figures)
            rows.append((row, wall, cpu))
            print(f"{row:<42} wall {wall:6.2f} s   cpu {cpu:6.2f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (median)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {args.repeats}", flush=True)
    measure(args.repeats)
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
