"""The pipeline on rnnkit's Trainer: the quickstart runs without importing Lightning,
torchmetrics or matplotlib (it draws no plot; each would add start-up time), and a seeded run
ends with Lightning's weights when the same task, data and callbacks run under a Lightning
Trainer through the adapters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import REPO_ROOT

QUICKSTART_PROBE = textwrap.dedent(
    """
    import json, sys
    from rnnkit.commands import main

    try:
        main(["train", "+experiment=quickstart", "debug=fdr", "extras.print_config=false",
              "hydra.run.dir=" + sys.argv[1]])
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    found = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "torchmetrics",
                                                             "pytorch_lightning", "matplotlib"))
    print("MODULES", json.dumps(found))
    """
)


def test_the_quickstart_imports_no_lightning_torchmetrics_or_matplotlib(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", QUICKSTART_PROBE, str(tmp_path / "run")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("MODULES ")]
    assert out.returncode == 0 and lines, out.stderr[-3000:]
    assert json.loads(lines[0].split(" ", 1)[1]) == []
    assert (tmp_path / "run" / "summary.json").is_file()


def test_engine_equals_lightning_through_the_adapters(tmp_path):
    """The same seeded task, data, callbacks (early stopping, best/last checkpoints) and logger,
    clipping and a plateau scheduler under both drivers: the same weights, bit for bit, the same
    metrics, the same best checkpoint, the same metrics.csv."""
    import lightning as L
    import torch

    from rnnkit.engine import Trainer
    from rnnkit.engine.callbacks import EarlyStopping, ModelCheckpoint
    from rnnkit.engine.lightning import (
        as_lightning_callback,
        as_lightning_datamodule,
        as_lightning_logger,
        as_lightning_module,
    )
    from rnnkit.engine.loggers import CSVLogger
    from rnnkit.engine.seed import seed_everything
    from tests.engine.toy import ToyData, ToyTask, weights

    def setting(folder):
        callbacks = [
            ModelCheckpoint(dirpath=folder, monitor="val/loss", save_last=True),
            EarlyStopping(monitor="val/loss", patience=2),
        ]
        return callbacks, CSVLogger(folder, name="csv", version="")

    common = {"max_epochs": 8, "gradient_clip_val": 0.5, "accelerator": "cpu"}
    runs = {}
    for driver in ("engine", "lightning"):
        seed_everything(7)
        task, data = ToyTask(scheduler="plateau"), ToyData()
        callbacks, logger = setting(tmp_path / driver)
        if driver == "engine":
            trainer = Trainer(
                callbacks=callbacks, logger=logger, enable_model_summary=False, **common
            )
            module, datamodule = task, data
        else:
            trainer = L.Trainer(
                callbacks=[as_lightning_callback(c) for c in callbacks],
                logger=as_lightning_logger(logger),
                enable_model_summary=False,
                enable_progress_bar=False,
                **common,
            )
            module, datamodule = as_lightning_module(task), as_lightning_datamodule(data)
        trainer.fit(module, datamodule)
        fitted = {k: float(v) for k, v in trainer.callback_metrics.items()}
        trainer.test(module, datamodule, verbose=False)
        runs[driver] = (task, trainer, fitted)

    (ours, engine, ours_fitted), (theirs, lightning, theirs_fitted) = runs.values()
    assert isinstance(lightning.checkpoint_callback, L.pytorch.callbacks.ModelCheckpoint)
    assert torch.equal(weights(ours), weights(theirs))
    assert engine.global_step == lightning.global_step < 8 * 8  # early stopping stopped both
    assert engine.current_epoch == lightning.current_epoch
    assert ours_fitted == theirs_fitted
    best = [Path(t.checkpoint_callback.best_model_path).name for t in (engine, lightning)]
    assert best[0] == best[1]
    csv = [(tmp_path / d / "csv" / "metrics.csv").read_text() for d in runs]
    assert csv[0] == csv[1]
