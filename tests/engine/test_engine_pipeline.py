"""The pipeline on rnnkit's Trainer: the quickstart runs without importing Lightning or
torchmetrics, and a seeded run ends with Lightning's weights when the same task, data and
callbacks run under a Lightning Trainer through the adapters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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
                                                             "pytorch_lightning"))
    print("MODULES", json.dumps(found))
    """
)


def test_the_quickstart_imports_neither_lightning_nor_torchmetrics(tmp_path):
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
    """The same seeded task, data and callbacks (early stopping, best/last checkpoints,
    clipping, a plateau scheduler) under both drivers: the same weights, bit for bit, the same
    metrics, the same best checkpoint."""
    import lightning as L
    import torch
    from rnnkit.engine.lightning import (
        as_lightning_callback,
        as_lightning_datamodule,
        as_lightning_module,
    )

    from rnnkit.engine import Trainer
    from rnnkit.engine.callbacks import EarlyStopping, ModelCheckpoint
    from rnnkit.engine.seed import seed_everything
    from tests.engine.toy import ToyData, ToyTask, weights

    def callbacks(folder):
        return [
            ModelCheckpoint(dirpath=folder, monitor="val/loss", save_last=True),
            EarlyStopping(monitor="val/loss", patience=2),
        ]

    common = {"max_epochs": 8, "gradient_clip_val": 0.5, "accelerator": "cpu", "logger": False}
    seed_everything(7)
    ours = ToyTask(scheduler="plateau")
    engine = Trainer(callbacks=callbacks(tmp_path / "ours"), enable_model_summary=False, **common)
    engine.fit(ours, ToyData())

    seed_everything(7)
    theirs = ToyTask(scheduler="plateau")
    lightning = L.Trainer(
        callbacks=[as_lightning_callback(c) for c in callbacks(tmp_path / "theirs")],
        enable_model_summary=False,
        enable_progress_bar=False,
        **common,
    )
    assert isinstance(lightning.checkpoint_callback, L.pytorch.callbacks.ModelCheckpoint)
    lightning.fit(as_lightning_module(theirs), as_lightning_datamodule(ToyData()))

    assert torch.equal(weights(ours), weights(theirs))
    assert (engine.global_step, engine.current_epoch) == (
        lightning.global_step,
        lightning.current_epoch,
    )
    assert {k: float(v) for k, v in engine.callback_metrics.items()} == {
        k: float(v) for k, v in lightning.callback_metrics.items()
    }
    best = lambda t: t.checkpoint_callback.best_model_path.rsplit("/", 1)[-1]  # noqa: E731
    assert best(engine) == best(lightning)
