"""The round trip a user makes: train a tiny model, evaluate its checkpoint, predict with it."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rnnkit.train import evaluate, predict, train
from rnnkit.utils.checkpointing import load_checkpoint
from rnnkit.utils.config import _package_file
from tests.helpers import REPO_ROOT

TINY = [
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=4",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "extras.print_config=false",
    "logger=csv",
]


def save_run_config(cfg, run_dir: Path) -> None:
    """What Hydra writes for a real run: ``<run dir>/.hydra/config.yaml``."""
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")


@pytest.mark.parametrize(
    "overrides, metric",
    [
        (["+experiment=quickstart"], "test/acc"),
        (
            ["+experiment=context_tagging_bilstm", "data.num_samples=120", "task.crf=true"],
            "test/f1",
        ),
    ],
    ids=["digits", "context_tagging_crf"],
)
def test_train_then_eval_reproduces_the_test_metric(overrides, metric, compose_cfg, tmp_path):
    cfg = compose_cfg([*overrides, *TINY], subdir="train")
    run_dir = Path(cfg.paths.output_dir)
    save_run_config(cfg, run_dir)
    metrics = train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"][metric] == pytest.approx(metrics[metric])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(summary["best_ckpt"]).is_file()
    assert (run_dir / "csv" / "metrics.csv").is_file()

    eval_cfg = compose_cfg(
        [
            f"ckpt_path={summary['best_ckpt']}",
            "extras.print_config=false",
            "trainer.enable_progress_bar=false",
        ],
        config_name="eval.yaml",
        subdir="eval",
    )
    evaluated = evaluate(eval_cfg)
    assert evaluated[metric] == pytest.approx(metrics[metric], abs=1e-6)


def test_predict_writes_original_label_names(compose_cfg, tmp_path):
    cfg = compose_cfg(
        ["+experiment=context_tagging_bilstm", "data.num_samples=120", *TINY], subdir="train"
    )
    run_dir = Path(cfg.paths.output_dir)
    save_run_config(cfg, run_dir)
    train(cfg)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    # the label map is the data's state: it is in the checkpoint once (the datamodule's entry),
    # never in the config, the task's hyper-parameters or what the loggers receive
    saved = load_checkpoint(ckpt)
    assert "B-BRAND" in saved["ContextTaggingDataModule"]["fitted"]["labels"]
    assert "label_names" not in cfg.task and "label_names" not in saved["hyper_parameters"]
    assert "B-BRAND" not in repr(saved["rnnkit"]["config"])
    assert "B-BRAND" not in (run_dir / "csv" / "hparams.yaml").read_text()
    sentences = tmp_path / "input.conll"
    sentences.write_text("jordan\nsaid\nhello\n\ni\nbought\nfila\nshoes\n")  # tokens, no tags
    out = tmp_path / "pred.conll"
    pred_cfg = compose_cfg(
        [f"ckpt_path={ckpt}", f"input={sentences}", f"output={out}", "extras.print_config=false"],
        config_name="eval.yaml",
        subdir="pred",
    )
    lines = predict(pred_cfg)
    assert out.read_text().splitlines() == lines
    rows = [line.split("\t") for line in lines if line]
    assert [r[0] for r in rows] == ["jordan", "said", "hello", "i", "bought", "fila", "shoes"]
    names = {"O", "B-PER", "I-PER", "B-BRAND", "I-BRAND"}
    assert all(r[1] in names for r in rows)


@pytest.mark.slow
def test_scripts_round_trip(tmp_path):
    """The command-line scripts: train, then predict to stdout with label names."""
    run_dir = tmp_path / "run"
    train_cmd = [
        sys.executable,
        "scripts/train.py",
        "+experiment=quickstart",
        *TINY,
        f"hydra.run.dir={run_dir}",
    ]
    done = subprocess.run(train_cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["test/acc"] > 0.3  # 10 classes: chance is 0.1
    digits = tmp_path / "digits.csv"
    with gzip.open(_package_file("sklearn.datasets", "data/digits.csv.gz"), "rt") as f:
        first = [next(f).strip() for _ in range(3)]
    digits.write_text("".join(",".join(r.split(",")[:-1]) + "\n" for r in first))  # no labels
    predict_cmd = [
        sys.executable,
        "scripts/predict.py",
        f"ckpt_path={run_dir}/checkpoints/last.ckpt",
        f"input={digits}",
        "extras.print_config=false",
        f"hydra.run.dir={tmp_path / 'pred'}",
    ]
    done = subprocess.run(predict_cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        label, prob, source = line.split("\t")
        assert label in {str(i) for i in range(10)} and 0.0 < float(prob) <= 1.0
        assert source.startswith(str(digits))
