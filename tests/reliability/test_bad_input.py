# ruff: noqa: E501 (the catalogue table keeps one case per line)
"""The bad-input catalogue: every mistake fails with the right error type and a message that
names the file, line or key and says what was expected.

``CASES`` is the catalogue (id -> how to make the mistake, expected type, expected message);
``test_scripts_print_one_line`` checks that ``scripts/train.py`` turns such errors into one line
and exit status 2, leaving no output that looks like a finished run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from reliability_helpers import QUICK, ToyTask, compose, script

from rnnkit import errors as E
from rnnkit.cli import translate
from rnnkit.engine.lightning import AtomicCheckpointIO
from rnnkit.utils.checkpointing import load_checkpoint, resolve_ckpt_path


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# --- data ---------------------------------------------------------------------------------------
def csv_module(tmp: Path, text: str, **kwargs):
    from rnnkit.data import CSVSequenceDataModule

    kwargs = {"label_column": "label", "val_fraction": 0.25, "test_fraction": 0.25, **kwargs}
    dm = CSVSequenceDataModule(train_path=write(tmp / "seqs.csv", text), **kwargs)
    return lambda: dm.setup("fit")


GOOD_ROWS = "a,b,label\n" + "".join(f"{i},{i + 1},{'xy'[i % 2]}\n" for i in range(8))


def missing_file(tmp):
    from rnnkit.data import CSVSequenceDataModule

    dm = CSVSequenceDataModule(train_path=str(tmp / "nope.csv"), label_column="label")
    return lambda: dm.setup("fit")


def empty_file(tmp):
    return csv_module(tmp, "")


def csv_missing_column(tmp):
    return csv_module(tmp, GOOD_ROWS, label_column="target")


def csv_non_numeric(tmp):
    return csv_module(tmp, GOOD_ROWS.replace("3,4,y", "3,four,y"))


def csv_nan(tmp):
    return csv_module(tmp, GOOD_ROWS.replace("3,4,y", "3,nan,y"))


def csv_inf(tmp):
    return csv_module(tmp, GOOD_ROWS.replace("3,4,y", "inf,4,y"))


def csv_short_row(tmp):
    return csv_module(tmp, GOOD_ROWS.replace("3,4,y", "3,y"))


def csv_label_changes_in_sequence(tmp):
    text = "id,a,label\ns1,1,x\ns1,2,y\n"
    return csv_module(tmp, text, sequence_column="id")


def unseen_label_at_test(tmp):
    from rnnkit.data import CSVSequenceDataModule

    train = write(tmp / "train.csv", GOOD_ROWS)
    test = write(tmp / "test.csv", "a,b,label\n1,2,x\n5,6,z\n")
    dm = CSVSequenceDataModule(
        train_path=train, test_path=test, label_column="label", val_fraction=0.25
    )
    return lambda: dm.setup("fit")


def sequence_too_long(tmp):
    # one row per sequence, 2 features cut into steps of 1: every sequence has 2 steps
    return csv_module(tmp, GOOD_ROWS, step_size=1, max_length=1)


def zero_length_text(tmp):
    from rnnkit.data import TextClassificationDataModule

    text = "pos\tgood film\nneg\t   \n"
    dm = TextClassificationDataModule(train_path=write(tmp / "reviews.tsv", text))
    return lambda: dm.setup("fit")


def zero_length_batch(tmp):
    from rnnkit.cells import GRUCell
    from rnnkit.layers import Recurrent

    layer = Recurrent(GRUCell(3, 4))
    return lambda: layer(torch.zeros(2, 0, 3))


def text_without_tab(tmp):
    from rnnkit.data.readers import read_text_lines

    path = write(tmp / "reviews.tsv", "pos\tgood\nbad film\n")
    return lambda: read_text_lines(path)


def conll_wrong_fields(tmp):
    from rnnkit.data.tagged_files import read_conll

    path = write(tmp / "ner.conll", "John\tB-PER\nlives\n")  # the tag column is missing
    return lambda: read_conll(path)


def conll_bad_tag(tmp):
    from rnnkit.data.tagged_files import read_conll

    path = write(tmp / "ner.conll", "John\tPER\n")
    return lambda: read_conll(path, scheme="bio")


def pair_without_tab(tmp):
    from rnnkit.data.pairs import read_pairs

    path = write(tmp / "pairs.tsv", "abc\tcba\nabcd dcba\n")
    return lambda: read_pairs(path)


def series_missing_column(tmp):
    from rnnkit.data.series import Layout, read_series

    path = write(tmp / "series.csv", "t,y\n0,1.0\n1,2.0\n")
    return lambda: read_series([(path, None)], Layout(target_columns=["load"]))


def series_nan(tmp):
    from rnnkit.data.series import Layout, read_series

    path = write(tmp / "series.csv", "t,y\n0,1.0\n1,NaN\n")
    return lambda: read_series([(path, None)], Layout(target_columns=["y"]))


def horizon_longer_than_series(tmp):
    from rnnkit.data.series import TimeSeriesDataModule

    path = write(tmp / "series.csv", "y\n" + "".join(f"{i}.0\n" for i in range(6)))
    dm = TimeSeriesDataModule(path=path, target_columns=["y"], window=2, horizon=8)
    return lambda: dm.setup("fit")


def negative_batch_size(tmp):
    from rnnkit.data import CSVSequenceDataModule

    return lambda: CSVSequenceDataModule(train_path="x.csv", batch_size=-1)


def zero_window(tmp):
    from rnnkit.data.series import TimeSeriesDataModule

    return lambda: TimeSeriesDataModule(path="x.csv", window=0)


# --- configuration (composed as scripts/train.py composes it) -----------------------------------
def composed(overrides: list[str], tmp: Path, instantiate: str | None = None):
    """Compose (and optionally instantiate a group); Hydra's error goes through the handler."""

    def run():
        try:
            cfg = compose([*QUICK, *overrides], tmp)
            if instantiate == "check":  # what train() checks before building anything
                from rnnkit.utils.preflight import check_train_config

                check_train_config(cfg)
            elif instantiate:
                from rnnkit.utils.targets import instantiate as build

                build(cfg[instantiate])
        except E.RnnkitError:
            raise
        except Exception as exc:
            error = translate(exc)
            if error is None:
                raise
            raise error from exc

    return run


