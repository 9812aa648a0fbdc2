"""Every command in README.md is run by a test, so the README cannot go stale.

The commands are the lines of the README's fenced ``bash`` blocks; the ``python`` blocks are
programs. (The experiment table's commands are exactly ``python scripts/train.py
+experiment=NAME``, which tests/test_experiments.py runs for every experiment config.) All of them
run, in README order, in one child process of the venv's python (:data:`DRIVER`; starting torch,
Lightning and Hydra once instead of thirty times keeps this file fast): each ``python scripts/X.py
ARGS`` as ``runpy.run_path`` with ``sys.argv`` set, exactly what ``python scripts/X.py ARGS``
executes, in a temporary working directory (``data/`` linked in), with overrides appended that make
it short:

- a single run: 1 epoch of 2 training batches, 1 validation and 1 test batch (checkpoints are
  written, so ``ckpt_path=last``, eval and predict after it work as for a real run);
- Optuna searches: 2 trials;
- every run's outputs under the temporary directory (``paths.log_dir``).

Commands that need hardware this machine lacks (``trainer=gpu``, ``trainer=ddp``,
``hydra/launcher=slurm``) are composed with Hydra, exactly as written, and their resolved
settings are checked; ``trainer=ddp_cpu`` runs for real (two processes, gloo). ``make`` lines
are checked against the Makefile, not run (``make test`` would run this file again).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from rnnkit.utils.config import register_resolvers
from tests.helpers import CONFIG_DIR, REPO_ROOT, options

# `make test` runs on pytest-xdist workers: the README's commands run once, in one module
# fixture, so the module stays on one worker
pytestmark = pytest.mark.xdist_group("readme")

README = REPO_ROOT / "README.md"
TEXT = README.read_text()

# settings that make a run short; appended, so they win over the README's own values
SHORT = [
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "++trainer.limit_val_batches=1",
    "++trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "extras.print_config=false",
]
OPTUNA_TRIALS = 2


def _id(line: str) -> str:
    """A short test id for a README line."""
    return line.removeprefix("python scripts/")[:80]


# GPUs and SLURM; trainer=ddp_cpu (two processes, gloo) runs for real
NEEDS_HARDWARE = re.compile(r"\btrainer=(gpu|ddp)(\s|$)|\bhydra/launcher=slurm\b")


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of ``text``."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def bash_lines(text: str) -> list[str]:
    """Every command of the bash blocks: comments dropped, continuation lines joined."""
    lines = []
    for block in fenced_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def table_commands(text: str) -> list[str]:
    """The ``python scripts/...`` commands written in table cells."""
    return re.findall(r"^\|\s*`(python scripts/[^`]+)`", text, flags=re.M)


def sweep_size(args: list[str]) -> int:
    """Jobs of a grid multirun: the product of the comma-separated value counts."""
    size = 1
    for arg in args:
        key, _, value = arg.partition("=")
        if "=" in arg and not key.startswith("hydra.") and "," in value and "[" not in value:
            size *= len(value.split(","))
    return size


BASH = bash_lines(TEXT)
TABLE = table_commands(TEXT)
MAKE = [line for line in BASH if line.startswith("make ")]
SCRIPTS = [line for line in BASH if line.startswith("python scripts/")]
HARDWARE = [line for line in SCRIPTS if NEEDS_HARDWARE.search(line)]
PYTHON_BLOCKS = fenced_blocks(TEXT, "python")
EXPERIMENT_NAMES = [c.split("+experiment=")[-1] for c in TABLE]


def _plan(log_dir: Path) -> list[dict]:
    """What the driver runs, in README order: the bash lines, then the python blocks."""
    plan = []
    for line in BASH:
        if line.startswith("make ") or line in HARDWARE:
            continue
        words = shlex.split(line)
        if words[0] != "python":
            plan.append({"id": line, "kind": "shell", "argv": line})
            continue
        argv = words[1:]
        if argv[0] in ("scripts/train.py", "scripts/eval.py", "scripts/predict.py"):
            argv += [*SHORT, f"paths.log_dir={log_dir}"]
        if "ckpt_path=last" in argv:  # go on for one more epoch than the run it resumes
            argv.append("trainer.max_epochs=2")
        if any(a.startswith("+hparams_search=") for a in argv):
            argv += [
                f"hydra.sweeper.n_trials={OPTUNA_TRIALS}",
                f"hydra.sweeper.sampler.n_startup_trials={OPTUNA_TRIALS}",
            ]
        if "--cfg" in argv:  # argparse wants the overrides before the option
            at = argv.index("--cfg")
            argv = argv[:at] + argv[at + 2 :] + argv[at : at + 2]
        # DDP leaves a process group behind: its own process, not the driver's
        kind = "process" if "trainer=ddp_cpu" in argv else "script"
        plan.append({"id": line, "kind": kind, "argv": argv})
    for i, block in enumerate(PYTHON_BLOCKS):
        plan.append({"id": f"python block {i}", "kind": "python", "argv": block})
    return plan


# Runs in a child python: each command's exit status, output and the summary.json files it wrote.
DRIVER = r"""
import contextlib, io, json, runpy, subprocess, sys, traceback
from pathlib import Path

