"""GradientFlow and GradNorm inside a real Lightning fit, checked against autograd by hand."""

from __future__ import annotations

import copy
import json

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.cells import ElmanCell, LSTMCell
from rnnkit.diagnostics import GradientFlow, GradNorm
from rnnkit.engine.lightning import as_lightning_callback
from rnnkit.models import build_stack
from rnnkit.plots import read_metrics_csv

B, T, F, H = 4, 7, 2, 6
PNG = b"\x89PNG\r\n\x1a\n"


class ManyToOne(L.LightningModule):
    """The smallest task: a recurrent stack, the last output, a linear head, MSE."""

    def __init__(self, cell=ElmanCell, lr: float = 0.1) -> None:
        super().__init__()
        self.model = nn.ModuleDict(
            {"rnn": build_stack(cell, F, H, num_layers=1), "head": nn.Linear(H, 1)}
        )
        self.lr = lr

    def loss(self, batch) -> torch.Tensor:
        x, y = batch
        out, _ = self.model["rnn"](x)
        return (self.model["head"](out[:, -1]).squeeze(-1) - y).pow(2).mean()

    def training_step(self, batch, batch_idx):
        return self.loss(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(B, T, F, generator=g), torch.randn(B, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=B)


def fit(module, tmp_path, callbacks, max_steps, logger=False, **trainer_kwargs) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[as_lightning_callback(c) for c in callbacks],  # the hooks get the module
        **trainer_kwargs,
    )
    trainer.fit(module, data())
    return trainer


def hand_grad_norms(module: ManyToOne) -> torch.Tensor:
    """dL/dh_t by stepping the cell by hand and keeping each h_t's gradient."""
    x, y = next(iter(data()))
    cell = module.model["rnn"].layers[0].cell
    state, hs = cell.init_state(B), []
    for t in range(T):
        out, state = cell(x[:, t], state)
        out.retain_grad()
        hs.append(out)
    loss = (module.model["head"](hs[-1]).squeeze(-1) - y).pow(2).mean()
    loss.backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in hs])


@pytest.mark.parametrize("cell", [ElmanCell, LSTMCell])
def test_gradient_flow_logs_T_norms_equal_to_autograd(tmp_path, cell):
    torch.manual_seed(0)
    module = ManyToOne(cell)
    initial = copy.deepcopy(module)
    flow = GradientFlow(every_n_steps=2, gates=True)
    logger = CSVLogger(tmp_path, name="csv", version=0)
    fit(module, tmp_path, [flow], max_steps=5, logger=logger)

    assert flow.steps == [0, 2, 4]
    name = "model.rnn.layers.0"
    assert len(flow.norms[name]) == 3 and flow.norms[name][0].shape == (T,)
    torch.testing.assert_close(flow.norms[name][0], hand_grad_norms(initial))
    # logged once per measurement, at the step measured, with the measured values
    logged = read_metrics_csv(tmp_path / "csv" / "version_0" / "metrics.csv")
    firsts = logged[f"grad_flow/{name}/first"]
    assert [step for step, _, _ in firsts] == [0, 2, 4]
    for (_, _, value), norms in zip(firsts, flow.norms[name], strict=True):
        assert value == pytest.approx(float(norms[0]))
    assert logged[f"grad_flow/{name}/last"][-1][2] == pytest.approx(
        float(flow.norms[name][-1][-1])
    )

    out = tmp_path / "gradient_flow"
    saved = np.load(out / "gradient_flow.npz")
    np.testing.assert_array_equal(saved["steps"], [0, 2, 4])
    np.testing.assert_allclose(saved[name], torch.stack(flow.norms[name]).numpy())
    summary = json.loads((out / "summary.json").read_text())
    assert summary[name]["first_step/dh_1"] == pytest.approx(float(flow.norms[name][0][0]))
    pictures = ["heatmap", "lines"] + (["gates"] if cell is LSTMCell else [])
    for kind in pictures:
        assert (out / f"{name}_{kind}.png").read_bytes().startswith(PNG)
    if cell is LSTMCell:
        assert set(flow.gates_history[name][0]) == {"i", "f", "g", "o"}
        assert f"gates/{name}/f" in logged and f"gates/{name}/f" in flow.last_metrics
    else:
        assert flow.gates_history == {}


def test_gradient_flow_warns_and_does_nothing_without_recurrent_layers(tmp_path, caplog):
    class NoRNN(ManyToOne):
        def __init__(self):
            super().__init__()
            self.model = nn.ModuleDict({"head": nn.Linear(F, 1)})

        def loss(self, batch):
            x, y = batch
            return (self.model["head"](x[:, -1]).squeeze(-1) - y).pow(2).mean()

    flow = GradientFlow(every_n_steps=1)
    fit(NoRNN(), tmp_path, [flow], max_steps=2)
    assert flow.steps == [] and not (tmp_path / "gradient_flow").exists()
    assert "no rnnkit Recurrent layer" in caplog.text


def test_gradient_flow_rejects_bad_every_n_steps():
    with pytest.raises(ValueError, match="every_n_steps"):
        GradientFlow(every_n_steps=0)


def test_grad_norm_logs_the_norm_before_clipping(tmp_path):
    torch.manual_seed(0)
    module = ManyToOne(lr=1.0)
    initial = copy.deepcopy(module)
    before = torch.cat([p.detach().flatten() for p in module.parameters()]).clone()
    clip = 1e-3
    trainer = fit(
        module,
        tmp_path,
        [GradNorm()],
        max_steps=1,
        gradient_clip_val=clip,
        gradient_clip_algorithm="norm",
    )

    initial.loss(next(iter(data()))).backward()
    expected = torch.cat([p.grad.flatten() for p in initial.parameters()]).norm()
    logged = trainer.callback_metrics["train/grad_norm"]
    torch.testing.assert_close(logged, expected)  # one step: the epoch's mean is its norm
    torch.testing.assert_close(trainer.callback_metrics["train/grad_norm_max"], expected)
    assert logged > 100 * clip
    # the optimizer saw the clipped gradient: SGD with lr=1 moved the weights by clip exactly
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert (after - before).norm() == pytest.approx(clip, rel=1e-3)


def test_grad_norm_logs_the_epoch_mean_and_max_of_every_step(tmp_path):
    torch.manual_seed(0)
    module = ManyToOne(lr=0.5)
    hand = copy.deepcopy(module)
    x, y = next(iter(data()))
    halves = DataLoader(TensorDataset(x, y), batch_size=B // 2)  # two steps an epoch
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[as_lightning_callback(GradNorm())],
    )
    trainer.fit(module, halves)

    optimizer, norms = torch.optim.SGD(hand.parameters(), lr=0.5), []
    for batch in halves:  # the same two SGD steps by hand, each norm taken before its step
        optimizer.zero_grad()
        hand.loss(batch).backward()
        norms.append(torch.cat([p.grad.flatten() for p in hand.parameters()]).norm())
        optimizer.step()
    assert not torch.isclose(norms[0], norms[1])
    logged = trainer.callback_metrics
    torch.testing.assert_close(logged["train/grad_norm"], torch.stack(norms).mean())
    torch.testing.assert_close(logged["train/grad_norm_max"], torch.stack(norms).max())
