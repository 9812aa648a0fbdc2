"""Execute every notebook in ``notebooks/`` with the test interpreter as the Jupyter kernel, and
check that each is its source ``notebooks/<name>.py`` (jupytext's percent format), unexecuted.

The notebooks assert what they show (parity with torch.nn, BPTT equal to autograd, ...), so an
error in any cell fails the test. The kernel is this very interpreter (``sys.executable``, the
venv's python), registered in a temporary kernelspec folder: no global Jupyter install needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

# `make test` runs on pytest-xdist workers: one kernelspec for the module, so the module stays
# on one worker
pytestmark = pytest.mark.xdist_group("notebooks")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "rnnkit-test-python"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec for ``sys.executable`` in a folder of its own, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "rnnkit tests", "language": "python"})
    )
    return root


def test_every_notebook_is_its_jupytext_source_committed_without_outputs():
    # notebooks/<name>.py (percent format) is the source; `make notebooks` writes the .ipynb
    sources = sorted(NOTEBOOKS.glob("*.py"))
    assert [p.stem for p in sources] == [p.stem for p in PATHS]
    for source, path in zip(sources, PATHS, strict=True):
        want = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
        nb = nbformat.read(path, as_version=4)
        assert [(c.cell_type, c.source) for c in nb.cells] == want, (
            f"{path.name} differs from {source.name}: run `make notebooks`"
        )
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path, kernel_dir, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # tiny models: one thread each; more only spin against each other on a busy 2-core machine
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # raises CellExecutionError naming the cell on any failure; the per-cell timeout catches a
    # hang (how long a notebook takes is the bench's business, not a test's: load varies)
    client.execute()
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count is not None for c in ran)
