"""``seed_everything``: seed python, numpy and torch as Lightning does, without Lightning.

The same calls in the same order as ``lightning.seed_everything`` (``random.seed``,
``numpy.random.seed``, ``torch.manual_seed``), so a seeded run draws the same random streams
under either driver, and the same environment variables: ``PL_GLOBAL_SEED`` (the seed, for
processes started later) and ``PL_SEED_WORKERS`` (``1`` with ``workers=True``). With workers
seeded, :func:`worker_init_function` gives each data-loader worker Lightning's seeds: its
python, numpy and torch generators start from a hash of (base seed, worker id, rank), so two
workers never share a stream. rnnkit's :class:`~rnnkit.engine.Trainer` installs it on a loader
that has no ``worker_init_fn`` of its own (:func:`seed_workers`).

:func:`capture` and :func:`restore` give the state of every global generator as plain data (a
checkpoint loads it with ``weights_only=True``); :func:`isolate_rng` puts it back after a block
(the sanity check, as under Lightning, draws nothing that training sees).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from rnnkit.errors import ConfigError

__all__ = [
    "capture",
    "isolate_rng",
    "restore",
    "seed_everything",
    "seed_workers",
    "worker_init_function",
]

MAX_SEED = 2**32 - 1  # numpy accepts 0 .. 2^32 - 1
_MASK64 = (1 << 64) - 1


def seed_everything(seed: int | None = None, workers: bool = False) -> int:
    """Seed ``random``, ``numpy`` and ``torch`` (CPU and every GPU) with ``seed``; return it.

    ``seed=None`` reads ``PL_GLOBAL_SEED`` (0 when unset), as Lightning does.

    Raises:
        ConfigError: a seed outside ``[0, 2^32 - 1]`` or not an integer.
    """
    if seed is None:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be an integer, got {seed!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed is {seed}, expected 0 <= seed <= {MAX_SEED}")
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PL_SEED_WORKERS"] = str(int(workers))
    return seed


def _seed_sequence(base_seed: int, worker_id: int, rank: int, count: int) -> list[int]:
    """``count`` 64-bit seeds from (base seed, worker, rank): a MurmurHash3 finalizer mixes the
    three into one number, then the LCG ``x <- 6364136223846793005 x + 1 (mod 2^64)`` steps."""
    x = ((base_seed << 32) | (worker_id << 16) | rank) & _MASK64
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK64
    x ^= x >> 33
    seeds = []
    for _ in range(count):
        x = (x * 6364136223846793005 + 1) & _MASK64
        seeds.append(x)
    return seeds


def worker_init_function(worker_id: int, rank: int = 0) -> None:
    """Seed a data-loader worker's generators as Lightning's ``pl_worker_init_function``.

    Torch seeds worker ``i`` with ``base + i``; the base is backed out so that all its bits
    feed the hash of (base, worker, rank).
    """
    base_seed = torch.initial_seed() - worker_id
    seeds = _seed_sequence(base_seed, worker_id, rank, count=4)
    torch.manual_seed(seeds[0])
    random.seed((seeds[1] << 32) | seeds[2])
    np.random.seed(np.random.SeedSequence([base_seed, worker_id, rank]).generate_state(4))


def seed_workers(loader: Any) -> Any:
    """Give ``loader`` :func:`worker_init_function` when ``seed_everything(workers=True)`` ran
    and it has worker processes but no ``worker_init_fn`` of its own; return it."""
    if (
        int(os.environ.get("PL_SEED_WORKERS", 0))
        and getattr(loader, "num_workers", 0) > 0
        and getattr(loader, "worker_init_fn", True) is None
    ):
        loader.worker_init_fn = worker_init_function
    return loader


def capture() -> dict[str, Any]:
    """The state of every global generator, as plain data (tensors, ints, lists)."""
    np_state = np.random.get_state(legacy=True)  # ('MT19937', keys, pos, has_gauss, gauss)
    version, internal, gauss = random.getstate()
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def isolate_rng() -> Iterator[None]:
    """Run a block without changing any global generator's state."""
    state = capture()
    try:
        yield
    finally:
        restore(state)
