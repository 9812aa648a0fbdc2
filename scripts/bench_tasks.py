"""End-to-end training speed of every rnnkit task against a plain PyTorch loop, in one run.

Each task trains under the trainer that ``scripts/train.py`` builds from the default configs
(:func:`rnnkit.utils.drivers.build_trainer` of ``configs/trainer/default.yaml``: rnnkit's own
``Trainer``, with ``configs/callbacks/default.yaml``, the monitor check and run guard
``train.py`` adds, the one-line-per-epoch console and the CSV logger), and a plain loop trains
a copy of the same model (same initial weights, same batches from the same collate, Adam, the
trainer's gradient clipping) with nothing else. Two figures per task:

- **step**: median steps/s of single training steps. The plain loop's step runs right after
  every task step, inside the same process (a callback), so both see the machine at the same
  moment; a task step is the time between two of those callbacks less the plain step: its
  batch, its hooks, its metrics, forward, backward, clipping, optimizer.
- **epoch**: training steps per second of whole ``trainer.fit`` calls over a few epochs with
  validation, sanity check, metrics, checkpoints and logging, against a plain loop over the
  same epochs that also computes the validation loss; whole fits alternate, A B A B, and the
  figure is the median.

Every duration is CPU time of this process by default (``--clock cpu``): on a machine shared
with other jobs, elapsed time mostly measures the other jobs; with one thread (OMP_NUM_THREADS=1)
and the data in the main process, the process's CPU time is the work of the step.
``--clock wall`` times elapsed seconds, for a quiet machine.

The forecasting row is the shape issue 20 measured darts and neuralforecast on: 81 short
series (seeded), a GRU of hidden 64, batch 32, window 12, a 6-step output. With the ``bench``
extra installed (``pip install -e .[bench]``) the same model trains under darts'
``BlockRNNModel`` and neuralforecast's ``GRU`` (both over torch's ``nn.GRU``, both trained by
Lightning) and their median step is timed the same way (a Lightning callback, imported only
there); without them the comparison is skipped with a message.

    OMP_NUM_THREADS=1 python scripts/bench_tasks.py --quick      # under a minute, one thread
    OMP_NUM_THREADS=1 python scripts/bench_tasks.py --json e2e.json --markdown e2e.md
    python scripts/bench_tasks.py --quick --batches 8 --no-libraries  # a smoke run, seconds
    python scripts/bench.py --tasks                               # the kernels, then this

The header names the rnnkit package measured: with an editable install of another checkout,
``PYTHONPATH=.`` measures this one.

Rows written by ``--json``: ``{task, backend, plain_step, task_step, step_ratio, plain_epoch,
task_epoch, epoch_ratio}`` in steps/s, plus ``{library, model, steps, step}`` rows for darts
and neuralforecast.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from rnnkit.engine import Callback, DataModule, TaskModule

#: the clock of every figure: ``time.process_time`` (CPU seconds of this process, what a
#: shared machine's load does not inflate) or ``time.perf_counter`` (wall, ``--clock wall``)
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
_clock = CLOCKS["cpu"]

#: Adam as ``configs/task/base/optimization.yaml`` sets it
OPTIMIZER = functools.partial(torch.optim.Adam, lr=3e-3)
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# the forecasting shape of issue 20
SERIES, SERIES_ROWS, WINDOW, HORIZON, HIDDEN, BATCH = 81, 60, 12, 6, 64, 32
TRAIN_ROWS = 42  # of each series, for darts and neuralforecast


@dataclass
class Case:
    """One task: its model, its task, its loaders and the plain loop's loss."""

    name: str
    backend: str
    make_model: Callable[[], nn.Module]
    make_task: Callable[[nn.Module], TaskModule]
    plain_loss: Callable[[nn.Module, tuple], Tensor]
    train_loader: Callable[[], DataLoader]
    val_loader: Callable[[], DataLoader]
    datamodule: DataModule | None = None  # the task's fit data when it needs one

    def fit(self, trainer, task: TaskModule) -> None:
        """``trainer.fit`` as ``train.py`` runs it (:func:`~rnnkit.utils.drivers.driven`)."""
        from rnnkit.utils.drivers import driven

        module, data = driven(trainer, task, self.datamodule)
        if data is not None:
            trainer.fit(module, datamodule=data)
        else:
            trainer.fit(
                module, train_dataloaders=self.train_loader(), val_dataloaders=self.val_loader()
            )


