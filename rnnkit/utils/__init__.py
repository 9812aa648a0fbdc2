"""Utilities: rank-zero logging and (in :mod:`rnnkit.utils.config`) Hydra config helpers."""

from rnnkit.utils.logging import get_logger

__all__ = ["get_logger"]
