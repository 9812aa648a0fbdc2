r"""1-nearest-neighbour baselines for series classification and regression: Euclidean and DTW.

Series are arrays ``(N, T, C)`` (``C`` channels, equal length). The Euclidean distance sums the
squared differences over time and channels. Dynamic time warping (Sakoe & Chiba 1978), without a
warping window (UCR's "DTW, full window"), with the squared pointwise cost summed over channels
(the dependent multivariate DTW of Shokoohi-Yekta et al. 2017):

.. math::
    D_{i,j} = \lVert a_i - b_j \rVert^2 + \min(D_{i-1,j-1}, D_{i-1,j}, D_{i,j-1}),
    \qquad D_{0,0} = 0,\ D_{i,0} = D_{0,j} = \infty

and the distance is :math:`D_{T_a,T_b}` (its square root ranks neighbours the same way). The
recursion runs along anti-diagonals, vectorised over every (query, reference) pair at once.
Ties go to the reference that comes first.
"""

from __future__ import annotations

import numpy as np


def euclidean_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(Nq, Nr)`` between series ``(Nq, T, C)``, ``(Nr, T, C)``."""
    q = queries.reshape(len(queries), -1)
    r = references.reshape(len(references), -1)
    return ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)


def dtw_distances(
    queries: np.ndarray, references: np.ndarray, max_cells: int = 2**24
) -> np.ndarray:
    """Unconstrained DTW costs ``(Nq, Nr)`` between series ``(Nq, Ta, C)`` and ``(Nr, Tb, C)``.

    Queries go in blocks of at most ``max_cells`` cost-matrix cells (memory ~ 8 bytes each).
    """
    nr, ta, tb = len(references), queries.shape[1], references.shape[1]
    block = max(1, max_cells // (nr * ta * tb))
    return np.concatenate(
        [_dtw_block(queries[s : s + block], references) for s in range(0, len(queries), block)]
    )


def _dtw_block(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    nq, ta, _ = queries.shape
    nr, tb, _ = references.shape
    pairs = nq * nr
    # cost[p, i, j] for every pair p = (query, reference), flattened: (Nq*Nr, Ta, Tb)
    cost = ((queries[:, None, :, None, :] - references[None, :, None, :, :]) ** 2).sum(-1)
    cost = cost.reshape(pairs, ta, tb)
    # D on anti-diagonal d = i + j (1-based i, j), indexed by i in 0..Ta (i = 0: the border)
    prev2 = np.full((pairs, ta + 1), np.inf)  # diagonal d - 2
    prev1 = np.full((pairs, ta + 1), np.inf)  # diagonal d - 1
    prev2[:, 0] = 0.0  # D[0, 0], on diagonal 0
    for d in range(2, ta + tb + 1):
        current = np.full((pairs, ta + 1), np.inf)
        i = np.arange(max(1, d - tb), min(ta, d - 1) + 1)  # rows with 1 <= j = d - i <= Tb
        best = np.minimum(prev2[:, i - 1], np.minimum(prev1[:, i - 1], prev1[:, i]))
        current[:, i] = cost[:, i - 1, d - i - 1] + best
        prev2, prev1 = prev1, current
    return prev1[:, ta].reshape(nq, nr)


def nearest_neighbour(distances: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The target of each query's nearest reference (``argmin`` keeps the first of ties)."""
    return np.asarray(targets)[np.argmin(distances, axis=1)]


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Per-channel z-scores with the training series' mean and deviation, for every array."""
    mu = train.mean(axis=(0, 1), keepdims=True)
    sigma = train.std(axis=(0, 1), keepdims=True)
    sigma[sigma == 0] = 1.0
    return [(a - mu) / sigma for a in (train, *others)]