# ----------------------------------------------------------------------------------------------
# the five tasks


def _token_pairs(n: int, vocab: int, lo: int, hi: int, g: torch.Generator, per_step: bool):
    """``n`` examples ``(ids (T,), y)`` with ``T`` in ``[lo, hi]``; ``y`` per step or one label."""
    out = []
    for _ in range(n):
        T = int(torch.randint(lo, hi + 1, (1,), generator=g))
        x = torch.randint(1, vocab, (T,), generator=g)
        y = torch.randint(0, 17, (T,), generator=g) if per_step else torch.randint(0, 4, ())
        out.append((x, y))
    return out


def forecasting_case(backend: str, workdir: Path) -> Case:
    """81 seeded series of 60 rows (a seasonal random walk), one global GRU forecaster."""
    from rnnkit.cells import GRUCell
    from rnnkit.data import TimeSeriesDataModule
    from rnnkit.models import rnn_forecaster
    from rnnkit.tasks import ForecastingTask

    path = workdir / "series.csv"
    if not path.exists():
        rng = np.random.default_rng(0)
        rows = ["series,t,y"]
        for s in range(SERIES):
            t = np.arange(SERIES_ROWS)
            y = np.cumsum(rng.normal(size=SERIES_ROWS)) + 3 * np.sin(2 * np.pi * t / 12 + s)
            rows += [f"s{s},{i},{v:.5f}" for i, v in zip(t, y, strict=True)]
        path.write_text("\n".join(rows) + "\n")
    data = TimeSeriesDataModule(
        path=str(path),
        target_columns=["y"],
        series_column="series",
        window=WINDOW,
        horizon=HORIZON,
        batch_size=BATCH,
    )
    data.setup("fit")
    info = data.info

    def make_model() -> nn.Module:
        return rnn_forecaster(GRUCell, 0, 1, WINDOW, HORIZON, HIDDEN, backend=backend)

    def make_task(model: nn.Module) -> TaskModule:
        state = ForecastingTask.data_arguments(info)
        return ForecastingTask(
            model, OPTIMIZER, window=WINDOW, horizon=HORIZON, plot=False, **state
        )

    def plain_loss(model: nn.Module, batch: tuple) -> Tensor:
        x, _, y, *_ = batch
        return F.mse_loss(model(x, y, WINDOW), y[:, WINDOW:])

    return Case(
        "forecasting", backend, make_model, make_task, plain_loss,
        data.train_dataloader, data.val_dataloader, datamodule=data,
    )  # fmt: skip


def _loaders(train: list, val: list, collate) -> tuple[Callable, Callable]:
    def train_loader() -> DataLoader:
        return DataLoader(train, batch_size=BATCH, shuffle=True, collate_fn=collate)

    def val_loader() -> DataLoader:
        return DataLoader(val, batch_size=BATCH, collate_fn=collate)

    return train_loader, val_loader


def classification_case(backend: str, workdir: Path) -> Case:
    """Text classification: 2000 ids, embedding 64, GRU 64, 4 classes, 20-60 tokens."""
    from rnnkit.cells import GRUCell
    from rnnkit.data.collate import PadCollate
    from rnnkit.models import SequenceModel
    from rnnkit.tasks import ClassificationTask

    g = torch.Generator().manual_seed(1)
    train, val = (_token_pairs(n, 2000, 20, 60, g, False) for n in (2048, 512))

    def make_model() -> nn.Module:
        return SequenceModel(4, GRUCell, vocab_size=2000, embedding_dim=64, hidden_size=64,
                             backend=backend)  # fmt: skip

    def plain_loss(model: nn.Module, batch: tuple) -> Tensor:
        x, lengths, y = batch
        return F.cross_entropy(model(x, lengths), y)

    return Case(
        "classification", backend, make_model,
        lambda model: ClassificationTask(model, OPTIMIZER, num_classes=4), plain_loss,
        *_loaders(train, val, PadCollate()),
    )  # fmt: skip


