"""Vocabularies, label maps and scalers are stored as plain data: every DataModule's
``state_dict()`` (which Lightning puts in each checkpoint) is JSON, never a pickled object."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from reliability_helpers import CONFIG_DIR, compose

DATA = sorted(p.stem for p in (Path(CONFIG_DIR) / "data").glob("*.yaml"))
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "real"
# configs that read a user's file and ship none: one of the same layout
USER_FILE = {
    "series_csv": [f"data.path={FIXTURES / 'ShampooSales.csv'}", "data.target_columns=[Sales]",
                   "data.window=4"],
}  # fmt: skip


@pytest.mark.parametrize("name", DATA)
def test_datamodule_state_is_plain_data(name, tmp_path):
    cfg = compose([f"data={name}", *USER_FILE.get(name, [])], tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    state = datamodule.state_dict()
    assert state, f"{name}: nothing fitted to save"
    assert json.loads(json.dumps(state)) == state  # JSON round trip, unchanged
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == state
