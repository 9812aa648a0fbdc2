"""The repository stands on its own: no file points at notes or documents outside the clone.

Docstrings cite published papers (author, year, title), and the docs link only to files in the
repository. Two kinds of reference would send a reader outside it: a path that climbs out of the
clone into a sibling ``shared`` folder, and a citation of numbered lecture notes ("seed 003").
A random seed ("seed 12345", ``seed=0``) is not a citation and is allowed. And the design and
contributing guides name only files that exist, so a rename cannot leave them pointing nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# the parts of the repository a reader or the package sees
SCANNED = ["rnnkit", "tests", "scripts", "configs", "docs", "examples", "notebooks"]
SCANNED_FILES = ["README.md", "CONTRIBUTING.md", "Makefile", "pyproject.toml"]
SUFFIXES = {".py", ".pyi", ".cpp", ".h", ".yaml", ".yml", ".md", ".ipynb", ".toml", ".txt", ""}

OUTSIDE = re.compile(
    r"\.\./+shared\b"  # ../shared/DESIGN.md
    r"|/work/shared\b"  # an absolute path to the same folder
    r"|\bseeds?[ _/-]?0\d\d(?!\d)",  # "seed 001", "seed-003", "seeds/000_..."
    re.IGNORECASE,
)


def outside_references(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` for every line of ``text`` that refers outside the repository."""
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]


def scanned_paths() -> list[Path]:
    """Every text file of the scanned folders and top-level files, this test file excepted."""
    paths = [REPO_ROOT / name for name in SCANNED_FILES]
    for folder in SCANNED:
        for path in (REPO_ROOT / folder).rglob("*"):
            skip = {"__pycache__", ".ipynb_checkpoints"} & set(path.parts)
            if path.is_file() and path.suffix in SUFFIXES and not skip:
                paths.append(path)
    return [p for p in paths if p.is_file() and p.resolve() != Path(__file__).resolve()]


def test_the_pattern_catches_each_kind_of_outside_reference() -> None:
    """Guards the scan below: it would pass trivially if the pattern matched nothing."""
    caught = [
        "Read `../shared/DESIGN.md` first",
        "the BPTT loop of seed 001, lines 7-9",
        "Seed 004's task",
        "see /work/shared/STYLE.md",
        "notes in seeds/000_199b.txt",
    ]
    allowed = [
        "seed: 12345",
        "torch.manual_seed(0)",
        "seeds ``seed, seed + 1, ...``",
        "Measured (seed 12345, CPU, 500 steps)",
        "shared weights",
    ]
    assert all(outside_references(line) for line in caught)
    assert not any(outside_references(line) for line in allowed)


def test_no_file_refers_outside_the_repository() -> None:
    paths = scanned_paths()
    assert len(paths) > 100, f"only {len(paths)} files scanned: is REPO_ROOT right?"
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in paths
        for number, line in outside_references(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert not found, "references outside the repository (cite the paper instead):\n" + "\n".join(
        found
    )


# ----- the design and contributing guides name only files that exist ---------------------------
GUIDES = ["docs/design.md", "CONTRIBUTING.md"]
# from the repository root, or (cells/, layers/, ...) from inside rnnkit/
TOP = "rnnkit|tests|configs|docs|scripts|data|examples|notebooks"
INSIDE = "cells|layers|models|tasks|utils|csrc|callbacks|diagnostics"
PATH_IN_BACKTICKS = re.compile(rf"`((?:{TOP}|{INSIDE})/[\w./*-]*)`")
# files the recipes of CONTRIBUTING.md tell the reader to create
RECIPE_FILES = re.compile(r"indrnn|quantile|parity")


def named_paths(text: str) -> list[str]:
    """Repository paths written in backticks in ``text`` (globs allowed, ``rnnkit/...`` not)."""
    found = PATH_IN_BACKTICKS.findall(text)
    return [p for p in found if not RECIPE_FILES.search(p) and not p.endswith("...")]


def exists(path: str) -> bool:
    """``path`` (or glob) names something from the repository root or from ``rnnkit/``."""
    return any(list(root.glob(path.rstrip("/"))) for root in (REPO_ROOT, REPO_ROOT / "rnnkit"))


def test_the_path_pattern_finds_paths() -> None:
    """Guards the test below: it would pass trivially if no path were found."""
    text = "see `rnnkit/cells/lstm.py`, `configs/model/*.yaml`, `rnnkit/...`, `cells/indrnn.py`"
    assert named_paths(text) == ["rnnkit/cells/lstm.py", "configs/model/*.yaml"]
    assert exists("cells/lstm.py") and exists("configs/model/*.yaml")
    assert not exists("rnnkit/cells/no_such_cell.py")


def test_guides_name_only_existing_files() -> None:
    for guide in GUIDES:
        paths = named_paths((REPO_ROOT / guide).read_text())
        assert len(paths) >= 10, f"{guide}: only {len(paths)} paths found"
        missing = [p for p in paths if not exists(p)]
        assert not missing, f"{guide} names files that do not exist: {missing}"