def config_typo(tmp):
    return composed(["model.hiden_size=32"], tmp)


def config_typo_appended(tmp):
    # `+` adds the key, so composition passes; the check of the model's arguments names it
    return composed(["+model.hiden_size=32"], tmp, instantiate="check")


def unknown_group_option(tmp):
    return composed(["trainer=gpux"], tmp)


def zero_hidden_size(tmp):
    return composed(
        ["model.hidden_size=0", "model.input_size=8", "model.vocab_size=null"]
        + ["model.pad_index=null", "model.output_size=10", "model.pooling=last"],
        tmp,
        instantiate="model",
    )


def narx_zero_delays(tmp):
    return composed(
        ["model=narx", "model.cell.input_delays=0", "model.input_size=8"]
        + ["model.vocab_size=null", "model.pad_index=null", "model.output_size=10"]
        + ["model.pooling=last"],
        tmp,
        instantiate="model",
    )


def gpu_without_gpu(tmp, monkeypatch):
    from lightning.pytorch.accelerators import CUDAAccelerator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: False))
    from rnnkit.utils.preflight import check_trainer

    return lambda: check_trainer(compose([*QUICK, "trainer=gpu"], tmp).trainer)


# --- checkpoints --------------------------------------------------------------------------------
def saved_checkpoint(tmp: Path) -> Path:
    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        plugins=[AtomicCheckpointIO(config={"model": {"hidden_size": 4}})],
    )
    from reliability_helpers import ToyData

    trainer.fit(ToyTask(hidden_size=4), ToyData(n=8), ckpt_path=None)
    path = tmp / "run.ckpt"
    trainer.save_checkpoint(path)
    return path


def ckpt_truncated(tmp):
    path = saved_checkpoint(tmp)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return lambda: load_checkpoint(path)


def ckpt_not_a_checkpoint(tmp):
    path = tmp / "notes.ckpt"
    path.write_text("these are my notes, not weights\n")
    return lambda: load_checkpoint(path)


def ckpt_empty(tmp):
    path = tmp / "empty.ckpt"
    path.write_bytes(b"")
    return lambda: load_checkpoint(path)


def ckpt_pickled_object(tmp):
    path = tmp / "module.ckpt"
    torch.save({"state_dict": {}, "model": torch.nn.Linear(2, 2)}, path)
    return lambda: load_checkpoint(path)


def ckpt_without_state_dict(tmp):
    path = tmp / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    return lambda: load_checkpoint(path)


def ckpt_other_model(tmp):
    path = saved_checkpoint(tmp)
    io = AtomicCheckpointIO(config={"model": {"hidden_size": 8}})
    return lambda: io.load_checkpoint(path)


def ckpt_path_missing(tmp):
    return lambda: resolve_ckpt_path(str(tmp / "runs" / "last.ckpt"), tmp)


