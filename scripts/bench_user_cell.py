"""How fast cells a user writes (no hand-written kernel) run: the peephole and layer-norm LSTMs
of :mod:`rnnkit.cells` on each route open to such a cell, against ``torch.nn.LSTM`` of the same
size, side by side in one process (interleaved rounds, medians, CPU time of the one thread).

Routes: ``loop`` (the eager cell, its input product inside every step), ``scripted`` (the
input product of all steps as one matmul, the time loop in TorchScript: ``auto``'s pick), and
with ``--compile`` the hoisted step compiled by ``torch.compile`` (one graph for every length;
slow to compile on CPU, see docs/benchmarks.md).

    python scripts/bench_user_cell.py              # about 5 min on 2 loaded cores
    python scripts/bench_user_cell.py --compile    # plus torch.compile (minutes to compile)

Prints, per cell and mode, the first call (scripting or compiling included), the first call
at a new sequence length, and the median ms with the ratio to ``torch.nn.LSTM``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rnnkit.cells import LayerNormLSTMCell, PeepholeLSTMCell
from rnnkit.layers import Recurrent

B, I, H, T = 32, 64, 128, 100


class CompiledHoistedStep(nn.Module):
    """The cell's input product for all steps, then its ``step_function`` compiled by
    ``torch.compile`` in a Python loop (the graph does not depend on ``T``)."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.step = torch.compile(type(cell).step_function, dynamic=False)

    def forward(self, x):
        xp = self.cell.project_input(x.transpose(0, 1))
        state = list(self.cell.init_state(x.shape[0]))
        params = self.cell.step_parameters()
        outs = []
        for xp_t in xp.unbind(0):
            out, state = self.step(xp_t, state, params)
            outs.append(out)
        return torch.stack(outs, 1), state


def runner(module, x, train):
    def run():
        if train:
            for p in module.parameters():
                p.grad = None
            module(x)[0].sum().backward()
        else:
            with torch.no_grad():
                module(x)

    return run


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="also torch.compile the step")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clock = time.thread_time
    print(f"torch {torch.__version__}, 1 thread, CPU clock, B={B} I={I} H={H} T={T}")
    for cell_cls in (PeepholeLSTMCell, LayerNormLSTMCell):
        torch.manual_seed(0)
        cell, ref = cell_cls(I, H), nn.LSTM(I, H, batch_first=True)
        x, x_new = torch.randn(B, T, I), torch.randn(B, T // 2 + 7, I)
        routes = {"loop": Recurrent(cell, backend="loop"),
                  "scripted": Recurrent(cell, backend="scripted")}  # fmt: skip
        if args.compile:
            routes["compiled step"] = CompiledHoistedStep(cell)
        for mode in ("train", "inference"):
            train = mode == "train"
            firsts = {n: seconds(runner(m, x, train)) for n, m in routes.items()}
            new_length = {n: seconds(runner(m, x_new, train)) for n, m in routes.items()}
            contenders = {"torch.nn.LSTM": runner(ref, x, train)}
            contenders.update({n: runner(m, x, train) for n, m in routes.items()})
            for run in contenders.values():
                run()
            times = {n: [] for n in contenders}
            for r in range(args.rounds):
                names = list(contenders)
                names = names[r % len(names) :] + names[: r % len(names)]
                for n in names:
                    start = clock()
                    contenders[n]()
                    times[n].append((clock() - start) * 1e3)
            ms = {n: statistics.median(v) for n, v in times.items()}
            print(f"{cell_cls.__name__} {mode}:")
            for n, v in ms.items():
                extra = ""
                if n in firsts:
                    extra = (f"  first call {firsts[n]:.2f} s, first at a new length "
                             f"{new_length[n]:.2f} s")  # fmt: skip
                print(f"  {n:<14} {v:8.1f} ms  x{v / ms['torch.nn.LSTM']:.2f}{extra}", flush=True)


if __name__ == "__main__":
    main()
