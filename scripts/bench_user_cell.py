"""How fast a cell a user writes (no hand-written kernel) can run: a peephole LSTM (Gers &
Schmidhuber 2000) with its input projection hoisted out of the time loop (one matmul for all
steps) and its step compiled by ``torch.compile``, against ``torch.nn.LSTM`` of the same size.

    python scripts/bench_user_cell.py            # run twice: the second run shows the warm
                                                 # start from inductor's on-disk cache

Prints the first-call (compile) time, whether a new sequence length recompiles, and the
median train / inference ms (CPU time of the one thread doing the work) with the ratio.

Measured (B=32, I=64, H=128, T=100, torch 2.13.0+cpu, 1 thread, 2 cores shared with seven
other jobs, load ~12): train x2.13 (eager step) / x2.47 (compiled step) torch.nn.LSTM,
inference x2.23 / x2.56; first call 293 s cold and 28 s warm (inductor's cache) for train,
14 s / 5 s for inference; no new graph for a new length. On this CPU compiling the step does
not beat running it eagerly: the per-step call overhead of the compiled graph outweighs the
fused gate pass, so the route to LSTM speed for a user cell is a hand-written kernel.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

B, I, H, T = 32, 64, 128, 100


class PeepholeLSTM(nn.Module):
    r"""LSTM with peepholes: :math:`i, f` read :math:`c_{t-1}`, :math:`o` reads :math:`c_t`."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        bound = hidden_size**-0.5
        self.weight_ih = nn.Parameter(
            torch.empty(4 * hidden_size, input_size).uniform_(-bound, bound)
        )
        self.weight_hh = nn.Parameter(
            torch.empty(4 * hidden_size, hidden_size).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        self.peephole = nn.Parameter(torch.empty(3, hidden_size).uniform_(-bound, bound))

    def forward(self, x: Tensor, step) -> Tensor:
        xp = F.linear(x.transpose(0, 1), self.weight_ih, self.bias)  # hoisted: (T, B, 4H)
        h = c = x.new_zeros(x.shape[0], self.weight_hh.shape[1])
        outs = []
        for xp_t in xp.unbind(0):
            h, c = step(xp_t, h, c, self.weight_hh, self.peephole)
            outs.append(h)
        return torch.stack(outs, 1)


def step(xp_t: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, p: Tensor):
    i, f, g, o = torch.addmm(xp_t, h, w_hh.t()).chunk(4, dim=-1)
    i = torch.sigmoid(i + p[0] * c)
    f = torch.sigmoid(f + p[1] * c)
    c = f * c + i * torch.tanh(g)
    h = torch.sigmoid(o + p[2] * c) * torch.tanh(c)
    return h, c


compiled_step = torch.compile(step, dynamic=False)


def runner(module, x, train, *args):
    def run():
        if train:
            for p in module.parameters():
                p.grad = None
            module(x, *args)[0].sum().backward()
        else:
            with torch.no_grad():
                module(x, *args)

    return run


def main() -> None:
    torch.set_num_threads(1)
    clock = time.thread_time
    torch.manual_seed(0)
    cell, ref = PeepholeLSTM(I, H), nn.LSTM(I, H, batch_first=True)
    x = torch.randn(B, T, I)
    for mode in ("train", "inference"):
        train = mode == "train"
        start = time.perf_counter()
        runner(cell, x, train, compiled_step)()
        first = time.perf_counter() - start
        frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        runner(cell, torch.randn(B, T // 2 + 7, I), train, compiled_step)()  # a new length
        new = torch._dynamo.utils.counters["stats"]["unique_graphs"] - frames
        contenders = {
            "torch.nn.LSTM": runner(ref, x, train),
            "eager step": runner(cell, x, train, step),
            "compiled step": runner(cell, x, train, compiled_step),
        }
        times = {n: [] for n in contenders}
        for r in range(7):
            names = list(contenders)[r % 3 :] + list(contenders)[: r % 3]
            for n in names:
                t0 = clock()
                contenders[n]()
                times[n].append((clock() - t0) * 1e3)
        ms = {n: statistics.median(v) for n, v in times.items()}
        print(f"{mode}: first call {first:.1f} s (compile), new graphs for a new length: {new}")
        for n, v in ms.items():
            print(f"  {n:<14} {v:7.1f} ms  x{v / ms['torch.nn.LSTM']:.2f}")


if __name__ == "__main__":
    main()
