"""Draw every logged metric of a run: ``python scripts/plot.py RUN_DIR [--x epoch]``.

Finds each ``metrics.csv`` a Lightning ``CSVLogger`` wrote under ``RUN_DIR`` (for example
``RUN_DIR/csv/version_0/metrics.csv``) and writes one PNG per metric into ``RUN_DIR/plots/``
(``train/loss``, ``val/loss`` and ``test/loss`` share ``loss.png``). With several CSV files
(several versions, a resumed run) each gets its own sub-folder named after its path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnkit.plots import plot_learning_curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (outputs/<task>/<time>)")
    parser.add_argument("--x", choices=["step", "epoch"], default="step", help="x axis")
    parser.add_argument("--out", type=Path, default=None, help="folder (default RUN_DIR/plots)")
    args = parser.parse_args(argv)

    if not args.run_dir.is_dir():
        parser.error(f"{args.run_dir} is not a directory")
    files = sorted(args.run_dir.rglob("metrics.csv"))
    if not files:
        parser.error(f"no metrics.csv under {args.run_dir} (was the run logged with logger=csv?)")
    out = args.out or args.run_dir / "plots"
    for csv_file in files:
        target = out
        if len(files) > 1:
            target = out / "_".join(csv_file.parent.relative_to(args.run_dir).parts)
        for path in plot_learning_curves(csv_file, target, x=args.x):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