def tagging_case(backend: str, workdir: Path) -> Case:
    """Tagging: 2000 ids, embedding 64, bidirectional GRU 64, 17 tags, 5-40 tokens, no CRF."""
    from rnnkit.cells import GRUCell
    from rnnkit.data.collate import IGNORE_INDEX, PadCollate
    from rnnkit.models import SequenceModel
    from rnnkit.tasks import TaggingTask

    g = torch.Generator().manual_seed(2)
    train, val = (_token_pairs(n, 2000, 5, 40, g, True) for n in (2048, 512))
    names = ["O"] + [f"{p}-T{i}" for i in range(8) for p in "BI"]

    def make_model() -> nn.Module:
        return SequenceModel(17, GRUCell, vocab_size=2000, embedding_dim=64, hidden_size=64,
                             bidirectional=True, backend=backend, pooling="none")  # fmt: skip

    def plain_loss(model: nn.Module, batch: tuple) -> Tensor:
        x, lengths, y = batch
        scores = model(x, lengths)
        return F.cross_entropy(scores.reshape(-1, 17), y.reshape(-1), ignore_index=IGNORE_INDEX)

    return Case(
        "tagging", backend, make_model,
        lambda model: TaggingTask(model, OPTIMIZER, num_tags=17, label_names=names),
        plain_loss, *_loaders(train, val, PadCollate(per_step_targets=True)),
    )  # fmt: skip


def seq2seq_case(backend: str, workdir: Path) -> Case:
    """Character transduction: 40 symbols, embedding 32, GRU 64 with attention, 3-12 steps."""
    from rnnkit.data.extended_vocab import ExtendedIds
    from rnnkit.data.pairs import PairCollate, PairTarget
    from rnnkit.models.seq2seq import build_seq2seq
    from rnnkit.tasks import Seq2SeqTask

    g = torch.Generator().manual_seed(3)

    def pairs(n: int) -> list[tuple[Tensor, PairTarget]]:
        out = []
        for _ in range(n):
            src = torch.randint(
                4, 40, (int(torch.randint(3, 13, (1,), generator=g)),), generator=g
            )
            tgt = torch.cat([torch.tensor([2]), src.flip(0), torch.tensor([3])])
            # every symbol is in the vocabulary: the copy numbering is the plain one
            out.append((src, PairTarget(tgt, ExtendedIds(src, tgt, ()))))
        return out

    train, val = pairs(2048), pairs(256)

    def make_model() -> nn.Module:
        return build_seq2seq(40, 40, embedding_size=32, hidden_size=64, backend=backend)

    def plain_loss(model: nn.Module, batch: tuple) -> Tensor:
        src, src_lengths, tgt, *_ = batch
        logits, _ = model(src, src_lengths, tgt[:, :-1])
        return F.cross_entropy(logits.reshape(-1, 40), tgt[:, 1:].reshape(-1), ignore_index=0)

    return Case(
        "seq2seq", backend, make_model,
        lambda model: Seq2SeqTask(model, OPTIMIZER, max_decode_length=16), plain_loss,
        *_loaders(train, val, PairCollate()),
    )  # fmt: skip


