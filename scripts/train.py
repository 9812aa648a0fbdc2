"""Train a model: ``python scripts/train.py +experiment=quickstart [key=value ...]``.

A thin wrapper: Hydra composes ``configs/train.yaml``; :func:`rnnkit.train.train` does the
work and returns the metrics; the value of ``optimized_metric`` goes back to sweepers.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnkit.cli import handle_errors
from rnnkit.train import train
from rnnkit.utils.config import metric_value

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


@handle_errors  # user errors (bad data, config typos, ...) print one line and exit with status 2
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