plan, repo, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]), Path(sys.argv[3])
results = []


def summaries():  # those of run directories (a callback may write its own), with their times
    found = Path(".").rglob("summary.json")
    return {(str(p), p.stat().st_mtime_ns) for p in found if (p.parent / ".hydra").is_dir()}


for i, step in enumerate(plan):
    before = summaries()
    buffer = io.StringIO()
    if step["kind"] in ("shell", "process"):
        argv = ["bash", "-c", step["argv"]] if step["kind"] == "shell" else [
            sys.executable, str(repo / step["argv"][0]), *step["argv"][1:]
        ]
        done = subprocess.run(argv, capture_output=True, text=True)
        rc, text = done.returncode, done.stdout + done.stderr
    else:
        if step["kind"] == "python":
            path = Path(f"readme_block_{i}.py")
            path.write_text(step["argv"])
            argv = [str(path)]
        else:
            argv = [str(repo / step["argv"][0]), *step["argv"][1:]]
        sys.argv, rc = argv, 0
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                runpy.run_path(argv[0], run_name="__main__")
            except SystemExit as exit:
                rc = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except BaseException:
                traceback.print_exc()
                rc = 1
        from hydra.core.global_hydra import GlobalHydra
        GlobalHydra.instance().clear()
        text = buffer.getvalue()
    new = sorted(path for path, _ in summaries() - before)  # written or rewritten
    results.append({"id": step["id"], "rc": rc, "output": text[-6000:], "summaries": new})
    out.write_text(json.dumps(results))
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, dict]:
    """Run every runnable README command once; ``{id: {rc, output, summaries}}``."""
    work = tmp_path_factory.mktemp("readme")
    (work / "data").symlink_to(REPO_ROOT / "data")
    plan_file, results_file = work / "plan.json", work / "results.json"
    plan_file.write_text(json.dumps(_plan(work / "outputs")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(plan_file), str(REPO_ROOT), str(results_file)],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert results_file.is_file(), f"driver failed before any command:\n{done.stderr[-3000:]}"
    results = {r["id"]: {**r, "work": work} for r in json.loads(results_file.read_text())}
    return results


def _result(ran: dict, key: str) -> dict:
    assert key in ran, f"{key!r} did not run (the driver stopped early?)"
    result = ran[key]
    assert result["rc"] == 0, f"{key}\nexit status {result['rc']}:\n{result['output']}"
    return result


# ----- the README's shape ------------------------------------------------------------------------
def test_readme_shows_the_commands_a_user_needs() -> None:
    assert MAKE[:2] == ["make train", "make test"], "the two set-up commands come first"
    joined = "\n".join(SCRIPTS)
    for needed in ("scripts/eval.py ckpt_path=", "scripts/predict.py ckpt_path=", " -m ",
                   "+hparams_search=", "ckpt_path=last", "resume=true", "trainer=ddp",
                   "hydra/launcher=slurm"):  # fmt: skip
        assert needed in joined, f"README: no bash command with {needed!r}"
    assert "## Speed" in TEXT and "docs/benchmarks.md" in TEXT


def test_every_bash_line_has_a_form_this_file_knows() -> None:
    """``make X``, ``python FILE ...``, or a shell line without python (run as it is)."""
    for line in BASH:
        words = shlex.split(line)
        known = words[0] in ("make", "python") or "python" not in line
        assert known, f"README line {line!r}: write python commands as `python FILE ...`"
    assert all(c.count(" ") == 2 for c in TABLE), "table commands: python scripts/X.py ONE_ARG"


def test_every_experiment_is_in_the_table() -> None:
    assert sorted(EXPERIMENT_NAMES) == options("experiment")
    assert EXPERIMENT_NAMES[0] == "quickstart"


@pytest.mark.parametrize("name", EXPERIMENT_NAMES)
def test_table_results_are_the_ones_measured(name: str) -> None:
    """Every number in a result cell is in the experiment file; none is made up."""
    row = re.search(rf"^\|\s*`python scripts/train.py \+experiment={name}`.*$", TEXT, re.M)
    result = row.group(0).rsplit("|", 2)[-2]
    comment = "\n".join(
        line for line in (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text().splitlines()
        if line.startswith("#")
    )  # fmt: skip
    numbers = re.findall(r"\d+\.\d+", result)
    if "not recorded" in result:
        recorded = re.search(r"Measured.*\d\.\d", comment, re.S)
        assert not recorded, f"{name}: the file records a result now; put it in the README"
    else:
        assert numbers, f"{name}: no result in the table"
    for number in numbers:
        assert number in comment, f"{name}: {number} is not in configs/experiment/{name}.yaml"


def test_quickstart_baseline_is_stated() -> None:
    comment = (CONFIG_DIR / "experiment" / "quickstart.yaml").read_text()
    baseline = re.search(r"majority-class baseline (~?[\d.]+)", comment).group(1)
    acc = re.search(r"test/acc = ([\d.]+)", comment).group(1)
    head = TEXT.split("## What is in the box")[0]
    assert f"majority class would reach {baseline}" in head and acc in head


@pytest.mark.parametrize("line", MAKE, ids=_id)
def test_make_targets_exist_and_do_what_the_readme_says(line: str) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    target = line.split()[1]
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n?)*)", makefile, re.M)
    assert recipe, f"Makefile has no target {target!r}"
    said = {
        "train": "scripts/train.py +experiment=quickstart",
        "test": "-m pytest -q",
        "bench": "scripts/bench.py --quick",
    }.get(target)
    if said:
        assert said in recipe.group(1), f"make {target} does not run {said!r}"
        assert said.replace("-m ", "") in TEXT, f"README: say that make {target} runs {said}"


