"""The three recipes of CONTRIBUTING.md (add a cell, a task, a dataset) run as written.

Each recipe's fenced blocks name their file on their first line (``# rnnkit/cells/indrnn.py``).
For one recipe, in order:

- every ``rnnkit/...`` python block is installed as that module (``rnnkit.cells.indrnn``) and its
  classes are exported from the package (``rnnkit.cells.IndRNNCell``), which is what the
  recipe's "export it" step does by hand;
- every ``configs/...`` YAML block is written to a temporary config folder that Hydra searches
  too (``hydra.searchpath``), so ``task=quantile`` finds it;
- every ``test_*`` function of every ``tests/...`` python block runs;
- every ``python scripts/train.py ...`` line of its bash blocks is composed with the fast
  overrides (one batch per stage) and trained in-process.

The cell recipe's cell also goes through the cell contract tests of
``tests/cells/test_cell_contract.py``, after the guard there has been seen to reject it while
it is missing from ``CELLS``. Everything is undone after each test (``monkeypatch``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import tests.cells.test_cell_contract as contract
from rnnkit.train import train
from tests.helpers import FAST, REPO_ROOT

CONTRIBUTING = (REPO_ROOT / "CONTRIBUTING.md").read_text()
RECIPES = {"cell": "Add a cell", "task": "Add a task", "dataset": "Add a dataset"}


@dataclass
class Block:
    language: str  # python, yaml or bash
    path: str | None  # the file named on the first line, e.g. "rnnkit/cells/indrnn.py"
    code: str


def recipe_text(title: str) -> str:
    """The section ``### <title>`` of CONTRIBUTING.md, up to the next heading of its level."""
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##+ |\Z)", CONTRIBUTING, re.S | re.M)
    assert match, f"CONTRIBUTING.md has no section '### {title}'"
    return match.group(1)


def recipe_blocks(title: str) -> list[Block]:
    """The fenced blocks of one recipe, in order."""
    blocks = []
    for language, code in re.findall(r"^```(\w+)\n(.*?)^```", recipe_text(title), re.S | re.M):
        first = code.splitlines()[0]
        named = re.fullmatch(r"# ((?:rnnkit|tests|configs)/\S+)", first)
        blocks.append(Block(language, named.group(1) if named else None, code))
    return blocks


def train_commands(blocks: list[Block]) -> list[list[str]]:
    """The arguments of every ``python scripts/train.py`` line of the bash blocks."""
    commands = []
    for block in blocks:
        for line in block.code.splitlines() if block.language == "bash" else []:
            words = shlex.split(line)
            assert words[:2] == ["python", "scripts/train.py"], f"cannot run {line!r}"
            commands.append(words[2:])
    return commands


def install_module(block: Block, tmp_path: Path, monkeypatch) -> types.ModuleType:
    """Import ``block`` as the module its path names and export its classes from the package."""
    name = block.path.removesuffix(".py").replace("/", ".")
    file = tmp_path / block.path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(block.code)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, file))
    monkeypatch.setitem(sys.modules, name, module)
    module.__spec__.loader.exec_module(module)
    package = importlib.import_module(name.rsplit(".", 1)[0])
    for attr, value in vars(module).items():
        if inspect.isclass(value) and value.__module__ == name:
            monkeypatch.setattr(package, attr, value, raising=False)
    return module


def run_test_block(block: Block, tmp_path: Path) -> list[str]:
    """Run every ``test_*`` function of a test block; return their names."""
    namespace: dict = {"__name__": block.path.removesuffix(".py").replace("/", ".")}
    exec(compile(block.code, block.path, "exec"), namespace)
    ran = []
    for name, function in namespace.items():
        if name.startswith("test_") and callable(function):
            parameters = inspect.signature(function).parameters
            assert set(parameters) <= {"tmp_path"}, f"{block.path}::{name}: unknown fixture"
            folder = tmp_path / name
            folder.mkdir()
            function(**({"tmp_path": folder} if parameters else {}))
            ran.append(name)
    return ran


