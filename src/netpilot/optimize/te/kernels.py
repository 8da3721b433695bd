"""Compiled (Numba) path costs for the fast TE solver: its largest sparse product, on every core.

``solve_fast`` prices every active path each iteration: a (paths x links) 0/1 matrix times two or three
columns of link prices. SciPy does that on one core; this kernel does the same sums in the same order (per
path, its links as the matrix stores them) with the paths split over the cores, so the answer is bit for bit
SciPy's and the solver's decisions depend neither on Numba nor on the core count (tests/test_te.py). On Kdl
(754 routers, up to 375,000 active paths of 28 links) it is 1.7x SciPy's product on two cores, 1.3x over a
whole solve's products. On one core it is no faster than SciPy, so small products and single-threaded
processes stay with SciPy. Gathering the active columns in place instead of slicing the matrix was tried and
was slower: the slice is read a few times, contiguously. (BENCHMARKS.md, issue 31.)

Numba's threads run on its ``workqueue`` layer unless ``NUMBA_THREADING_LAYER`` says otherwise: the layer it
would pick here, GNU OpenMP, kills a process forked after it ran, and ``reoptimise_failures`` forks its
workers after solving the base routing. ``workqueue`` takes one caller at a time, so only the main thread
uses it.
"""

from __future__ import annotations

import os
import threading

import numpy as np

try:
    import numba
except ImportError:  # the optional extra is not installed: SciPy's product runs
    numba = None

AVAILABLE = numba is not None
#: Matrices with fewer entries are left to SciPy on one core: below this, waking the threads costs what they save.
PARALLEL_ENTRIES = 1 << 18

if AVAILABLE and not os.environ.get("NUMBA_THREADING_LAYER"):
    numba.config.THREADING_LAYER = "workqueue"


def wanted(compiled: bool | None) -> bool:
    """Whether a caller's ``compiled`` argument asks for the kernels (None: where Numba is installed)."""
    return AVAILABLE if compiled is None else compiled


def use_one_core() -> None:
    """Keep this process's products on one core: for worker processes that already share the cores."""
    if AVAILABLE:
        numba.set_num_threads(1)


def _path_sums(indptr, indices, columns):  # pragma: no cover - compiled
    n_paths, m = len(indptr) - 1, columns.shape[1]
    out = np.zeros((n_paths, m))
    for q in numba.prange(n_paths):
        for k in range(indptr[q], indptr[q + 1]):
            e = indices[k]
            for c in range(m):
                out[q, c] += columns[e, c]
    return out


_parallel = numba.njit(cache=True, nogil=True, parallel=True)(_path_sums) if AVAILABLE else None


def worthwhile(entries: int) -> bool:
    """Whether a product over a matrix of ``entries`` entries should run here on several cores: Numba is
    installed, it has more than one thread in this process, this is the main thread, and the matrix is big
    enough to pay for waking the threads (on one core SciPy's product is as fast as a compiled one)."""
    return (AVAILABLE and entries >= PARALLEL_ENTRIES and numba.get_num_threads() > 1
            and threading.current_thread() is threading.main_thread())


def path_sums(indptr: np.ndarray, indices: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(Q, m): for each column q of a (L, Q) 0/1 CSC matrix (``indptr``, ``indices``), the rows of ``columns``
    (L, m) at its entries, summed in stored order, columns split over Numba's threads (needs Numba). SciPy's
    ``matrix.T @ columns``, bit for bit.

    >>> import scipy.sparse as sp
    >>> a = sp.csc_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]))
    >>> path_sums(a.indptr, a.indices, np.array([[1.0, 10.0], [2.0, 20.0]])).tolist()
    [[3.0, 30.0], [2.0, 20.0]]
    """
    return _parallel(indptr, indices, np.ascontiguousarray(columns, dtype=np.float64))


def _projection_step(starts, cost, curvature, xa, boldness, other_cost):  # pragma: no cover - compiled
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
        target = first_path
        for j in range(first_path, end):
            if cost[j] - low <= 0:
                target = j
                break
        gained = 0.0
        for j in range(first_path, end):
            excess = cost[j] - low
            step = 0.0
            if xa[j] > 0 and excess > 0:
                step = min(xa[j], boldness * excess / max(curvature[j] + curvature[target], 1e-300))
            dx[j] = -step
            gained += step
        dx[target] += gained
    return cheapest, dx, other_cheapest


_step = numba.njit(cache=True, nogil=True)(_projection_step) if AVAILABLE else None


def projection_step(starts: np.ndarray, cost: np.ndarray, curvature: np.ndarray, xa: np.ndarray,
                    boldness: float, other_cost: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One scaled projection step of ``solve_fast`` in one pass over the pairs (``starts``: each pair's first
    path; needs Numba): (the cheapest path cost per pair, the move ``dx`` per path, and the cheapest
    ``other_cost`` per pair where one is given). The NumPy version in ``solve_fast`` takes a dozen passes and
    gives the same bits."""
    other = np.zeros(0) if other_cost is None else other_cost
    cheapest, dx, other_cheapest = _step(starts, cost, curvature, xa, float(boldness), other)
    return cheapest, dx, None if other_cost is None else other_cheapest