def test_research_example_file_is_the_readme_example() -> None:
    example = (REPO_ROOT / "examples" / "research_loop.py").read_text()
    assert example in PYTHON_BLOCKS, "README and examples/research_loop.py differ"


def test_readme_shows_the_pictures_in_docs_images() -> None:
    linked = set(re.findall(r"\]\(([^)]+\.png)\)", TEXT))
    for path in linked:
        assert (REPO_ROOT / path).is_file(), f"README links a missing picture: {path}"
    pictures = {p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("docs/images/*.png")}
    assert pictures <= linked, f"docs/images/ pictures not in the README: {pictures - linked}"


def test_diagnostics_numbers_are_the_ones_in_docs() -> None:
    section = TEXT.split("## Diagnostics")[1].split("\n## ")[0]
    measured = (REPO_ROOT / "docs" / "diagnostics.md").read_text()
    numbers = re.findall(r"\d+\.\d+(?:e-?\d+)?", section.split("```")[-1])
    assert numbers, "the Diagnostics section states no measured result"
    for number in numbers:
        assert number in measured, f"{number} is not in docs/diagnostics.md"


# ----- the commands, run ----------------------------------------------------------------------
def test_every_experiment_command_is_the_one_test_experiments_runs() -> None:
    """The table's commands are exactly ``python scripts/train.py +experiment=NAME``, and
    tests/test_experiments.py runs every experiment config (one batch, in-process), so running
    the table again here would only repeat it."""
    for command in TABLE:
        assert re.fullmatch(r"python scripts/train\.py \+experiment=\w+", command), command


