"""The Numba-compiled bodies of ``optimize.te.kernels`` (imported only when they are used: Numba costs 0.1 s to
import and its cached kernels 0.1-0.3 s to load)."""

from __future__ import annotations

import os

import numba
import numpy as np

# GNU OpenMP, the layer Numba would pick here, kills a process forked after it ran when the child starts a
# parallel kernel; ``workqueue`` does not. An operator's NUMBA_THREADING_LAYER wins.
if not os.environ.get("NUMBA_THREADING_LAYER"):
    numba.config.THREADING_LAYER = "workqueue"


@numba.njit(cache=True, nogil=True, parallel=True)
def path_sums(indptr, indices, data, columns):  # pragma: no cover - compiled
    """Per column q of a CSC matrix, ``data``-weighted rows of ``columns`` at its entries, in stored order."""
    n_paths, m = len(indptr) - 1, columns.shape[1]
    out = np.zeros((n_paths, m))
    for q in numba.prange(n_paths):
        for k in range(indptr[q], indptr[q + 1]):
            e, weight = indices[k], data[k]
            for c in range(m):
                out[q, c] += weight * columns[e, c]
    return out


@numba.njit(cache=True, nogil=True)
def projection_step(starts, cost, curvature, xa, boldness, other_cost):  # pragma: no cover - compiled
    """See ``kernels.projection_step``: per pair, its cheapest cost (and ``other_cost``'s), then the moves."""
    n_pairs, n_paths = len(starts), len(cost)
    cheapest = np.empty(n_pairs)
    other_cheapest = np.empty(n_pairs if len(other_cost) else 0)
    dx = np.empty(n_paths)
    for i in range(n_pairs):
        first_path, end = starts[i], starts[i + 1] if i + 1 < n_pairs else n_paths
        low = np.inf
        for j in range(first_path, end):
            if cost[j] < low:
                low = cost[j]
        cheapest[i] = low
        if len(other_cost):
            other_low = np.inf
            for j in range(first_path, end):
                if other_cost[j] < other_low:
                    other_low = other_cost[j]
            other_cheapest[i] = other_low
        target = first_path  # the first cheapest path, as NumPy's step picks it
        for j in range(first_path, end):
            if cost[j] - low <= 0:
                target = j
                break
        gained = 0.0  # added in path order, as np.bincount adds
        for j in range(first_path, end):
            excess = cost[j] - low
            step = 0.0
            if xa[j] > 0 and excess > 0:
                step = min(xa[j], boldness * excess / max(curvature[j] + curvature[target], 1e-300))
            dx[j] = -step
            gained += step
        dx[target] += gained
    return cheapest, dx, other_cheapest


def warm_up() -> None:
    """Compile, or load from Numba's cache, every signature ``solve_fast`` calls with: a worker process forked
    afterwards then finds them ready instead of each loading them again."""
    starts = np.array([0, 2], dtype=np.int64)
    wide = np.ones((4, 3))
    for other in (np.zeros(0), wide[:, 2]):
        projection_step(starts, np.ones(4), wide[:, 1], np.full(4, 0.5), 1.0, other)
    for index in (np.int32, np.int64):
        path_sums(np.array([0, 1, 2], dtype=index), np.array([0, 1], dtype=index), np.ones(2), np.ones((2, 3)))
