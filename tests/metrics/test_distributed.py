"""``Metric.compute`` in a distributed run: two gloo processes reduce sums, maxima and rows.

This module imports only ``rnnkit.metrics`` (no Lightning), so the spawned processes start fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from rnnkit import metrics


class Rows(metrics.Metric):
    """Every updated row ``(N, 2)``, in the order of the processes (a ``cat`` state)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("values", torch.empty(0, 2), reduce="cat")

    def _update(self, values: Tensor) -> None:
        self.values.append(values)

    def _compute(self) -> Tensor:
        return self.rows("values")


class Scored(torch.nn.Module):
    """A layer that scores its inputs as it runs, as a task's steps do."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.mean = metrics.Mean()

    def forward(self, x: Tensor) -> Tensor:
        self.mean.update(x)
        return self.layer(x)


def _rank(rank: int, init: str, out: Path) -> None:
    """One of two gloo processes: uneven updates, then the values every process computes."""
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        mean, best, acc = metrics.Mean(), metrics.Max(), metrics.Accuracy()
        rows = Rows()
        if rank == 0:
            mean.update(torch.tensor([1.0, 2.0]))
            best.update(torch.tensor(5.0))
            acc.update(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 0]))
            rows.update(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        else:  # rank 1 holds fewer points (one row of cat states): the gather pads them
            mean.update(torch.tensor(6.0), weight=2.0)
            best.update(torch.tensor(-1.0))
            rows.update(torch.tensor([[5.0, 6.0]]))
        # under DDP, which broadcasts rank 0's buffers before every forward pass
        scored = torch.nn.parallel.DistributedDataParallel(Scored())
        for step in range(3):
            scored(torch.tensor([[10.0 * rank + step]])).sum().backward()
        values = [m.compute() for m in (mean, best, acc)] + [rows.compute()]
        values.append(scored.module.mean.compute())
        # the local states are left as they were: a later compute must not add them up again
        torch.save({"values": values, "local": float(mean.mean_value)}, out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_compute_reduces_over_processes(tmp_path: Path) -> None:
    init = f"file://{tmp_path / 'store'}"
    mp.spawn(_rank, args=(init, tmp_path), nprocs=2, join=True)
    expected = [(1 + 2 + 12) / 4, 5.0, 2 / 3]
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert [float(v) for v in got["values"][:3]] == pytest.approx(expected)
        assert got["values"][3].tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]  # rank order
        assert float(got["values"][4]) == pytest.approx((0 + 1 + 2 + 10 + 11 + 12) / 6)
        assert got["local"] == [3.0, 12.0][rank]