def language_model_case(backend: str, workdir: Path) -> Case:
    """Character LM: 60 symbols, embedding 32, GRU 64, chunks of 32 steps."""
    from rnnkit.cells import GRUCell
    from rnnkit.data.collate import PadCollate
    from rnnkit.models import LanguageModel
    from rnnkit.tasks import LanguageModelTask

    g = torch.Generator().manual_seed(4)
    text = torch.randint(1, 60, (33 * 2560,), generator=g).reshape(2560, 33)
    chunks = [(row[:-1], row[1:]) for row in text]
    train, val = chunks[:2048], chunks[2048:]

    def make_model() -> nn.Module:
        return LanguageModel(GRUCell, 60, 32, 64, backend=backend)

    def plain_loss(model: nn.Module, batch: tuple) -> Tensor:
        x, lengths, y = batch
        logits = model(x, lengths)[0]
        return F.cross_entropy(logits.transpose(1, 2), y, ignore_index=0)

    return Case(
        "language_model", backend, make_model,
        lambda model: LanguageModelTask(model, OPTIMIZER), plain_loss,
        *_loaders(train, val, PadCollate()),
    )  # fmt: skip


CASES = {
    "forecasting": forecasting_case,
    "classification": classification_case,
    "tagging": tagging_case,
    "seq2seq": seq2seq_case,
    "language_model": language_model_case,
}


# ----------------------------------------------------------------------------------------------
# the user's trainer, and the plain loop


def user_config(workdir: Path, epochs: int, task: TaskModule, batches: int | None = None):
    """``configs/train.yaml`` composed as ``train.py`` gets it, outputs in ``workdir``.

    The checkpoint and early-stopping callbacks select on ``task``'s monitored metric, as in
    ``train.py``; ``batches``: at most this many batches of each split an epoch. Hydra's
    runtime is set as in a run, so the config resolves fully (checkpoints store it).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from rnnkit.utils.config import register_resolvers

    register_resolvers()  # as importing rnnkit.train does
    limits = [] if batches is None else [f"+trainer.limit_train_batches={batches}",
                                         f"+trainer.limit_val_batches={batches}"]  # fmt: skip
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", return_hydra_config=True,
                      overrides=[f"paths.output_dir={workdir}", f"paths.log_dir={workdir}",
                                 f"hydra.runtime.output_dir={workdir}",
                                 f"trainer.max_epochs={epochs}", f"task.monitor={task.monitor}",
                                 f"task.monitor_mode={task.monitor_mode}", *limits])  # fmt: skip
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def user_trainer(cfg, task: TaskModule, callbacks: Iterable[Callback] = ()):
    """The trainer ``train.py`` builds from ``cfg`` (:func:`rnnkit.train._train`'s step 5):
    the config's callbacks (after a monitor check), the run guard, the one-line console, then
    ``callbacks``; the config's loggers."""
    from rnnkit import console
    from rnnkit.callbacks import MonitorCheck, RunGuard
    from rnnkit.train import instantiate_list
    from rnnkit.utils.drivers import build_trainer, uses_lightning

    run = [MonitorCheck(task.monitor), *instantiate_list(cfg.callbacks, "callback"),
           RunGuard(Path(cfg.paths.output_dir) / "checkpoints")]  # fmt: skip
    if not (uses_lightning(cfg.trainer) and cfg.trainer.get("enable_progress_bar", True)):
        run.append(console.EpochLines())
    loggers = instantiate_list(cfg.logger, "logger")
    trainer, _ = build_trainer(cfg.trainer, [*run, *callbacks], loggers, config=cfg)
    return trainer


class PlainLoop:
    """Adam, clipping as the trainer clips, nothing else: the floor a task loop is held to."""

    def __init__(self, case: Case, model: nn.Module, clip: float | None) -> None:
        self.case, self.model, self.clip = case, model, clip
        self.optimizer = OPTIMIZER(model.parameters())
        self.val_loss = float("nan")  # mean validation batch loss of the last epoch

    def step(self, batch: tuple) -> None:
        loss = self.case.plain_loss(self.model, batch)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()

    def fit(self, epochs: int, batches: int | None = None) -> int:
        """``epochs`` of training (at most ``batches`` an epoch), each followed by the
        validation loss; the steps taken."""
        steps = 0
        for _ in range(epochs):
            self.model.train()
            for batch in itertools.islice(self.case.train_loader(), batches):
                self.step(batch)
                steps += 1
            self.model.eval()
            with torch.no_grad():
                losses = [
                    float(self.case.plain_loss(self.model, b))
                    for b in itertools.islice(self.case.val_loader(), batches)
                ]
            self.val_loss = statistics.fmean(losses)
        return steps


class Interleave(Callback):
    """After every task training step, one plain step; both durations recorded."""

    def __init__(self, plain: PlainLoop, loader: DataLoader) -> None:
        self.plain, self.loader = plain, loader
        self.batches = iter(loader)
        self.task_s: list[float] = []
        self.plain_s: list[float] = []
        self.last: float | None = None

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx: int) -> None:
        now = _clock()
        if self.last is not None:
            self.task_s.append(now - self.last)
        try:
            batch = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        self.plain.step(batch)
        self.last = _clock()
        self.plain_s.append(self.last - now)

    def on_train_epoch_end(self, trainer, task) -> None:
        self.last = None  # the gap holds validation and checkpoints: the epoch figure's part


