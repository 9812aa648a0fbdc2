"""Training-epoch time of the tagger on a real POS set: words only, character CNN or BiLSTM, CRF.

Issue 13 asks that character features cost at most twice the word-only tagger's epoch. Each
variant is the experiment's config (``+experiment=NAME``, ``model=tagger``) with a few
overrides; one epoch is every training batch of the experiment's data through
``TaggingTask.model_step``, backward and Adam (no validation, no Lightning: the model's own
cost). Every variant is timed ``--repeats`` times and the median is printed with its ratio to
the word-only one.

Durations are CPU time of this process (``--clock cpu``, the default): on a machine shared with
other jobs elapsed time mostly measures the others; run with ``OMP_NUM_THREADS=1``. The load
average is printed beside each figure.

    OMP_NUM_THREADS=1 python scripts/bench_tagger.py                       # es-wikicorpus
    OMP_NUM_THREADS=1 python scripts/bench_tagger.py --experiment pos_nl_twnc --repeats 5

Needs the real file (``make data``) or ``RNNKIT_EXTERNAL_DATA`` pointing at stand-ins.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from rnnkit.train import build_data_and_task

WORDS_ONLY = ["model.embedder.chars=null", "data.char_features=false"]
VARIANTS = {
    "words": WORDS_ONLY,
    "char CNN": [],
    "char BiLSTM": ["model.embedder.chars=lstm", "model.embedder.char_hidden_size=25"],
    "words + CRF": [*WORDS_ONLY, "task.crf=true"],
    "char CNN + CRF": ["task.crf=true"],
}
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def epoch_times(overrides: list[str], repeats: int, clock) -> tuple[int, list[float]]:
    """Batches an epoch and the duration of each of ``repeats`` training epochs."""
    cfg = compose("train", overrides=overrides)
    torch.manual_seed(cfg.seed)
    datamodule, _, task = build_data_and_task(cfg)
    optimizer = task.configure_optimizers()["optimizer"]
    batches = list(datamodule.train_dataloader())
    task.train()
    times = []
    for _ in range(repeats):
        start = clock()
        for batch in batches:
            loss, _, _ = task.model_step(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(clock() - start)
    return len(batches), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="pos_es_wikicorpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = None
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        for name in args.variants:
            overrides = [f"+experiment={args.experiment}", *VARIANTS[name]]
            n, times = epoch_times(overrides, args.repeats, CLOCKS[args.clock])
            median = statistics.median(times)
            base = median if name == "words" else base
            ratio = f"{median / base:.2f}x words" if base else ""
            print(
                f"{args.experiment} {name:<15} {n} batches: {median:6.2f} s/epoch median "
                f"({', '.join(f'{t:.2f}' for t in times)}; {args.clock}) {ratio:>12}  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
