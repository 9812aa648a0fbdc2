"""Packaging that pyproject.toml cannot say: the package list (rnnkit's own, found, plus configs).

``pyproject.toml`` maps the package ``rnnkit.configs`` to the top-level ``configs/`` folder, so
the wheel carries the configs without moving them; a ``[tool.setuptools.packages.find]`` table
cannot add a package that has no folder of its own under ``rnnkit/``, hence this list.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["rnnkit", "rnnkit.*"]), "rnnkit.configs"])
