"""``StageMetrics``: the one way a task keeps its metrics, per stage, logged once per epoch.

A task declares its metric objects (:mod:`rnnkit.metrics`) once, by stage (``train``, ``val``,
``test``) and name; each step calls :meth:`StageMetrics.update`, which only updates the object
(its states, on the device). At the end of the stage's epoch the task calls
:meth:`StageMetrics.log_epoch`: every metric updated in the epoch computes its value (reduced
across processes by the metric itself), is logged as ``{stage}/{name}`` with that finished
0-d tensor, and is reset for the next epoch (or validation run). That is what makes logging
cheap: a ``self.log`` call (Lightning walks its result collection: device moves, metadata
checks) cost more than the whole forward pass of a small model when it ran on every step
(``scripts/bench_tasks.py``); here it runs once per metric and epoch.

Nothing here reads a value back to the host during a step: updates stay on the device, and the
metrics make no per-update argument checks that would need a host sync (the loss computed
before every update already rejects bad targets).

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

from torch import Tensor, nn

from rnnkit.metrics import Max, Metric, Min

STAGES = ("train", "val", "test")


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
            self.best = Max() if mode == "max" else Min()
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

    def update(self, stage: str, name: str, *args: Any, **kw: Any) -> None:
        """Update ``{stage}/{name}`` with ``args``/``kw`` (nothing else: see :meth:`log_epoch`)."""
        key = f"{stage}/{name}"
        if key not in self._known:
            self[key].update(*args, **kw)

    def on_train_start(self) -> None:
        """Forget any validation batch seen before training (the sanity check's epoch end
        already reset them, but a sanity check never counts, however it ended)."""
        for name in self.names("val"):
            self[f"val/{name}"].reset()

    def log_epoch(self, module: Any, stage: str) -> None:
        """Log the epoch values of ``stage`` with ``module.log`` and reset its metrics.

        Logged: every metric updated this epoch (a known baseline: its value of the first full
        epoch), the constants of ``stage``, and for ``val`` the best value so far.
        """
        full_epoch = module._trainer is None or not module.trainer.sanity_checking
        for name in self.names(stage):
            key, metric = f"{stage}/{name}", self[f"{stage}/{name}"]
            if key in self._known:
                value = self._known[key]
            elif metric.update_count:  # some metrics skip some batches, or a whole stage
                value = metric.compute()
                metric.reset()
                if full_epoch and key in self.baselines:
                    self._known[key] = value
            else:
                continue
            show = name in self.prog_bar and (name == "loss" or stage != "train")
            _log(module, key, value, prog_bar=show)
            if stage == "val" and name == self.best_name and full_epoch:
                self.best.update(value)
                _log(module, f"val/{name}_best", self.best.compute(), prog_bar=True)
        for key, value in self.constants.items():
            if key.startswith(f"{stage}/"):
                _log(module, key, float(value))


def _log(module: Any, key: str, value: Tensor | float, prog_bar: bool = False) -> None:
    # after a loop over several loaders Lightning would append "/dataloader_idx_<i>" to the key
    module.log(key, value, prog_bar=prog_bar, add_dataloader_idx=False)
