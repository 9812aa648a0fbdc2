"""Benchmark rnnkit's execution backends against torch.nn; ``--tasks`` adds the task loops.

Every cell runs under every backend that supports it, interleaved with the torch.nn reference
in the same process (one round = each contender once, the order rotated every round), after
warm-up; the figure is the median over rounds. ``train`` is forward + backward of
``outputs.sum()``; ``inference`` is the forward under ``torch.no_grad()``. The reference is
``torch.nn.{LSTM, GRU, RNN}`` of the same sizes for the standard cells and ``torch.nn.LSTM`` of
the same hidden size for the custom ones (GRU reset_before, Jordan, NARX).

    python scripts/bench.py --quick                  # < 3 min on 2 cores
    python scripts/bench.py --json bench.json        # the full table (docs/benchmarks.md)
    python scripts/bench.py --device cuda --quick    # on a GPU, against cuDNN (gpu_check.sh)

``--device cuda`` times the same table on the GPU, every clock read after
``torch.cuda.synchronize()`` (kernels run asynchronously), TF32 off on both sides unless
``--tf32``, plus the size GPUs are for (B=256, H=1024, T=1000). ``--tasks`` (CPU only) runs
``scripts/bench_tasks.py`` afterwards: every task's training loop against a plain PyTorch loop.

Rows written by ``--json``: ``{cell, backend, mode, B, I, H, T, ms, torch_ms, ratio}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import bench_tasks  # scripts/: the end-to-end section
import torch
from torch import Tensor, nn

from rnnkit.cells import (
    ElmanCell,
    GRUCell,
    JordanCell,
    LSTMCell,
    MGUCell,
    MinGRUCell,
    MinLSTMCell,
    NARXCell,
    SRUCell,
)
from rnnkit.layers import Recurrent
from rnnkit.layers.backends import BACKENDS, choose_backend, compiled


def _cells(I: int, H: int) -> dict[str, tuple[Callable[[], nn.Module], type, bool]]:
    """name -> (cell factory, torch.nn reference class, teacher-forced feedback)."""
    return {
        "lstm": (lambda: LSTMCell(I, H), nn.LSTM, False),
        "gru": (lambda: GRUCell(I, H), nn.GRU, False),
        "elman": (lambda: ElmanCell(I, H), nn.RNN, False),
        "gru_reset_before": (lambda: GRUCell(I, H, reset_after=False), nn.LSTM, False),
        "jordan": (lambda: JordanCell(I, H), nn.LSTM, False),
        "jordan_tf": (lambda: JordanCell(I, H), nn.LSTM, True),
        "narx": (lambda: NARXCell(I, H, H, input_delays=2, output_delays=2), nn.LSTM, False),
        "narx_tf": (lambda: NARXCell(I, H, H, input_delays=2, output_delays=2), nn.LSTM, True),
        # the shape the forecasting configs use: one output, ten taps each (closed loop)
        "narx_forecast": (
            lambda: NARXCell(I, 1, H, input_delays=10, output_delays=10),
            nn.LSTM,
            False,
        ),
        # MGU and SRU against the LSTM (they do a half and a quarter of its recurrent
        # arithmetic); minGRU against the GRU, minLSTM against the LSTM
        "mgu": (lambda: MGUCell(I, H), nn.LSTM, False),
        "sru": (lambda: SRUCell(I, H), nn.LSTM, False),
        "mingru": (lambda: MinGRUCell(I, H), nn.GRU, False),
        "minlstm": (lambda: MinLSTMCell(I, H), nn.LSTM, False),
    }


#: the cells of the ``scan`` backend, also timed over long sequences (``--long``)
SCAN_CELLS = ("mingru", "minlstm")
LONG_SIZES = [(32, 64, 128, 1000), (32, 64, 128, 4000)]


def _runner(module: nn.Module, x: Tensor, feedback: Tensor | None, train: bool) -> Callable:
    kwargs = {"feedback": feedback} if feedback is not None else {}

    def run() -> None:
        if train:
            for p in module.parameters():
                p.grad = None
            out = module(x, **kwargs)[0]
            out.sum().backward()
        else:
            with torch.no_grad():
                module(x, **kwargs)

    return run


_clock = time.perf_counter


def _clock_name() -> str:
    return {time.thread_time: "cpu", time.perf_counter: "wall"}.get(_clock, "cuda")


def _use_threads(threads: int, clock: str) -> None:
    """Run on ``threads`` intra-op threads. The CPU clock times the one thread doing the work
    (all of it, backward included, runs there at one thread): robust when other processes load
    the machine, but blind to a second thread, so at more threads it falls back to wall time."""
    global _clock
    torch.set_num_threads(threads)
    _clock = time.thread_time if clock == "cpu" and threads == 1 else time.perf_counter


def _cuda_clock() -> float:
    """Wall time once every queued kernel has finished (CUDA runs them asynchronously)."""
    torch.cuda.synchronize()
    return time.perf_counter()


def _time(contenders: dict[str, Callable], rounds: int, warmup: int) -> dict[str, float]:
    """Median ms of each contender over ``rounds`` interleaved, rotated rounds."""
    for run in contenders.values():
        for _ in range(warmup):
            run()
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = _clock()
            contenders[name]()
            times[name].append((_clock() - start) * 1e3)
    return {n: statistics.median(v) for n, v in times.items()}


def default_sizes(args) -> list[tuple[int, int, int, int]]:
    """``(B, I, H, T)`` to time: every ``--batch`` at every ``--hidden`` x ``--steps`` (or the
    three standard (H, T) points, one with ``--quick``), I = 64."""
    if args.hidden or args.steps:
        points = [(H, T) for H in args.hidden or [128] for T in args.steps or [100]]
    else:
        points = [(128, 100)] if args.quick else [(128, 100), (512, 100), (128, 500)]
    sizes = [(B, 64, H, T) for H, T in points for B in args.batch]
    if args.device == "cuda" and not args.hidden:  # where GPUs live: large batches, wide, long
        sizes.append((256, 64, 1024, 1000))
    return sizes


def bench_backends(args, sizes=None, only=None) -> list[dict]:
    if sizes is None:
        sizes = default_sizes(args)
    device = torch.device(args.device)
    rows = []
    for B, I, H, T in sizes:
        for name, (make, ref_cls, tf) in _cells(I, H).items():
            if (args.cells and name not in args.cells) or (only and name not in only):
                continue
            torch.manual_seed(0)
            cell = make().to(device)
            x = torch.randn(B, T, I, device=device)
            feedback = torch.randn(B, T, cell.output_size, device=device) if tf else None
            ref = ref_cls(I, H, batch_first=True).to(device)
            backends = [
                b for b in ("loop", "fused", "bptt", "native", "scan", "compiled")
                if BACKENDS[b][0](cell, feedback) and b in args.backends
                and not (b == "loop" and T > 100 and args.quick)
            ]  # fmt: skip
            for mode in ("train", "inference"):
                train = mode == "train"
                with torch.set_grad_enabled(train):
                    picked = choose_backend(cell, x.device, feedback)
                contenders = {"torch": _runner(ref, x, None, train)}
                for b in [*backends, "auto"]:
                    contenders[b] = _runner(Recurrent(cell, backend=b), x, feedback, train)
                if "compiled" in contenders:  # compile outside the timing; report its cost
                    start = time.perf_counter()
                    contenders["compiled"]()
                    compile_s = time.perf_counter() - start
                rounds = args.rounds if B * T * H <= 32 * 100 * 128 else max(3, args.rounds // 2)
                ms = _time(contenders, rounds, args.warmup)
                for b in [*backends, "auto"]:
                    row = dict(cell=name, backend=b, mode=mode, B=B, I=I, H=H, T=T,
                               threads=torch.get_num_threads(), clock=_clock_name(),
                               ms=round(ms[b], 2), torch_ms=round(ms["torch"], 2),
                               ratio=round(ms[b] / ms["torch"], 3))  # fmt: skip
                    if b == "auto":
                        row["picked"] = picked
                    if b == "compiled":
                        row["first_call_s"] = round(compile_s, 1)
                        row["compile_s"] = round(sum(compiled.COMPILE_SECONDS.values()), 1)
                    rows.append(row)
                    print(_fmt(row), flush=True)
    return rows


#: the cells of the streaming rows (``--stream``)
STREAM_CELLS = ("lstm", "gru", "elman", "gru_reset_before", "jordan", "narx", "narx_forecast")


def bench_stream(args) -> list[dict]:
    """Streaming inference: batch 1, one step a call, the state carried from call to call, T
    calls timed together. Ours: ``Recurrent.step`` (``auto``) and ``forward`` on a one-step
    chunk with ``state=``; the reference: the torch.nn module called on ``(1, 1, I)`` with its
    ``hx`` carried (``torch.nn.LSTM`` for the custom cells, as above)."""
    rows = []
    T, I = 100, 64
    for H in args.hidden or [128, 512]:
        for name, (make, ref_cls, tf) in _cells(I, H).items():
            if tf or name not in STREAM_CELLS or (args.cells and name not in args.cells):
                continue
            torch.manual_seed(0)
            layer = Recurrent(make(), backend="auto")
            ref = ref_cls(I, H, batch_first=True)
            xs = torch.randn(1, T, I).unbind(1)

            def ours_step(layer=layer, xs=xs):
                state = None
                for x_t in xs:
                    _, state = layer.step(x_t, state)

            def ours_chunk(layer=layer, xs=xs):
                state = None
                for x_t in xs:
                    _, state = layer(x_t[:, None], state=state)

            def reference(ref=ref, xs=xs):
                hx = None
                for x_t in xs:
                    _, hx = ref(x_t[:, None], hx)

            contenders = {"torch": reference, "step": ours_step, "forward": ours_chunk}
            with torch.no_grad():
                ms = _time(contenders, args.rounds, args.warmup)
            for b in ("step", "forward"):
                row = dict(cell=name, backend=b, mode="stream", B=1, I=I, H=H, T=T,
                           threads=torch.get_num_threads(), clock=_clock_name(),
                           ms=round(ms[b], 2), torch_ms=round(ms["torch"], 2),
                           ratio=round(ms[b] / ms["torch"], 3))  # fmt: skip
                rows.append(row)
                print(_fmt(row), flush=True)
    return rows


def _fmt(row: dict) -> str:
    extra = f"  (auto -> {row['picked']})" if "picked" in row else ""
    if "first_call_s" in row:
        extra = f"  (first call {row['first_call_s']} s)"
    return (
        f"{row['cell']:<17}{row['backend']:<9}{row['mode']:<10}"
        f"B={row['B']:<4}H={row['H']:<4} T={row['T']:<4} {row['ms']:>9.1f} ms  "
        f"torch {row['torch_ms']:>8.1f} ms  x{row['ratio']:.2f}{extra}"
    )


def markdown(rows: list[dict], e2e: list[dict] | None) -> str:
    """The rows as one markdown table per size and thread count: ms and ratio to torch.nn,
    train and inference."""
    lines = []
    rows = [r for r in rows if r["mode"] != "stream"]  # those are in summary()

    def point(r):
        return r["B"], r["I"], r["H"], r["T"], r.get("threads"), r.get("clock")

    points = sorted({point(r) for r in rows}, key=lambda p: (p[3], p[2], p[0], p[4] or 0))
    for B, I, H, T, threads, clock in points:
        where = "" if threads is None else f", threads {threads}, {clock} clock"
        lines += [f"\n**B={B}, I={I}, H={H}, T={T}{where}**\n",
                  "| cell | backend | train ms | torch.nn | ratio | inference ms | torch.nn "
                  "| ratio |", "|---|---|--:|--:|--:|--:|--:|--:|"]  # fmt: skip
        at = [r for r in rows if point(r) == (B, I, H, T, threads, clock)]
        for cell in dict.fromkeys(r["cell"] for r in at):
            for backend in dict.fromkeys(r["backend"] for r in at if r["cell"] == cell):
                by = {r["mode"]: r for r in at if r["cell"] == cell and r["backend"] == backend}
                tr, inf = by.get("train"), by.get("inference")
                name = backend
                if backend == "auto":
                    picks = dict.fromkeys(r["picked"] for r in by.values())
                    name = f"**auto** ({'/'.join(picks)})"
                cols = []
                for r in (tr, inf):
                    cols += ["", "", ""] if r is None else [
                        f"{r['ms']:.1f}", f"{r['torch_ms']:.1f}", f"{r['ratio']:.2f}"
                    ]  # fmt: skip
                lines.append(f"| {cell} | {name} | " + " | ".join(cols) + " |")
    if e2e:
        lines.append("\n**End to end (steps/s)**\n\n" + bench_tasks.markdown(e2e))
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """``auto`` (and the streaming rows) as ratios to torch.nn, one line per cell and thread
    count, one column per (B, H, T): ``train / inference`` (``stream``: ``step``)."""
    picked = [r for r in rows if r["backend"] == "auto" or r["mode"] == "stream"]
    cols = sorted({(r["H"], r["T"], r["B"]) for r in picked if r["mode"] != "stream"})
    lines = ["| cell (auto picks) | threads | " + " | ".join(
        f"B={B} H={H} T={T}" for H, T, B in cols) + " | stream B=1 (step) |",
        "|---|--:|" + "--:|" * (len(cols) + 1)]  # fmt: skip
    keys = dict.fromkeys((r["cell"], r.get("threads")) for r in picked)
    for cell, threads in keys:
        at = [r for r in picked if r["cell"] == cell and r.get("threads") == threads]
        cells = []
        for H, T, B in cols:
            by = {r["mode"]: r for r in at if (r["H"], r["T"], r["B"]) == (H, T, B)}
            cells.append(" / ".join(f"{by[m]['ratio']:.2f}" for m in ("train", "inference")
                                    if m in by) or "")  # fmt: skip
        stream = [f"H{r['H']} {r['ratio']:.2f}" for r in at
                  if r["mode"] == "stream" and r["backend"] == "step"]  # fmt: skip
        picks = "/".join(dict.fromkeys(r["picked"] for r in at if "picked" in r))
        lines.append(f"| {cell} ({picks}) | {threads} | " + " | ".join(cells)
                     + f" | {', '.join(stream)} |")  # fmt: skip
    return "\n".join(lines)


def _use_cuda(args) -> dict:
    """Check for a GPU (else one ``error:`` line and exit 1), set TF32 on or off on both sides
    (cuDNN allows it by default, plain matmuls do not: off, both compute float32), and
    return what the JSON's meta records about the GPU."""
    if args.clock == "cpu":
        sys.exit("error: --device cuda times the GPU's work: use --clock wall")
    if not torch.cuda.is_available():
        sys.exit(
            f"error: --device cuda: no CUDA GPU is available (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda})"
        )
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32
    meta = dict(device="cuda", gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(), tf32=args.tf32)  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in meta.items()) + "; clocks read after synchronize()")
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one size, fewer rounds (< 3 min)")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[2],
        help="intra-op thread counts to sweep (torch.set_num_threads), e.g. --threads 1 2",
    )  # fmt: skip
    parser.add_argument(
        "--batch", type=int, nargs="+", default=[32], help="batch sizes to sweep, e.g. 1 32 256"
    )
    parser.add_argument("--hidden", type=int, nargs="+", help="hidden sizes (with --steps)")
    parser.add_argument("--steps", type=int, nargs="+", help="sequence lengths T (with --hidden)")
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="wall: elapsed time; cpu: CPU time of the one thread doing the work, robust when "
        "other processes load the machine (at one thread; more threads are timed by the wall)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per size")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--cells", nargs="*", help="only these cells (default: all)")
    parser.add_argument(
        "--backends", nargs="*", default=["loop", "fused", "bptt", "native", "scan"],
        help="backends besides auto (add 'compiled' to time torch.compile; slow to compile)",
    )  # fmt: skip
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu",
        help="cuda: the table on the GPU against cuDNN, synchronised timing, plus B=256, "
        "H=1024, T=1000",
    )  # fmt: skip
    parser.add_argument("--tf32", action="store_true", help="cuda: allow TF32 on both sides")
    parser.add_argument(
        "--tasks", action="store_true",
        help="also every task's training loop against a plain loop (scripts/bench_tasks.py)",
    )  # fmt: skip
    bench_tasks.add_arguments(parser)
    parser.add_argument(
        "--long", action="store_true",
        help=f"also time {', '.join(SCAN_CELLS)} at B, I, H, T = {LONG_SIZES}",
    )  # fmt: skip
    parser.add_argument(
        "--stream", action="store_true",
        help="also time streaming inference: batch 1, a step a call (Recurrent.step)",
    )  # fmt: skip
    parser.add_argument("--stream-only", action="store_true", help="only the streaming rows")
    parser.add_argument("--markdown", help="also write the table as markdown to this file")
    parser.add_argument(
        "--render", nargs="+", help="only render earlier --json files, rows joined (--markdown)"
    )
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 5 if args.quick else 9
    global _clock
    if args.render:
        saved = {"rows": [], "end_to_end": None}
        for path in args.render:
            with open(path) as f:
                run = json.load(f)
            saved["rows"] += run["rows"]
            saved["end_to_end"] = run.get("end_to_end") or saved["end_to_end"]
        text = markdown(saved["rows"], saved.get("end_to_end")) + "\n\n" + summary(saved["rows"])
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(text + "\n")
        print(text)
        return
    device_meta = {}
    if args.device == "cuda":
        device_meta = _use_cuda(args)
    rows = []
    start = time.perf_counter()
    for threads in args.threads:
        _use_threads(threads, args.clock)
        if args.device == "cuda":
            _clock = _cuda_clock
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {_clock_name()} "
              f"clock, ms = median of {args.rounds} interleaved rounds; ratio = ms / torch.nn ms "
              "(lower is faster)")  # fmt: skip
        if not args.stream_only:
            rows += bench_backends(args)
        if args.stream or args.stream_only:
            rows += bench_stream(args)
        if args.long:
            rows += bench_backends(args, sizes=LONG_SIZES, only=SCAN_CELLS)
    e2e = bench_tasks.bench_tasks(args) if args.tasks and args.device == "cpu" else None
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(rows, e2e) + "\n")
    if args.json:
        meta = dict(torch=torch.__version__, threads=args.threads, quick=args.quick,
                    clock=args.clock, **device_meta)  # fmt: skip
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "end_to_end": e2e}, f, indent=1)


if __name__ == "__main__":
    main()
