"""Print pip constraints pinning every dependency of ``pyproject.toml`` to its floor.

``make test-floor`` installs rnnkit with these constraints into a venv of its own and runs the
fast tests: the floors in ``pyproject.toml`` are then the versions the tests passed on, not a
guess. ``torch>=2.7`` becomes ``torch==2.7`` (2.7.0); an upper bound is dropped (the floor is below
it); extras (``[dev]``) keep whatever pip picks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib


def floors(pyproject: Path) -> list[str]:
    """``name==floor`` for every ``name>=floor`` dependency, in the file's order."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9a-z.]*)(,.*)?", dep.strip())
        if match is None:
            raise SystemExit(f"pyproject.toml: dependency {dep!r} has no '>=' floor")
        pins.append(f"{match.group(1)}=={match.group(2)}")  # PEP 440: "==2.7" matches 2.7.0
    return pins


if __name__ == "__main__":
    print("\n".join(floors(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
