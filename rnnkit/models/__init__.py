"""Models: plain ``nn.Module`` architectures built from layers, and their builders."""

from rnnkit.models.builders import build_stack

__all__ = ["build_stack"]
