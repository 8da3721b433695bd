"""Compiled (Numba) kernels of the fast TE solver: its projection step in one pass, its largest sparse product
on every core.

``solve_fast`` prices every active path each iteration (a paths x links 0/1 matrix times two or three columns
of link prices), then moves each pair's traffic towards its cheapest path. The step takes a dozen NumPy
passes over the active paths; ``projection_step`` takes one. SciPy prices the paths on one core;
``path_sums`` does the same sums in the same order with the paths split over the cores. Both give SciPy's
and NumPy's bits, so the solver's decisions depend neither on Numba nor on the core count (tests/test_te.py).
On one core the compiled product is no faster than SciPy's, so small products and single-threaded processes
stay with SciPy. Gathering the active columns in place instead of slicing the matrix was tried and was
slower: the slice is read a few times, contiguously. Figures: BENCHMARKS.md, issue 31.

Numba is imported, and the kernels loaded from its cache, on first use: that costs 0.2-0.45 s, more than a
whole solve on a 200-router network, so a one-off solve uses them only on instances with at least
``WORTH_LOADING`` path-link entries (Kdl has 30 million, Cogentco 0.7 million); the failure analysis, which
solves hundreds of times, always does. Numba's threads run on its ``workqueue`` layer unless
``NUMBA_THREADING_LAYER`` says otherwise: the layer it would pick here, GNU OpenMP, kills a process forked
after it ran, and ``reoptimise_failures`` forks its workers after solving the base routing. ``workqueue``
takes one caller at a time, so only the main thread uses it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
from types import SimpleNamespace

import numpy as np

AVAILABLE = importlib.util.find_spec("numba") is not None
#: Instances with fewer path-link entries solve faster than Numba loads: a one-off solve leaves them to NumPy.
WORTH_LOADING = 1 << 22
#: Matrices with fewer entries are left to SciPy on one core: below this, waking the threads costs what they save.
PARALLEL_ENTRIES = 1 << 18


def wanted(compiled: bool | None, entries: int) -> bool:
    """Whether to use the kernels: as the caller says, or (None) where Numba is installed and the instance has
    at least ``WORTH_LOADING`` path-link entries."""
    return AVAILABLE and entries >= WORTH_LOADING if compiled is None else compiled


def use_one_core() -> None:
    """Keep this process's products on one core: for worker processes that already share the cores."""
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)


def _path_sums(indptr, indices, columns):  # pragma: no cover - compiled
    n_paths, m = len(indptr) - 1, columns.shape[1]
    out = np.zeros((n_paths, m))
    for q in _prange(n_paths):
        for k in range(indptr[q], indptr[q + 1]):
            e = indices[k]
            for c in range(m):
                out[q, c] += columns[e, c]
    return out


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


_prange = range  # numba.prange once Numba is loaded (a plain range to Python)


@functools.cache
def _compiled() -> SimpleNamespace:
    """Numba, and the kernels compiled (or loaded from its cache), on first use."""
    global _prange
    import numba

    if not os.environ.get("NUMBA_THREADING_LAYER"):
        numba.config.THREADING_LAYER = "workqueue"
    _prange = numba.prange
    return SimpleNamespace(numba=numba,
                           path_sums=numba.njit(cache=True, nogil=True, parallel=True)(_path_sums),
                           step=numba.njit(cache=True, nogil=True)(_projection_step))


def load() -> None:
    """Load Numba and the kernels now (say, before forking workers that will use them)."""
    _compiled()


def worthwhile(entries: int) -> bool:
    """Whether a product over a matrix of ``entries`` entries should run here on several cores: Numba has more
    than one thread in this process, this is the main thread, and the matrix is big enough to pay for waking
    the threads (on one core SciPy's product is as fast as a compiled one). Needs Numba."""
    return (entries >= PARALLEL_ENTRIES and _compiled().numba.get_num_threads() > 1
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
    return _compiled().path_sums(indptr, indices, np.ascontiguousarray(columns, dtype=np.float64))


def projection_step(starts: np.ndarray, cost: np.ndarray, curvature: np.ndarray, xa: np.ndarray,
                    boldness: float, other_cost: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One scaled projection step of ``solve_fast`` in one pass over the pairs (``starts``: each pair's first
    path; needs Numba): (the cheapest path cost per pair, the move ``dx`` per path, and the cheapest
    ``other_cost`` per pair where one is given). The NumPy version in ``solve_fast`` takes a dozen passes and
    gives the same bits."""
    other = np.zeros(0) if other_cost is None else other_cost
    cheapest, dx, other_cheapest = _compiled().step(starts, cost, curvature, xa, float(boldness), other)
    return cheapest, dx, None if other_cost is None else other_cheapest
