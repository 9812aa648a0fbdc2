"""How a metric state is reduced over the processes of a distributed run (DDP).

Each process updates its metrics with its own batches; :meth:`rnnkit.metrics.Metric.compute`
reduces the states with these functions first, so every process computes the global value.
Nothing runs outside a distributed run (one process: the states are already global).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

REDUCTIONS = ("sum", "max", "min", "cat")


def distributed() -> bool:
    """Whether this process is one of several: ``torch.distributed`` is up and initialised."""
    return dist.is_available() and dist.is_initialized()


def all_reduce(tensor: Tensor, reduce: str) -> Tensor:
    """The elementwise sum, max or min of ``tensor`` over the processes (a new tensor)."""
    op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[reduce]
    out = tensor.clone()
    dist.all_reduce(out, op=op)
    return out


def all_gather_cat(tensor: Tensor) -> Tensor:
    """Every process's ``tensor (N_p, ...)`` concatenated in rank order: ``(sum_p N_p, ...)``.

    The processes may hold different ``N_p`` (uneven last batches, a split of few series), and
    ``all_gather`` needs one shape, so each pads its rows to the largest ``N_p`` and the
    padding is cut off after the gather.
    """
    world = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s) for s in sizes]  # one host sync per state, at compute time only
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[:n] for g, n in zip(gathered, counts, strict=True)])