def weights_other_shape(tmp):
    from rnnkit.utils.checkpointing import check_state_dict_matches

    state = ToyTask(hidden_size=4).state_dict()
    return lambda: check_state_dict_matches(state, ToyTask(hidden_size=8), path="old.ckpt")


def text_csv_short_record(tmp):
    from rnnkit.data import TextClassificationDataModule

    path = write(tmp / "reviews.csv", '"good\nfilm",1\n"bad"\n')
    dm = TextClassificationDataModule(train_path=path, label_column=1, text_column=0)
    return lambda: dm.setup("fit")


def ts_bad_value(tmp):
    from rnnkit.data.series_files import read_ts_series

    path = write(tmp / "s.ts", "@problemName s\n@classLabel true a b\n@data\n1,2,3:a\n1,x,3:b\n")
    return lambda: read_ts_series(path, regression=False)


def ts_regression_as_classes(tmp):
    from rnnkit.data.series_files import read_ts_series

    path = write(tmp / "r.ts", "@problemName r\n@targetLabel true\n@data\n1,2,3:0.5\n")
    return lambda: read_ts_series(path, regression=False)


def npz_pickled_objects(tmp):
    import numpy as np

    from rnnkit.data.series_files import read_npz_series

    np.savez(tmp / "obj.npz", X=np.array([{"a": 1}], dtype=object), y=np.array([1]))
    return lambda: read_npz_series(tmp / "obj.npz", "train", regression=False)


def wide_row_does_not_divide(tmp):
    return csv_module(
        tmp,
        GOOD_ROWS.replace("a,b,", "a,b,c,").replace(",x\n", ",0,x\n").replace(",y\n", ",0,y\n"),
        step_size=2,
    )


def monitor_mode_unknown(tmp):
    from rnnkit.tasks import ClassificationTask

    return lambda: ClassificationTask(model=None, optimizer=None, num_classes=2, monitor_mode="up")


def select_linear_unknown(tmp):
    import functools

    from rnnkit.cells import NARXCell
    from rnnkit.models.forecaster import narx_forecaster
    from rnnkit.tasks import ForecastingTask

    model = narx_forecaster(functools.partial(NARXCell, input_delays=1, output_delays=1), 0, 1, 4)
    return lambda: ForecastingTask(model, optimizer=None, select_linear="aic")


