"""``StageMetrics``: the one way a task keeps its metrics, per stage, logged once per epoch.

A task declares its torchmetrics objects once, by stage (``train``, ``val``, ``test``) and name;
each step calls :meth:`StageMetrics.update`, which updates the object. The first update since
the object was last reset also hands it to Lightning's ``self.log`` (``on_epoch=True``), which
keeps the reference, computes the value logged as ``{stage}/{name}`` (reduced across
processes) from every update of the epoch, and resets the object when the epoch (or the
validation run) ends; the next update is a first one again. Only the first: a ``self.log``
call walks Lightning's result collection (device moves, metadata checks) and cost more than
the whole forward pass of a small model when it ran on every step (``scripts/bench_tasks.py``).

Nothing here reads a value back to the host during a step: updates stay on the device, and
tasks build their metrics without the per-update argument checks (``validate_args=False``,
``nan_strategy="disable"``), each of which would cost a host sync (the loss computed before
every update already rejects bad targets).

Three kinds of epoch values besides the updated ones:

- ``best``: the best epoch value of one validation metric so far, logged as
  ``val/{name}_best`` (the sanity-check batches never count; saved in checkpoints, so a resumed
  run keeps it);
- ``baselines``: metrics that do not depend on the model (a persistence forecast, say); their
  value on a split is computed in the first full epoch and re-logged afterwards, so
  :meth:`StageMetrics.wants` tells the task to skip their work on every later step;
- ``constants``: baseline values the data already knows (a unigram perplexity), logged at the
  end of their stage's epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import lightning as L
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, Metric, MinMetric

STAGES = ("train", "val", "test")


def mean_metric() -> MeanMetric:
    """A (weighted) running mean without the NaN check that syncs on every update."""
    return MeanMetric(nan_strategy="disable")


def scored_stages(train_metrics: bool) -> tuple[str, ...]:
    """The stages whose batches are scored: validation and test, and training on request.

    Scoring training batches is work (decoding, host syncs) that nobody reads by default;
    ``train/loss`` is always logged.
    """
    return STAGES if train_metrics else ("val", "test")


def per_stage(
    factories: Mapping[str, Callable[[], Metric]], stages: Iterable[str] = STAGES
) -> dict[str, dict[str, Metric]]:
    """``{stage: {name: factory()}}``: the same metrics, a fresh object for every stage."""
    return {stage: {name: make() for name, make in factories.items()} for stage in stages}


def merge(*groups: Mapping[str, Mapping[str, Metric]]) -> dict[str, dict[str, Metric]]:
    """Several ``{stage: {name: metric}}`` mappings as one (later names win)."""
    out: dict[str, dict[str, Metric]] = {}
    for group in groups:
        for stage, metrics in group.items():
            out.setdefault(stage, {}).update(metrics)
    return out


class StageMetrics(nn.Module):
    """Metrics keyed ``{stage}/{name}``; see the module docstring.

    Args:
        metrics: ``{stage: {name: Metric}}``, e.g. from :func:`per_stage`.
        best: ``(name, "max" | "min")``: track ``val/{name}_best``; ``None``: no best value.
        prog_bar: names shown in the progress bar outside training (``loss`` always is).
        baselines: ``{stage}/{name}`` keys whose value does not depend on the model.
        constants: ``{stage}/{name}`` keys and values logged at the end of each such epoch.
    """

    def __init__(
        self,
        metrics: Mapping[str, Mapping[str, Metric]],
        best: tuple[str, str] | None = None,
        prog_bar: Collection[str] = (),
        baselines: Collection[str] = (),
        constants: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        # flat, keyed "<stage>_<name>": a ModuleDict key may not be "train" (nn.Module.train)
        self.by_key = nn.ModuleDict(
            {f"{stage}_{name}": m for stage, group in metrics.items() for name, m in group.items()}
        )
        self._names = {stage: list(group) for stage, group in metrics.items()}
        self.prog_bar = {"loss", *prog_bar}
        unknown = [key for key in baselines if key not in self]
        if unknown:
            raise ValueError(f"StageMetrics: baselines {unknown} are not among the metrics")
        self.baselines = set(baselines)
        self.constants = dict(constants or {})
        self._known: dict[str, Tensor] = {}  # baseline values of finished full epochs
        self.best_name: str | None = None
        if best is not None:
            name, mode = best
            if mode not in ("max", "min") or f"val/{name}" not in self:
                raise ValueError(f"StageMetrics: best must name a val metric and max|min: {best}")
            self.best_name = name
            self.best = MaxMetric() if mode == "max" else MinMetric()
            self.best.persistent(True)  # in every checkpoint: a resumed run keeps its best

    def __contains__(self, key: str) -> bool:
        stage, _, name = key.partition("/")
        return name in self._names.get(stage, ())

    def __getitem__(self, key: str) -> Metric:
        """The metric of ``{stage}/{name}``."""
        if key not in self:
            raise KeyError(f"StageMetrics: no metric {key!r}")
        stage, _, name = key.partition("/")
        return self.by_key[f"{stage}_{name}"]

    def names(self, stage: str) -> list[str]:
        """The metric names of ``stage``, in declaration order."""
        return list(self._names.get(stage, ()))

    def wants(self, stage: str, name: str) -> bool:
        """Whether this step should update ``{stage}/{name}`` (a known baseline needs no work)."""
        key = f"{stage}/{name}"
        return key in self and key not in self._known

    def update(
        self, module: L.LightningModule, stage: str, name: str, *args: Any, batch_size: int, **kw
    ) -> None:
        """Update ``{stage}/{name}`` with ``args``/``kw``; log it on its epoch's first update.

        ``batch_size`` spares Lightning guessing it from the batch (a metric object reduces
        itself over its updates).
        """
        key = f"{stage}/{name}"
        if key in self._known:
            return
        metric = self[key]
        first = metric.update_count == 0  # new epoch: Lightning reset what it was handed
        metric.update(*args, **kw)
        if not first:
            return
        module.log(
            key,
            metric,
            on_step=False,
            on_epoch=True,
            prog_bar=name in self.prog_bar and (name == "loss" or stage != "train"),
            batch_size=batch_size,
            add_dataloader_idx=False,
        )

    def on_train_start(self) -> None:
        """Forget the sanity-check batches (the best value never saw them)."""
        for name in self.names("val"):
            self[f"val/{name}"].reset()

    def on_epoch_end(self, module: L.LightningModule, stage: str) -> None:
        """Log the best value (``val``), known baselines and constants of ``stage``'s epoch."""
        full_epoch = module._trainer is None or not module.trainer.sanity_checking
        for key in sorted(k for k in self.baselines if k.startswith(f"{stage}/")):
            if key in self._known:
                module.log(key, self._known[key], add_dataloader_idx=False)
            elif full_epoch and self[key].update_count:
                self._known[key] = self[key].compute().detach().clone()
        for key, value in self.constants.items():
            if key.startswith(f"{stage}/"):
                module.log(key, float(value), add_dataloader_idx=False)
        if stage == "val" and self.best_name is not None:
            metric = self[f"val/{self.best_name}"]
            if full_epoch and metric.update_count:  # some val metrics skip some batches
                self.best(metric.compute())
                best = self.best.compute()
                module.log(f"val/{self.best_name}_best", best, sync_dist=True, prog_bar=True)