def _fresh(case: Case) -> tuple[nn.Module, nn.Module]:
    """The task's model and the plain loop's, with the same initial weights."""
    torch.manual_seed(0)
    model = case.make_model()
    plain = case.make_model()
    plain.load_state_dict(model.state_dict())
    return model, plain


def _rate(durations: list[float], skip: int) -> float:
    """Steps/s of the median of ``durations`` after the first ``skip`` (all when too few)."""
    return 1 / statistics.median(durations[skip:] if len(durations) > skip else durations)


def time_steps(
    case: Case, workdir: Path, epochs: int, skip: int, batches: int | None = None
) -> tuple[float, float]:
    """Median steps/s of the task's training step and the plain loop's, interleaved."""
    model, plain_model = _fresh(case)
    task = case.make_task(model)
    cfg = user_config(workdir / "steps", epochs, task, batches)
    timer = Interleave(PlainLoop(case, plain_model, cfg.trainer.gradient_clip_val),
                       case.train_loader())  # fmt: skip
    case.fit(user_trainer(cfg, task, [timer]), task)
    return _rate(timer.task_s, skip), _rate(timer.plain_s, skip)


def time_epochs(
    case: Case, workdir: Path, epochs: int, reps: int, batches: int | None = None
) -> tuple[float, float]:
    """Median training steps per second of whole fits (validation included), alternated."""
    task_rates, plain_rates = [], []
    for r in range(reps):
        for which in ("task", "plain") if r % 2 == 0 else ("plain", "task"):
            model, plain_model = _fresh(case)
            task = case.make_task(model)
            cfg = user_config(workdir / f"fit{r}", epochs, task, batches)
            if which == "task":
                trainer = user_trainer(cfg, task)
                start = _clock()
                case.fit(trainer, task)
                task_rates.append(trainer.global_step / (_clock() - start))
            else:
                loop = PlainLoop(case, plain_model, cfg.trainer.gradient_clip_val)
                start = _clock()
                steps = loop.fit(epochs, batches)
                plain_rates.append(steps / (_clock() - start))
    return statistics.median(task_rates), statistics.median(plain_rates)


# ----------------------------------------------------------------------------------------------
# darts and neuralforecast (the optional `bench` extra)


class StepTimer:
    """Durations between consecutive training-batch ends (one library step each).

    ``epoch_gaps``: also time the gap across an epoch end (neuralforecast's epoch is one step).
    A library's Lightning callback with these hooks: :func:`_lightning_timer`.
    """

    def __init__(self, epoch_gaps: bool = False) -> None:
        self.steps: list[float] = []
        self.last: float | None = None
        self.epoch_gaps = epoch_gaps

    def on_train_batch_end(self, *args, **kwargs) -> None:
        now = _clock()
        if self.last is not None:
            self.steps.append(now - self.last)
        self.last = now

    def on_train_epoch_end(self, *args, **kwargs) -> None:
        if not self.epoch_gaps:
            self.last = None


