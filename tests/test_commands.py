"""The ``rnnkit`` command's pieces (rnnkit/commands.py) and the quiet console (rnnkit/console.py).

Fast and in-process; tests/test_own_project.py runs the installed command end to end.
"""

from __future__ import annotations

import logging
import warnings

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rnnkit import commands, console
from rnnkit.utils.config import register_resolvers
from tests.helpers import CONFIG_DIR, REPO_ROOT


# ----- commands ---------------------------------------------------------------------------------
def test_a_clone_composes_its_own_configs_folder() -> None:
    assert commands.config_path() == str(CONFIG_DIR)


def test_eval_drops_experiment_with_a_note(capsys) -> None:
    kept = commands.checkpoint_overrides("eval", ["+experiment=quickstart", "ckpt_path=x.ckpt"])
    assert kept == ["ckpt_path=x.ckpt"]
    note = capsys.readouterr().err
    assert note.startswith("note: eval: +experiment=quickstart is not needed")
    assert ".hydra/config.yaml" in note


@pytest.mark.parametrize("given", ["data.test_path=b.csv", "+data.test_path=b.csv"])
def test_eval_merges_data_keys_onto_the_runs_data(given: str) -> None:
    assert commands.checkpoint_overrides("eval", [given]) == ["++data.test_path=b.csv"]


@pytest.mark.parametrize("given", ["data=digits", "model=lstm", "model.hidden_size=8", "task=x"])
def test_eval_refuses_what_comes_from_the_run_and_says_how(given: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        commands.checkpoint_overrides("predict", [given])
    assert exit.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith(f"error: predict: {given}: ") and message.count("\n") == 1
    assert "data.KEY=VALUE" in message and "run_config=" in message


def test_other_overrides_and_hydra_options_pass_unchanged() -> None:
    given = ["ckpt_path=a.ckpt", "trainer.accelerator=cpu", "--config-dir", "mine", "~logger"]
    assert commands.checkpoint_overrides("eval", given) == given


def test_main_usage_and_unknown_command(capsys) -> None:
    commands.main([])
    assert capsys.readouterr().out.startswith("usage: rnnkit train")
    with pytest.raises(SystemExit) as exit:
        commands.main(["fit"])
    assert exit.value.code == 2
    assert "unknown command 'fit'" in capsys.readouterr().err


# ----- paths ------------------------------------------------------------------------------------
def _log_dir() -> str:
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg.paths.log_dir


def test_runs_go_under_the_current_folder_or_rnnkit_output_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RNNKIT_OUTPUT_DIR", raising=False)
    assert _log_dir() == "outputs"  # relative: Hydra makes the run folder in the current one
    monkeypatch.setenv("RNNKIT_OUTPUT_DIR", str(tmp_path / "runs"))
    assert _log_dir() == str(tmp_path / "runs")


# ----- console ----------------------------------------------------------------------------------
def _record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "message", None, None)


@pytest.mark.parametrize(
    ("name", "level", "shown"),
    [
        ("rnnkit.train", logging.INFO, True),
        ("rnnkit.train", logging.DEBUG, False),
        ("rnnkit.layers.backends", logging.INFO, False),  # detail: which backend auto chose
        ("rnnkit.layers.backends.native_build", logging.INFO, True),  # "compiling (once)"
        ("lightning.pytorch.utilities.rank_zero", logging.INFO, False),  # tips, GPU report
        ("lightning.pytorch.utilities.rank_zero", logging.WARNING, True),
    ],
)
def test_quiet_console_shows_rnnkit_info_and_everyones_warnings(name, level, shown) -> None:
    assert console.QuietConsole().filter(_record(name, level)) is shown


def test_setup_quiets_hydras_console_once_and_verbose_undoes_it() -> None:
    handler = logging.StreamHandler()
    handler.set_name("console")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        for _ in range(2):
            console.setup({"extras": {"verbose": False}})
        assert sum(isinstance(f, console.QuietConsole) for f in handler.filters) == 1
        leaf = r".*isinstance\(treespec, LeafSpec\)"
        assert sum(getattr(f[1], "pattern", None) == leaf for f in warnings.filters) == 1
        lightning = logging.getLogger("lightning")
        assert lightning.propagate and not [
            h for h in lightning.handlers if type(h) is logging.StreamHandler
        ]
        console.setup({"extras": {"verbose": True}})
        assert not [f for f in handler.filters if isinstance(f, console.QuietConsole)]
        assert not [f for f in warnings.filters if getattr(f[1], "pattern", None) == leaf]
        assert logging.getLogger("rnnkit").level == logging.DEBUG
    finally:
        root.removeHandler(handler)
        console.setup({"extras": {"verbose": False}})


def test_summary_line_names_metrics_run_folder_and_checkpoint(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "x" / "run1"
    metrics = {"val/loss": 0.5, "test/acc": 0.97412, "test/loss": 0.0812}
    line = console.summary_line("x", metrics, run, str(run / "checkpoints" / "best.ckpt"), "best")
    expected = "x: test/acc 0.9741  test/loss 0.0812  |  run outputs/x/run1  |  best "
    assert line == expected + "checkpoints/best.ckpt"
    assert console.summary_line("x", {"val/loss": 0.5}, "/elsewhere").startswith(
        "x: val/loss 0.5000"
    )


def test_summary_line_shows_a_tasks_headline_of_every_test_split() -> None:
    metrics = {"val/mase": 1.0, "test/mase": 0.5, "test/origin_naive_mase": 0.9,
               "test1/mase": 0.7, "test/one_step_drift_mase": 0.8}  # fmt: skip
    line = console.summary_line("x", metrics, "/elsewhere", names=("mase", "origin_naive_mase"))
    assert line.startswith(
        "x: test/mase 0.5000  test/origin_naive_mase 0.9000  test1/mase 0.7000"
        "  (+1 more in summary.json)  |"
    )


def test_readme_documents_the_own_project_section() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert "## Your own project" in text and "rnnkit train --config-dir configs" in text
