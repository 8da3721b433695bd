"""Compiled kernels of the fast TE solver (its projection step; its path pricing on every core), loaded lazily.

``solve_fast`` prices every active path each iteration (a paths x links sparse matrix times two or three
columns of link prices), then moves each pair's traffic towards its cheapest path. The step takes a dozen
NumPy passes over the active paths; ``projection_step`` takes one. SciPy prices the paths on one core;
``path_sums`` does the same sums in the same order with the paths split over the cores. Both give NumPy's and
SciPy's bits, so the solver's answers depend neither on Numba nor on the core count (tests/test_te.py). On
one core the compiled product is no faster than SciPy's, so small products and single-threaded processes stay
with SciPy. Gathering the active columns in place instead of slicing the matrix was tried and was slower: the
slice is read a few times, contiguously. Figures: BENCHMARKS.md, issue 31.

Numba is imported, and the kernels loaded from its cache, on first use (``_numba_kernels``): that costs
0.2-0.45 s, more than a whole solve on a 200-router network, so a one-off solve uses them only on instances
with at least ``WORTH_LOADING`` path-link entries (Kdl has 30 million, Cogentco 0.7 million); the failure
analysis, which solves hundreds of times, always does, and loads them before it forks its workers.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType

import numpy as np

AVAILABLE = importlib.util.find_spec("numba") is not None
#: Instances with fewer path-link entries solve faster than Numba loads: a one-off solve leaves them to NumPy.
WORTH_LOADING = 1 << 22
#: Matrices with fewer entries are left to SciPy on one core: below this, waking the threads costs what they save.
PARALLEL_ENTRIES = 1 << 18


def wanted(compiled: bool | None, entries: int) -> bool:
    """Whether to use the kernels: as the caller says, or (None) where Numba is installed and the instance has
    at least ``WORTH_LOADING`` path-link entries."""
    if compiled and not AVAILABLE:
        raise RuntimeError("the compiled TE kernels need Numba: pip install 'netpilot[fast]'")
    return AVAILABLE and entries >= WORTH_LOADING if compiled is None else compiled


def _compiled() -> ModuleType:
    return importlib.import_module("netpilot.optimize.te._numba_kernels")


def load() -> None:
    """Compile, or load from Numba's cache, every kernel now: before forking workers that will use them, so
    that each does not load them again."""
    _compiled().warm_up()


def use_one_core() -> None:
    """Keep this process's products on one core: for worker processes that already share the cores."""
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)


def worthwhile(entries: int) -> bool:
    """Whether a product over a matrix of ``entries`` entries should run here on several cores: Numba has more
    than one thread in this process, this is the main thread (Numba's ``workqueue`` layer takes one caller at a
    time), and the matrix is big enough to pay for waking the threads. Needs Numba."""
    return (entries >= PARALLEL_ENTRIES and _compiled().numba.get_num_threads() > 1
            and threading.current_thread() is threading.main_thread())


def path_sums(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(Q, m): for each column q of a (L, Q) CSC matrix (``indptr``, ``indices``, ``data``), the rows of
    ``columns`` (L, m) at its entries times the entries, summed in stored order, columns split over Numba's
    threads (needs Numba). SciPy's ``matrix.T @ columns``, bit for bit.

    >>> import scipy.sparse as sp
    >>> a = sp.csc_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]))
    >>> path_sums(a.indptr, a.indices, a.data, np.array([[1.0, 10.0], [2.0, 20.0]])).tolist()
    [[3.0, 30.0], [2.0, 20.0]]
    """
    return _compiled().path_sums(indptr, indices, data, np.ascontiguousarray(columns, dtype=np.float64))


def projection_step(starts: np.ndarray, cost: np.ndarray, curvature: np.ndarray, xa: np.ndarray,
                    boldness: float, other_cost: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One scaled projection step of ``solve_fast`` in one pass over the pairs (``starts``: each pair's first
    path; needs Numba): (the cheapest path cost per pair, the move ``dx`` per path, and the cheapest
    ``other_cost`` per pair where one is given). ``fast.numpy_step`` is the same step in NumPy passes, with the
    same bits."""
    other = np.zeros(0) if other_cost is None else other_cost
    cheapest, dx, other_cheapest = _compiled().projection_step(starts, cost, curvature, xa, float(boldness),
                                                               other)
    return cheapest, dx, None if other_cost is None else other_cheapest