@pytest.mark.parametrize(
    "line",
    [line for line in BASH if not line.startswith("make ") and line not in HARDWARE],
    ids=_id,
)
def test_bash_command_runs(line: str, ran) -> None:
    result = _result(ran, line)
    work = result["work"]
    args = shlex.split(line)[2:]
    if line.startswith(("python scripts/train.py", "python scripts/eval.py")):
        if "--cfg" in args:
            assert "trainer:" in result["output"]
            return
        expected = 1
        if "-m" in args:
            search = any(a.startswith("+hparams_search=") for a in args)
            expected = OPTUNA_TRIALS if search else sweep_size(args)
        assert len(result["summaries"]) == expected, result["output"]
        summary = json.loads((work / result["summaries"][0]).read_text())
        assert any(k.startswith("test/") for k in summary["metrics"]), summary
        if "trainer=ddp_cpu" in args:
            assert summary["world_size"] == 2, summary
    if "ckpt_path=last" in args:
        assert "Resuming from" in result["output"], "ckpt_path=last did not resume"
    if "+diagnostics=gradient_flow" in args:
        run_dir = work / next(a for a in args if a.startswith("hydra.run.dir=")).split("=")[1]
        assert list((run_dir / "gradient_flow").glob("*.png")), "no gradient-flow plots"
    if line.startswith("python scripts/predict.py"):
        given = next(a for a in args if a.startswith("input=")).split("=", 1)[1]
        written = next(a for a in args if a.startswith("output=")).split("=", 1)[1]
        inputs = (work / given).read_text().splitlines()
        lines = (work / written).read_text().splitlines()
        assert len(lines) == len(inputs) and all(line.split("\t")[0] for line in lines), lines
    if line.startswith("python scripts/plot.py"):
        pngs = [work / p for p in result["output"].split() if p.endswith(".png")]
        assert pngs and all(p.is_file() for p in pngs), result["output"]


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index: int, ran) -> None:
    _result(ran, f"python block {index}")


@pytest.mark.parametrize("line", HARDWARE, ids=_id)
def test_hardware_command_composes(line: str, tmp_path: Path) -> None:
    """GPU, multi-GPU and SLURM commands: composed as written, their settings resolved."""
    args = [a for a in shlex.split(line)[2:] if a != "-m"]
    args = [a.split(",")[0] if "," in a and not a.startswith("hydra.") else a for a in args]
    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", overrides=args, return_hydra_config=True)
    GlobalHydra.instance().clear()
    trainer = OmegaConf.to_container(cfg.trainer, resolve=False)  # paths need a run
    overrides = dict(a.split("=", 1) for a in args if "=" in a)
    if "trainer.devices" in overrides:
        assert trainer["devices"] == int(overrides["trainer.devices"])
    choice = overrides.get("trainer")
    assert trainer["accelerator"] == ("cpu" if choice == "ddp_cpu" else "gpu"), trainer
    if choice in ("ddp", "ddp_cpu"):
        assert "ddp" in str(trainer["strategy"]).lower() or "DDPStrategy" in str(trainer)
    if overrides.get("hydra/launcher") == "slurm":
        from hydra.utils import instantiate

        launcher_cfg = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
        assert launcher_cfg["_target_"].endswith("SlurmLauncher")
        assert (
            launcher_cfg["gpus_per_node"] == launcher_cfg["tasks_per_node"] == trainer["devices"]
        )
        assert launcher_cfg["nodes"] == trainer.get("num_nodes", 1)
        for key, value in overrides.items():
            if key.startswith("hydra.launcher."):
                assert str(launcher_cfg[key.split(".")[-1]]) == value
        launcher = instantiate(cfg.hydra.launcher)
        assert launcher.params["partition"] == launcher_cfg["partition"]