def _lightning_timer() -> type:
    """:class:`StepTimer` as a callback of ``pytorch_lightning``, the Lightning package darts and
    neuralforecast train with (imported here only: rnnkit's path has no Lightning)."""
    import pytorch_lightning

    class LightningStepTimer(StepTimer, pytorch_lightning.Callback):
        pass

    return LightningStepTimer


def _series_values(workdir: Path) -> list[np.ndarray]:
    """The forecasting case's series, their first ``TRAIN_ROWS`` rows each.

    About the task's training part (the split is the data module's); a median step does not
    depend on how many windows an epoch has.
    """
    rows = (workdir / "series.csv").read_text().splitlines()[1:]
    by: dict[str, list[float]] = {}
    for row in rows:
        name, _, value = row.split(",")
        by.setdefault(name, []).append(float(value))
    return [np.asarray(v[:TRAIN_ROWS], dtype=np.float32) for v in by.values()]


def bench_darts(workdir: Path, epochs: int, skip: int) -> dict | None:
    try:
        from darts import TimeSeries
        from darts.models import BlockRNNModel

        timer = _lightning_timer()()
    except ImportError as error:
        print(f"darts: skipped ({error}; pip install -e .[bench])", flush=True)
        return None
    series = [TimeSeries.from_values(v) for v in _series_values(workdir)]
    model = BlockRNNModel(
        input_chunk_length=WINDOW, output_chunk_length=HORIZON, model="GRU",
        hidden_dim=HIDDEN, n_rnn_layers=1, batch_size=BATCH, n_epochs=epochs,
        optimizer_kwargs={"lr": 3e-3}, random_state=0,
        pl_trainer_kwargs={"accelerator": "cpu", "callbacks": [timer],
                           "enable_progress_bar": False, "enable_model_summary": False},
    )  # fmt: skip
    model.fit(series, verbose=False)
    return dict(library="darts", model="BlockRNNModel GRU", steps=len(timer.steps),
                step=round(_rate(timer.steps, skip), 1))  # fmt: skip


def bench_neuralforecast(workdir: Path, steps: int, skip: int) -> dict | None:
    try:
        import pandas as pd
        from neuralforecast import NeuralForecast
        from neuralforecast.models import GRU

        Timer = _lightning_timer()
    except ImportError as error:
        print(f"neuralforecast: skipped ({error}; pip install -e .[bench])", flush=True)
        return None
    frames = [
        pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(len(v)), "y": v})
        for i, v in enumerate(_series_values(workdir))
    ]
    timer = Timer(epoch_gaps=True)
    model = GRU(  # a batch: BATCH windows sampled from BATCH series
        h=HORIZON, input_size=WINDOW, encoder_hidden_size=HIDDEN, encoder_n_layers=1,
        batch_size=BATCH, windows_batch_size=BATCH, max_steps=steps, learning_rate=3e-3,
        random_seed=0, accelerator="cpu", callbacks=[timer], enable_progress_bar=False,
        enable_model_summary=False, logger=False,
    )  # fmt: skip
    forecaster = NeuralForecast(models=[model], freq=1)
    forecaster.fit(pd.concat(frames))
    # NeuralForecast trains deep copies of its models: the copy's timer holds the steps
    (timer,) = (
        c for c in forecaster.models[0].trainer_kwargs["callbacks"] if isinstance(c, Timer)
    )
    return dict(library="neuralforecast", model="GRU", steps=len(timer.steps),
                step=round(_rate(timer.steps, skip), 1))  # fmt: skip


# ----------------------------------------------------------------------------------------------


