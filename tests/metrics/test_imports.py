"""No rnnkit module imports torchmetrics (a dev dependency, for the parity tests only)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT


def imports_of(source: str) -> set[str]:
    """The top-level packages that ``source`` imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_check_finds_an_import_inside_a_function() -> None:
    assert "torchmetrics" in imports_of("def f():\n    from torchmetrics.text import BLEUScore\n")
    assert "torchmetrics" not in imports_of("x = 'torchmetrics'\n")


def test_no_rnnkit_module_imports_torchmetrics() -> None:
    package = REPO_ROOT / "rnnkit"
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in sorted(package.rglob("*.py"))
        if "torchmetrics" in imports_of(Path(path).read_text())
    ]
    assert offenders == []


def test_importing_the_metrics_loads_no_torchmetrics() -> None:
    code = "import sys, rnnkit.metrics; print('torchmetrics' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