def run_recipe(key: str, tmp_path: Path, monkeypatch, compose_cfg) -> dict:
    """Everything a recipe shows, run in order; returns what was installed and run."""
    blocks = recipe_blocks(RECIPES[key])
    modules = [
        install_module(b, tmp_path / "src", monkeypatch)
        for b in blocks
        if b.language == "python" and b.path.startswith("rnnkit/")
    ]
    config_dir = tmp_path / "configs"  # searched by Hydra, so it exists even when empty
    config_dir.mkdir()
    for block in blocks:
        if block.language == "yaml":
            file = config_dir / block.path.removeprefix("configs/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(block.code)
    tests_run = [
        test
        for b in blocks
        if b.language == "python" and b.path.startswith("tests/")
        for test in run_test_block(b, tmp_path)
    ]
    metrics = []
    for i, args in enumerate(train_commands(blocks)):
        overrides = [*args, *FAST, f"hydra.searchpath=[file://{config_dir}]"]
        metrics.append(train(compose_cfg(overrides, subdir=f"run{i}")))
    return {"modules": modules, "tests": tests_run, "metrics": metrics}


@pytest.mark.parametrize("key", sorted(RECIPES))
def test_recipe_shows_every_step(key: str) -> None:
    """A module, a test, a command; task and dataset recipes also a config."""
    blocks = recipe_blocks(RECIPES[key])
    paths = [b.path or "" for b in blocks]
    for block in blocks:
        if block.language in ("python", "yaml"):
            assert block.path, f"{RECIPES[key]}: a {block.language} block names no file"
    assert any(p.startswith("rnnkit/") for p in paths), f"{RECIPES[key]}: no rnnkit/ module"
    assert any(p.startswith("tests/") for p in paths), f"{RECIPES[key]}: no test"
    assert train_commands(blocks), f"{RECIPES[key]}: no training command"
    if key != "cell":
        assert any(p.startswith("configs/") for p in paths), f"{RECIPES[key]}: no config"


def test_recipe_code_follows_the_house_format(tmp_path: Path) -> None:
    """``ruff check`` and ``ruff format --check`` with the project's settings."""
    files = []
    for title in RECIPES.values():
        for block in recipe_blocks(title):
            if block.language == "python":
                file = tmp_path / block.path
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(block.code)
                files.append(str(file))
    # the recipe's new modules are not in the tree, so ruff must be told they are rnnkit's
    first_party = 'lint.isort.known-first-party = ["rnnkit"]'
    settings = ["--config", str(REPO_ROOT / "pyproject.toml"), "--config", first_party]
    for command in (["check", *settings], ["format", "--check", *settings]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *files],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
        )
        assert done.returncode == 0, f"ruff {command[0]}:\n{done.stdout}{done.stderr}"


def test_add_a_cell(tmp_path: Path, monkeypatch, compose_cfg) -> None:
    ran = run_recipe("cell", tmp_path, monkeypatch, compose_cfg)
    assert ran["tests"], "the cell recipe ran no test"
    assert all(any(k.startswith("test/") for k in m) for m in ran["metrics"]), ran["metrics"]

    (module,) = ran["modules"]
    (cell_class,) = [
        v for v in vars(module).values() if inspect.isclass(v) and v.__module__ == module.__name__
    ]
    # exported but not yet in CELLS (step 3 of the recipe): the contract's guard must object
    with pytest.raises(AssertionError, match="to CELLS"):
        contract.test_every_exported_cell_is_covered()
    monkeypatch.setitem(contract.CELLS, "recipe", lambda: cell_class(contract.F, contract.H))
    contract.test_every_exported_cell_is_covered()
    checks = [
        check
        for name, check in vars(contract).items()
        if name.startswith("test_") and "name" in inspect.signature(check).parameters
    ]
    assert len(checks) >= 4, "the contract tests were not found"
    for check in checks:
        check("recipe")


def test_add_a_task(tmp_path: Path, monkeypatch, compose_cfg) -> None:
    ran = run_recipe("task", tmp_path, monkeypatch, compose_cfg)
    assert ran["tests"], "the task recipe ran no test"
    (metrics,) = ran["metrics"]
    assert {"test/loss", "test/mae", "test/coverage"} <= set(metrics), metrics


def test_add_a_dataset(tmp_path: Path, monkeypatch, compose_cfg) -> None:
    ran = run_recipe("dataset", tmp_path, monkeypatch, compose_cfg)
    assert ran["tests"], "the dataset recipe ran no test"
    (metrics,) = ran["metrics"]
    assert {"test/loss", "test/acc"} <= set(metrics), metrics
