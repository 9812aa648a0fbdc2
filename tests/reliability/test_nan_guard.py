"""A NaN or infinite loss stops training with a message naming the step and the likely cause,
and the last good checkpoint stays intact (finite weights, loadable)."""

from __future__ import annotations

import json

import pytest
import torch
from reliability_helpers import BlowUpAt, toy_run

from rnnkit.errors import NonFiniteLossError
from rnnkit.utils.checkpointing import load_checkpoint


def _all_finite(checkpoint) -> bool:
    return all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())


def test_nan_loss_stops_with_step_and_advice(tmp_path):
    with pytest.raises(NonFiniteLossError) as info:
        toy_run(tmp_path, max_epochs=3, callbacks=[BlowUpAt(epoch=1, lr=1e38)])
    message = str(info.value)
    assert "\n" not in message
    assert "at step " in message and "(epoch 1, batch " in message
    assert "learning rate may be too high (now 1e+38)" in message
    assert "trainer.gradient_clip_val=1.0" in message
    assert "last.ckpt" in message  # where the last good checkpoint is
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0 and _all_finite(last)


def test_finite_training_is_untouched(tmp_path):
    result = toy_run(tmp_path, max_epochs=1)
    assert result["global_step"] == 8


def test_pipeline_nan_marks_the_run_failed(tmp_path):
    from reliability_helpers import QUICK, compose

    from rnnkit.train import train

    blow_up = [
        "+callbacks.blow_up._target_=reliability_helpers.BlowUpAt",
        "+callbacks.blow_up.epoch=1",
    ]
    with pytest.raises(NonFiniteLossError, match=r"at step \d+ \(epoch 1, batch \d+\)"):
        train(compose([*QUICK, *blow_up], tmp_path))
    assert not (tmp_path / "summary.json").exists()
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["status"] == "failed" and "NonFiniteLossError" in info["error"]
    assert "gradient_clip_val" in (tmp_path / "FAILED").read_text()
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0 and _all_finite(last)


def _fake_trainer():
    """What NaNGuard's message reads from a trainer."""
    from types import SimpleNamespace

    progress = SimpleNamespace(current=SimpleNamespace(ready=4))
    return SimpleNamespace(
        optimizers=[],
        gradient_clip_val=None,
        checkpoint_callback=None,
        global_step=3,
        current_epoch=0,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)),
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_gradient_is_named(bad):
    from torch import nn

    from rnnkit.callbacks import NaNGuard

    module = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    for p in module.parameters():
        p.grad = torch.full_like(p, 1e30)  # huge but finite: a 2-norm would overflow, no stop
    guard = NaNGuard()
    guard.on_before_optimizer_step(_fake_trainer(), module, None)
    module[1].weight.grad[0, 1] = bad
    with pytest.raises(
        NonFiniteLossError, match=r"gradient of '1\.weight' is not finite at step 3"
    ):
        guard.on_before_optimizer_step(_fake_trainer(), module, None)