def bench_tasks(args) -> list[dict]:
    """Every task (and backend) against the plain loop; darts and neuralforecast if present."""
    global _clock
    _clock = CLOCKS[args.clock]
    epochs = 1 if args.quick else 3
    skip = 5
    batches = getattr(args, "batches", None)  # scripts/bench.py's arguments have it too
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        workdir = Path(tmp)
        for name, backend in args.task_cases:
            case = CASES[name](backend, workdir)
            task_step, plain_step = time_steps(case, workdir, epochs, skip, batches)
            task_epoch, plain_epoch = time_epochs(case, workdir, epochs, args.fits, batches)
            row = dict(task=name, backend=backend,
                       plain_step=round(plain_step, 1), task_step=round(task_step, 1),
                       step_ratio=round(task_step / plain_step, 3),
                       plain_epoch=round(plain_epoch, 1), task_epoch=round(task_epoch, 1),
                       epoch_ratio=round(task_epoch / plain_epoch, 3))  # fmt: skip
            print(
                f"{name:<15}{backend:<7} step: task {task_step:7.1f}  plain {plain_step:7.1f} "
                f"steps/s  x{row['step_ratio']:.2f} | with epochs: task {task_epoch:7.1f}  "
                f"plain {plain_epoch:7.1f}  x{row['epoch_ratio']:.2f}",
                flush=True,
            )
            rows.append(row)
        if any(name == "forecasting" for name, _ in args.task_cases) and not args.no_libraries:
            CASES["forecasting"]("fused", workdir)  # writes the series if no row did
            for result in (
                bench_darts(workdir, epochs, skip),
                bench_neuralforecast(workdir, 64 * epochs, skip),
            ):
                if result is not None:
                    print(f"{result['library']:<22}step: {result['step']:7.1f} steps/s  "
                          f"[{result['model']}]", flush=True)  # fmt: skip
                    rows.append(result)
    return rows


def markdown(rows: list[dict]) -> str:
    """The task rows as one markdown table, then the libraries' step rates."""
    lines = [
        "| task | backend | plain step/s | task step/s | ratio | plain, with epochs | task, "
        "with epochs | ratio |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        if "task" in r:
            lines.append(
                f"| {r['task']} | {r['backend']} | {r['plain_step']} | {r['task_step']} | "
                f"{r['step_ratio']:.2f} | {r['plain_epoch']} | {r['task_epoch']} | "
                f"{r['epoch_ratio']:.2f} |"
            )
    for r in rows:
        if "library" in r:
            lines.append(f"\n{r['library']} ({r['model']}): {r['step']} steps/s (median step).")
    return "\n".join(lines)


DEFAULT_CASES = [
    ("forecasting", "fused"), ("forecasting", "auto"), ("classification", "auto"),
    ("tagging", "auto"), ("seq2seq", "auto"), ("language_model", "auto"),
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task-cases", nargs="*", type=lambda s: tuple(s.split(":")), default=DEFAULT_CASES,
        help="task:backend pairs (default: every task, forecasting with fused and auto)",
    )  # fmt: skip
    parser.add_argument("--fits", type=int, default=4, help="alternated whole fits per side")
    parser.add_argument("--no-libraries", action="store_true", help="skip darts/neuralforecast")
    parser.add_argument(
        "--batches", type=int, default=None,
        help="at most this many batches of each split an epoch, both loops (a smoke run)",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one epoch per fit, 2 fits a side")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument(
        "--clock", choices=list(CLOCKS), default="cpu",
        help="cpu: CPU time of this process (robust on a loaded machine); wall: elapsed time",
    )  # fmt: skip
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--markdown", help="also write the table as markdown to this file")
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.fits = min(args.fits, 2)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning", "pytorch_lightning"):  # darts' and neuralforecast's notices
        logging.getLogger(name).setLevel(logging.ERROR)
    import rnnkit  # which checkout is measured: an editable install may point at another one

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), rnnkit's Trainer "
          f"({Path(rnnkit.__file__).parent}), {args.clock} clock; steps/s, medians",
          flush=True)  # fmt: skip
    rows = bench_tasks(args)
    if args.markdown:
        Path(args.markdown).write_text(markdown(rows) + "\n")
    if args.json:
        meta = dict(torch=torch.__version__, threads=torch.get_num_threads(), quick=args.quick,
                    clock=args.clock)  # fmt: skip
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
