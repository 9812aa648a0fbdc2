"""``Trainer.gradient_norm``: one norm a step for the NaN guard and for norm clipping, the
same weights as torch's ``clip_grad_norm_``, and a fresh norm when a hook changes a gradient."""

from __future__ import annotations

import torch

import rnnkit.engine.trainer as trainer_module
from rnnkit.callbacks import NaNGuard
from rnnkit.engine import Callback
from tests.engine.test_engine_loop import engine_run, plain_run
from tests.engine.toy import weights


def _counting_norm(monkeypatch) -> list[int]:
    calls = [0]
    norm = trainer_module.get_total_norm

    def counted(*args, **kwargs):
        calls[0] += 1
        return norm(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "get_total_norm", counted)
    return calls


def test_the_guard_and_norm_clipping_share_one_norm_and_match_torch(tmp_path, monkeypatch):
    calls = _counting_norm(monkeypatch)
    task, trainer = engine_run(tmp_path, gradient_clip_val=0.05, callbacks=[NaNGuard()])
    assert calls[0] == trainer.global_step == 24  # once a step, not once for each
    assert torch.equal(weights(task), weights(plain_run(clip=0.05, algorithm="norm")))


class HalveGradients(Callback):
    """Scales every gradient in place after the guard has asked for the norm."""

    def on_before_optimizer_step(self, trainer, task, optimizer):
        for parameter in task.parameters():
            parameter.grad.mul_(0.5)


def test_a_gradient_changed_after_the_guard_is_clipped_by_its_new_norm(tmp_path, monkeypatch):
    calls = _counting_norm(monkeypatch)
    guarded, _ = engine_run(
        tmp_path / "a", gradient_clip_val=0.05, callbacks=[NaNGuard(), HalveGradients()]
    )
    assert calls[0] == 2 * 24  # the halved gradients' norm was computed again
    # without the guard, the norm is first asked for by the clipping, after the halving
    reference, _ = engine_run(tmp_path / "b", gradient_clip_val=0.05, callbacks=[HalveGradients()])
    assert torch.equal(weights(guarded), weights(reference))
    # and a stale norm (the guard's, of the gradients before halving) would clip differently
    unhalved, _ = engine_run(tmp_path / "c", gradient_clip_val=0.05)
    assert not torch.equal(weights(reference), weights(unhalved))


def test_the_norm_covers_the_optimized_gradients_only_as_they_are():
    trainer = trainer_module.Trainer(logger=False, enable_checkpointing=False)
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    a.grad, b.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 4.0])
    trainer._optimized, trainer._norm_of = [a, b], None
    assert trainer.gradient_norm().item() == 5.0
    b.grad = None  # a parameter without a gradient takes no part, as in clip_grad_norm_
    assert trainer.gradient_norm().item() == 3.0
    a.grad[0] = float("nan")
    assert torch.isnan(trainer.gradient_norm())
