"""The repository stands on its own: no file points at notes or documents outside the clone.

Docstrings cite published papers (author, year, title), and the docs link only to files in the
repository. Two kinds of reference would send a reader outside it: a path that climbs out of the
clone into a sibling ``shared`` folder, and a citation of numbered lecture notes ("seed 003").
A random seed ("seed 12345", ``seed=0``) is not a citation and is allowed.
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
