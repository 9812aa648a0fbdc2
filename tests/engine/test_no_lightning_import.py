"""Tasks, data modules and callbacks are plain classes: importing them loads no Lightning, no
torchmetrics and no matplotlib (a plot imports it when drawn); only
``rnnkit.engine.lightning``, the adapters, imports Lightning."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO_ROOT

PLAIN = ("rnnkit.tasks", "rnnkit.data", "rnnkit.callbacks", "rnnkit.diagnostics", "rnnkit.console")
CODE = f"""
import sys
loaded = lambda: sorted(m for m in ("lightning", "lightning_utilities", "torchmetrics",
                                          "matplotlib")
                        if m in sys.modules)
import {", ".join(PLAIN)}
print(loaded())
import rnnkit.engine.lightning  # the check sees Lightning when it is there
print("lightning" in loaded())
"""


def test_the_plain_modules_import_no_lightning_torchmetrics_or_matplotlib():
    out = subprocess.run(
        [sys.executable, "-c", CODE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stdout + out.stderr
