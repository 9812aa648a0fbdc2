"""rnnkit in a project of one's own: README's "Your own project", run as a new user would.

The wheel is built from a copy of the repository (``pip wheel --no-deps --no-build-isolation``,
so no stale ``build/`` can leak into it) and installed, not editable, into a fresh venv in a
temporary folder outside the repository. That venv sees the shared venv's packages (torch,
Lightning, ...) through a ``.pth`` line naming the shared ``site-packages``: a plain path, so the
shared venv's editable rnnkit (its own ``.pth`` finder) is not activated and ``import rnnkit``
finds the wheel's copy first. (``python -m venv --system-site-packages`` alone would not do: a
venv made from a venv sees the *base* interpreter's packages, not the shared venv's.)

The user's folder holds one CSV file (``data/toy_sequences.csv`` of this repository) and the
experiment file of the README; the README's ``sh`` commands run there, as written, with the
venv's ``bin/`` on ``PATH`` and no ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

# `make test` runs on pytest-xdist workers: one wheel and one venv, built once for the module,
# so the module stays on one worker
pytestmark = pytest.mark.xdist_group("own_project")

SECTION = (REPO_ROOT / "README.md").read_text().split("## Your own project\n")[1].split("\n## ")[0]
# the README's file layout: its yaml block is the file named just before it
EXPERIMENT_PATH, EXPERIMENT = re.search(
    r"^`([\w/]+\.yaml)`.*?\n```yaml\n(.*?)^```", SECTION, flags=re.S | re.M
).groups()
COMMANDS = [
    line.strip()
    for block in re.findall(r"^```sh\n(.*?)^```", SECTION, flags=re.S | re.M)
    for line in block.splitlines()
    if line.strip()
]
# what is not copied into the wheel's build folder (not in a clone's wheel either)
NOT_BUILT = (".git", ".venv", "outputs", "multirun", "build", "dist", "*.egg-info", "__pycache__",
             ".pytest_cache", ".ruff_cache", "lightning_logs", "notebooks")  # fmt: skip


def _run(argv: list[str], cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{shlex.join(argv)}: exit {done.returncode}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    """``(wheel, environment)``: rnnkit's wheel, built from a copy of the repository."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "rnnkit-src"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_BUILT), symlinks=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    env["OMP_NUM_THREADS"] = "1"
    # the native backend's library is cached under a key that includes its source's path, so
    # every fresh venv would compile it (about 2 min here); tests/layers covers that backend
    env["RNNKIT_NATIVE"] = "0"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root), str(source)],
         cwd=root, env=env)  # fmt: skip
    (wheel,) = root.glob("rnnkit-*.whl")
    return wheel, env


@pytest.fixture(scope="module")
def installed(built) -> tuple[Path, dict]:
    """A venv with rnnkit installed from the wheel; ``(venv bin, environment)``."""
    wheel, env = built
    venv = wheel.parent / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent, env=env)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=venv, env=env).stdout.strip()  # fmt: skip
    (Path(site) / "shared_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "-q", "install", "--no-deps", "--no-index", str(wheel)],
         cwd=venv, env=env)  # fmt: skip
    env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    return venv / "bin", env


def test_the_wheel_holds_every_config_and_the_command(built) -> None:
    """Fast: the wheel's file list (every YAML of configs/, the entry point, the C++ source)."""
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = REPO_ROOT / "configs"
    wanted = {
        f"rnnkit/configs/{p.relative_to(configs).as_posix()}"
        for p in configs.rglob("*.yaml")
        if p.relative_to(configs).parts[0] != "local"  # machine-local settings stay home
    }
    assert wanted and wanted <= names, sorted(wanted - names)
    assert "rnnkit/configs/__init__.py" in names  # Hydra's pkg:// source needs it
    assert not [n for n in names if n.startswith("rnnkit/configs/local/")]
    assert "rnnkit/csrc/recurrent_loops.cpp" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "rnnkit = rnnkit.commands:main" in text, text


def test_the_installed_package_reads_its_own_configs(installed) -> None:
    bin_dir, env = installed
    code = (
        "import importlib.resources, json, rnnkit, rnnkit.commands as c; "
        "print(rnnkit.__file__); print(c.config_path()); "
        "configs = importlib.resources.files('rnnkit.configs'); "
        "print(json.dumps([p.name for p in configs.iterdir()]))"
    )
    out = _run([str(bin_dir / "python"), "-c", code], cwd=bin_dir, env=env).stdout.splitlines()
    assert out[0].startswith(str(bin_dir.parent)), f"rnnkit imported from {out[0]}, not the wheel"
    assert out[1] == "pkg://rnnkit.configs"
    shipped = json.loads(out[2])
    expected = {p.name for p in (REPO_ROOT / "configs").iterdir() if p.name != "__pycache__"}
    assert expected - {"local"} <= set(shipped), expected - set(shipped)
    assert (bin_dir / "rnnkit").is_file()


def test_own_project_trains_evaluates_predicts_from_a_fresh_folder(installed, tmp_path) -> None:
    """README's commands, as written, in a folder with only a CSV file and the experiment."""
    bin_dir, env = installed
    project = tmp_path / "my_project"
    (project / Path(EXPERIMENT_PATH).parent).mkdir(parents=True)
    (project / EXPERIMENT_PATH).write_text(EXPERIMENT)
    shutil.copy(REPO_ROOT / "data" / "toy_sequences.csv", project / "my_sequences.csv")
    assert [c.split()[:2] for c in COMMANDS] == [
        ["rnnkit", "train"], ["rnnkit", "eval"], ["rnnkit", "predict"]
    ]  # fmt: skip
    outputs = {}
    for command in COMMANDS:
        outputs[command.split()[1]] = _run(shlex.split(command), cwd=project, env=env)

    run_dir = project / "outputs" / "my_gru" / "first"
    assert (run_dir / "summary.json").is_file() and (
        run_dir / "checkpoints" / "last.ckpt"
    ).is_file()
    evals = list((project / "outputs" / "eval").glob("*/summary.json"))
    assert len(evals) == 1, "eval writes its run under ./outputs/eval/"
    lines = (project / "predictions.tsv").read_text().splitlines()
    assert len(lines) == 60 and {ln.split("\t")[0] for ln in lines} <= {"up", "down"}, lines[:3]

    # the whole console: what was read from the file (once), one line per epoch (5), then the
    # summary; no notice, no warning
    console = (outputs["train"].stdout + outputs["train"].stderr).splitlines()
    assert console[0].startswith("my_sequences.csv: 2 features 'value', 'noise'; label"), console
    assert [line.split()[:2] for line in console[1:-1]] == [
        ["epoch", f"{n}/5"] for n in range(1, 6)
    ], "\n".join(console)
    assert console[-1].startswith("my_gru: test/acc "), console[-1]
    assert "run outputs/my_gru/first" in console[-1] and "best checkpoint" in console[-1]
    eval_console = (outputs["eval"].stdout + outputs["eval"].stderr).splitlines()
    assert len(eval_console) == 2 and eval_console[0] == console[0], eval_console
    assert eval_console[1].startswith("eval: test/acc "), eval_console
    predict_console = outputs["predict"].stdout + outputs["predict"].stderr
    # predict reads the input file alone (the training file's state is in the checkpoint)
    assert predict_console == f"{console[0]}\nWrote 60 predictions to predictions.tsv\n", (
        predict_console
    )
