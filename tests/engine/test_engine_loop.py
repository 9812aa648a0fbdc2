"""rnnkit's Trainer against a hand-written PyTorch loop: the same seed gives the same weights,
bit for bit, with the sanity check, clipping and schedulers on; and what it refuses."""

from __future__ import annotations

import pytest
import torch

from rnnkit.engine import Trainer
from rnnkit.engine.seed import seed_everything
from rnnkit.errors import ConfigError
from tests.engine.toy import ToyData, ToyTask, plain_loop, weights

QUIET = {
    "accelerator": "cpu",
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
}


def engine_run(tmp_path, epochs=3, task_kwargs=None, **trainer_kwargs):
    seed_everything(7)
    task = ToyTask(**(task_kwargs or {}))
    trainer = Trainer(max_epochs=epochs, default_root_dir=tmp_path, **{**QUIET, **trainer_kwargs})
    trainer.fit(task, ToyData())
    return task, trainer


def plain_run(epochs=3, task_kwargs=None, **loop_kwargs):
    seed_everything(7)
    task = ToyTask(**(task_kwargs or {}))
    plain_loop(task, ToyData(), epochs, **loop_kwargs)
    return task


def test_fit_equals_a_plain_loop_with_the_sanity_check_on(tmp_path):
    # the two sanity batches draw a random number (the loader's seed); Lightning isolates it,
    # and so must the engine, or every later shuffle would differ
    task, trainer = engine_run(tmp_path)
    assert torch.equal(weights(task), weights(plain_run()))
    assert (trainer.global_step, trainer.current_epoch) == (24, 3)
    assert set(trainer.callback_metrics) == {"train/loss", "val/loss"}
    assert task.training  # eval() during validation, training mode given back


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_gradient_clipping_equals_torch_clipping(tmp_path, algorithm):
    task, _ = engine_run(tmp_path, gradient_clip_val=0.05, gradient_clip_algorithm=algorithm)
    clipped = plain_run(clip=0.05, algorithm=algorithm)
    assert torch.equal(weights(task), weights(clipped))
    assert not torch.equal(weights(clipped), weights(plain_run()))  # the clip was active


@pytest.mark.parametrize("scheduler", ["step", "plateau"])
def test_epoch_schedulers_step_as_in_a_plain_loop(tmp_path, scheduler):
    task, trainer = engine_run(tmp_path, task_kwargs={"scheduler": scheduler})
    assert torch.equal(weights(task), weights(plain_run(task_kwargs={"scheduler": scheduler})))
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    if scheduler == "step":
        assert lr == pytest.approx(0.05 * 0.5**3)
    else:
        assert lr < 0.05  # the plateau scheduler read val/loss and cut the rate


def test_fast_dev_run_runs_one_batch_of_each_split_and_writes_nothing(tmp_path):
    seed_everything(7)
    task = ToyTask()
    trainer = Trainer(fast_dev_run=True, default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(task, ToyData())
    assert trainer.global_step == 1 and trainer.current_epoch == 1
    assert set(trainer.callback_metrics) == {"train/loss", "val/loss"}
    (result,) = trainer.test(task, ToyData(), verbose=False)
    assert set(result) == {"test/loss"}
    assert list(tmp_path.iterdir()) == []  # no checkpoint, no log


def test_limits_count_batches_and_fractions(tmp_path):
    _, trainer = engine_run(tmp_path, epochs=2, limit_train_batches=3, limit_val_batches=0.5)
    assert trainer.global_step == 6 and trainer.num_val_batches == 1
    with pytest.raises(ConfigError, match=r"trainer\.limit_train_batches=0\.01 of 8 batches"):
        engine_run(tmp_path, epochs=1, limit_train_batches=0.01)


def test_overfit_batches_trains_on_the_same_batches_every_epoch(tmp_path):
    seen = []

    class Record(ToyTask):
        def training_step(self, batch, batch_idx):
            seen.append(batch[0].clone())
            return super().training_step(batch, batch_idx)

    seed_everything(7)
    trainer = Trainer(max_epochs=3, overfit_batches=2, default_root_dir=tmp_path, **QUIET)
    trainer.fit(Record(), ToyData())
    assert trainer.global_step == 6 and len(seen) == 6
    assert all(torch.equal(a, b) for a, b in zip(seen[:2], seen[2:4], strict=True))


def test_validate_test_and_predict(tmp_path):
    task, trainer = engine_run(tmp_path, epochs=1)
    task.eval()
    data = ToyData()
    with torch.no_grad():
        x, y = data.val_set.tensors
        predictions = [task.net(x[i : i + 8]) for i in (0, 8)]
        mse = torch.nn.functional.mse_loss
        expected = [mse(p, y[i : i + 8]) for p, i in zip(predictions, (0, 8), strict=True)]
    task.train()
    (tested,) = trainer.test(task, data, verbose=False)
    assert tested["test/loss"] == pytest.approx(float(torch.stack(expected).mean()))
    (validated,) = trainer.validate(task, data, verbose=False)
    assert validated["val/loss"] == pytest.approx(tested["test/loss"])  # the same split
    out = trainer.predict(task, data)
    assert len(out) == 2 and all(torch.equal(a, b) for a, b in zip(out, predictions, strict=True))
    assert trainer.global_step == 8  # evaluation changes no counter


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("strategy", "ddp"),
        ("devices", 2),
        ("num_nodes", 2),
        ("plugins", ["something"]),
        ("precision", "16-mixed"),
        ("accumulate_grad_batches", 4),
        ("sync_batchnorm", True),
        ("num_processes", 3),
    ],
)
def test_what_needs_lightning_is_one_error_naming_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        Trainer(**{key: value})
    message = str(info.value)
    assert message.startswith(f"trainer.{key}={value!r} is not supported by rnnkit's Trainer")
    assert "trainer=ddp" in message and "\n" not in message


def test_single_process_spellings_of_lightning_options_are_accepted():
    trainer = Trainer(strategy="auto", devices=1, num_nodes=1, precision="32-true", **QUIET)
    assert trainer.device == torch.device("cpu") and trainer.world_size == 1


def test_bad_values_name_their_key():
    with pytest.raises(ConfigError, match=r"trainer\.gradient_clip_algorithm is 'l2'"):
        Trainer(gradient_clip_algorithm="l2")
    with pytest.raises(ConfigError, match=r"trainer\.check_val_every_n_epoch is 0"):
        Trainer(check_val_every_n_epoch=0)
    with pytest.raises(ConfigError, match=r"trainer\.accelerator='tpu'"):
        Trainer(accelerator="tpu")