# id: (maker, error type, message pattern)
CASES = {
    "missing_file": (missing_file, E.DataFileNotFoundError, r"nope\.csv: data file not found \(looked for /.*nope\.csv\)"),
    "empty_file": (empty_file, E.EmptyDataError, r"seqs\.csv: file is empty"),
    "csv_missing_column": (csv_missing_column, E.DataFormatError, r"seqs\.csv: missing column 'target' \(header has \['a', 'b', 'label'\]\)"),
    "csv_non_numeric": (csv_non_numeric, E.DataFormatError, r"seqs\.csv:5: column 'b' is not a number: 'four'"),
    "csv_nan": (csv_nan, E.NonFiniteValueError, r"seqs\.csv:5: column 'b' is nan \(NaN/inf are not allowed\)"),
    "csv_inf": (csv_inf, E.NonFiniteValueError, r"seqs\.csv:5: column 'a' is inf \(NaN/inf are not allowed\)"),
    "csv_short_row": (csv_short_row, E.DataFormatError, r"seqs\.csv:5: expected 3 columns, got 2"),
    "csv_label_changes": (csv_label_changes_in_sequence, E.DataFormatError, r"seqs\.csv:3: sequence 's1' changes label from 'x' to 'y'"),
    "unseen_label_at_test": (unseen_label_at_test, E.UnknownLabelError, r"test\.csv:3: label 'z' was not seen in the training split \(known labels: \['x', 'y'\]\)"),
    "sequence_too_long": (sequence_too_long, E.SequenceLengthError, r"seqs\.csv:\d+: sequence of length 2 is longer than max_length=1"),
    "zero_length_text": (zero_length_text, E.SequenceLengthError, r"reviews\.tsv:2: the text is empty"),
    "zero_length_batch": (zero_length_batch, ValueError, r"Recurrent\(GRUCell\): x has zero time steps \(shape \(2, 0, 3\)\)"),
    "text_without_tab": (text_without_tab, E.DataFormatError, r"reviews\.tsv:2: expected 'label<TAB>text', found no tab"),
    "conll_wrong_fields": (conll_wrong_fields, E.DataFormatError, r"ner\.conll:2: expected at least 2 fields \(token<TAB>...<TAB>tag\), got 1"),
    "conll_bad_tag": (conll_bad_tag, E.DataFormatError, r"ner\.conll:1: tag 'PER' is not a BIO tag \(expected 'O' or one of B/I"),
    "pair_without_tab": (pair_without_tab, E.DataFormatError, r"pairs\.tsv:2: expected 'source<TAB>target', found no tab"),
    "series_missing_column": (series_missing_column, E.DataFormatError, r"series\.csv:1: no column 'load' in the header \(columns are \['t', 'y'\]\)"),
    "series_nan": (series_nan, E.DataFormatError, r"series\.csv:3: column 'y' has a missing value \(an empty, NA or NaN cell\); set data\.missing=interpolate"),
    "horizon_longer_than_series": (horizon_longer_than_series, E.SequenceLengthError, r"series\.csv:7: series 'series': the test split has 1 rows, fewer than horizon=8"),
    "negative_batch_size": (negative_batch_size, E.ConfigError, r"batch_size must be >= 1, got -1"),
    "zero_window": (zero_window, E.ConfigError, r"data\.window: expected a positive integer, got 0"),
    "config_typo": (config_typo, E.UnknownConfigKeyError, r"^config key 'model\.hiden_size' does not exist; did you mean 'model\.hidden_size'\?$"),
    "config_typo_appended": (config_typo_appended, E.UnknownConfigKeyError, r"config key 'model\.hiden_size' does not exist .*; did you mean 'model\.hidden_size'\?"),
    "unknown_group_option": (unknown_group_option, E.ConfigError, r"config option 'trainer=gpux' does not exist; did you mean 'trainer=gpu'\?"),
    "zero_hidden_size": (zero_hidden_size, E.ConfigError, r"invalid config \(model\): hidden_size must be a positive integer, got 0"),
    "narx_zero_delays": (narx_zero_delays, E.ConfigError, r"invalid config \(model\): input_delays must be a positive integer, got 0"),
    "gpu_without_gpu": (gpu_without_gpu, E.AcceleratorUnavailableError, r"trainer asks for a GPU \(trainer=gpu.*\), but this machine has 0 usable CUDA GPU\(s\).*use trainer=cpu"),
    "ckpt_truncated": (ckpt_truncated, E.CheckpointError, r"run\.ckpt: not a checkpoint or truncated \(\d+ bytes"),
    "ckpt_not_a_checkpoint": (ckpt_not_a_checkpoint, E.CheckpointError, r"notes\.ckpt: not a checkpoint or truncated .*expected a \.ckpt"),
    "ckpt_empty": (ckpt_empty, E.CheckpointError, r"empty\.ckpt: checkpoint file is empty \(0 bytes\)"),
    "ckpt_pickled_object": (ckpt_pickled_object, E.CheckpointError, r"module\.ckpt: cannot be loaded with weights_only=True: it holds a pickled torch\.nn\.modules\.linear\.Linear; expected plain tensors"),
    "ckpt_without_state_dict": (ckpt_without_state_dict, E.CheckpointError, r"weights\.pt: not a Lightning checkpoint: expected a dict with a 'state_dict' key"),
    "ckpt_other_model": (ckpt_other_model, E.CheckpointMismatchError, r"run\.ckpt: checkpoint was written by a different model configuration: model\.hidden_size is 4 in the checkpoint but 8 in this run"),
    "ckpt_path_missing": (ckpt_path_missing, E.CheckpointError, r"ckpt_path=.*last\.ckpt: checkpoint file not found \(expected a \.ckpt file, or 'last'"),
    "weights_other_shape": (weights_other_shape, E.CheckpointMismatchError, r"old\.ckpt: .*'net\.0\.weight' has shape \(4, 4\) in the checkpoint, \(8, 4\) here"),
    "text_csv_short_record": (text_csv_short_record, E.DataFormatError, r"reviews\.csv:3: expected 2 fields, got 1"),
    "ts_bad_value": (ts_bad_value, E.DataFormatError, r"s\.ts:5: a value is not a number"),
    "ts_regression_as_classes": (ts_regression_as_classes, E.DataFormatError, r"r\.ts: a regression file \(@targetLabel true\); set data\.regression=true and task=regression"),
    "npz_pickled_objects": (npz_pickled_objects, E.DataError, r"obj\.npz: not a readable \.npz of numeric arrays .*no Python objects"),
    "wide_row_does_not_divide": (wide_row_does_not_divide, E.DataFormatError, r"seqs\.csv:2: 3 feature cells do not split into steps of step_size=2 \(stride 2\); set data\.pad_last_step=true"),
    "monitor_mode_unknown": (monitor_mode_unknown, E.ConfigError, r"task\.monitor_mode must be 'min' or 'max', got 'up'"),
    "select_linear_unknown": (select_linear_unknown, E.ConfigError, r"^task\.select_linear: expected null or origin_backtest, got 'aic'$"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, monkeypatch):
    maker, error_type, pattern = CASES[case]
    if case == "gpu_without_gpu":
        action = maker(tmp_path, monkeypatch)
    else:
        action = maker(tmp_path)
    with pytest.raises(error_type) as info:
        action()
    assert type(info.value) is error_type  # the exact kind, not a parent class
    message = str(info.value)
    assert "\n" not in message.strip(), message  # one line
    assert re.search(pattern, message), message


def test_catalogue_is_large_enough():
    assert len(CASES) >= 20


def test_every_data_error_is_a_value_error():
    for cls in (E.DataFormatError, E.EmptyDataError, E.UnknownLabelError, E.CheckpointError):
        assert issubclass(cls, ValueError) and issubclass(cls, E.RnnkitError)
    assert issubclass(E.DataFileNotFoundError, FileNotFoundError)
    assert issubclass(E.NonFiniteLossError, FloatingPointError)


# --- the scripts: one line, exit status 2, nothing that looks finished ---------------------------
SCRIPT_CASES = {
    "missing data file": (
        ["data.train_path=/nonexistent/digits.csv"],
        r"^error: /nonexistent/digits\.csv: data file not found \(looked for /nonexistent/digits\.csv\)$",
    ),
    "config typo": (
        ["model.hiden_size=32"],
        r"^error: config key 'model\.hiden_size' does not exist; did you mean 'model\.hidden_size'\?$",
    ),
    "gpu without gpu": (
        ["trainer=gpu"],
        r"^error: trainer asks for a GPU .* use trainer=cpu, or trainer\.accelerator=auto$",
    ),
    "zero size": (
        ["model.hidden_size=0"],
        r"^error: invalid config \(model\): hidden_size must be a positive integer, got 0$",
    ),
    # reliability round 2: checked before anything is built, one line, exit status 2
    "bool as no": (["model.bidirectional=no"], r"^error: config key 'model\.bidirectional' is 'no', expected true or false$"),
    "seed text": (["seed=abc"], r"^error: config key 'seed' is 'abc', expected an integer$"),
    "max_epochs text": (["trainer.max_epochs=abc"], r"^error: config key 'trainer\.max_epochs' is 'abc', expected an integer or null$"),
    "max_epochs zero": (["trainer.max_epochs=0"], r"^error: config key 'trainer\.max_epochs' is 0, expected a positive number of epochs"),
    "lr negative": (["task.optimizer.lr=-1"], r"^error: config key 'task\.optimizer' is invalid: Invalid learning rate: -1"),
    "run dir cannot be made": (["hydra.run.dir=/proc/rnnkit_run"], r"^error: /proc/rnnkit_run: No such file or directory \(check the path in the config\)$"),
}  # fmt: skip


def run_scripts(tmp_path, names):
    procs = {}
    for i, name in enumerate(names):
        overrides = SCRIPT_CASES[name][0]
        run_dir = tmp_path / f"run{i}"
        given = [o for o in overrides if o.startswith("hydra.run.dir=")]
        if given:
            run_dir = Path(given[0].split("=", 1)[1])
        # no GPU for the child whatever this machine has: `trainer=gpu` must fail everywhere
        procs[name] = (
            run_dir,
            script(
                "train",
                [*QUICK, *([] if given else [f"hydra.run.dir={run_dir}"]), *overrides],
                env_extra={"CUDA_VISIBLE_DEVICES": ""},
            ),
        )
    for name, (run_dir, proc) in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, f"{name}: {stderr[-2000:]}"
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert "Traceback" not in stderr, f"{name}: {stderr[-2000:]}"
        assert re.match(SCRIPT_CASES[name][1], lines[-1]), lines[-1]
        assert not (run_dir / "summary.json").exists()
        if (run_dir / "run_info.json").exists():  # the run started: it is marked failed
            assert json.loads((run_dir / "run_info.json").read_text())["status"] == "failed"
            assert (run_dir / "FAILED").read_text().strip()


def test_scripts_print_one_line(tmp_path):
    run_scripts(tmp_path, ["config typo", "gpu without gpu"])


def test_scripts_print_one_line_round_2(tmp_path):
    run_scripts(tmp_path, ["bool as no", "run dir cannot be made"])


@pytest.mark.slow
def test_scripts_print_one_line_round_2_more(tmp_path):
    run_scripts(tmp_path, ["seed text", "max_epochs text", "max_epochs zero", "lr negative"])


@pytest.mark.slow
def test_scripts_print_one_line_more(tmp_path):
    run_scripts(tmp_path, ["missing data file", "zero size"])
