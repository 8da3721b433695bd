"""Exact TE by linear programming with HiGHS: the path LP (MLU or flow) and the edge-based optimum."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from netpilot.optimize import highs
from netpilot.optimize.te.problem import Routing, TEProblem


def _pair_rows(problem: TEProblem) -> sp.csr_matrix:
    q = problem.paths.n_paths
    return sp.csr_matrix((np.ones(q), (problem.paths.path_pair, np.arange(q))), shape=(problem.paths.n_pairs, q))


def solve_lp(problem: TEProblem, objective: str = "mlu", *, time_limit: float | None = None) -> Routing:
    """The optimal routing over the path set; its certificate comes from the LP duals."""
    started = time.perf_counter()
    finite = np.isfinite(problem.capacity)
    links = np.flatnonzero(finite)
    weighted = (problem.incidence[links] @ sp.diags(problem.path_demand)).tocsr()
    pair_rows = _pair_rows(problem)
    n_paths, n_links, n_pairs = problem.paths.n_paths, len(links), problem.paths.n_pairs
    if objective == "mlu":
        # Columns: x (fraction per path), then U. Rows: load_e - c_e U <= 0; sum_{p in k} x_p = 1.
        matrix = sp.vstack([
            sp.hstack([weighted, sp.csr_matrix(-problem.capacity[links][:, None])]),
            sp.hstack([pair_rows, sp.csr_matrix((n_pairs, 1))]),
        ])
        cost = np.zeros(n_paths + 1)
        cost[-1] = 1.0
        result = highs.solve(cost, matrix, np.concatenate([np.full(n_links, -np.inf), np.ones(n_pairs)]),
                             np.concatenate([np.zeros(n_links), np.ones(n_pairs)]),
                             np.zeros(n_paths + 1), np.concatenate([np.full(n_paths, np.inf), [np.inf]]),
                             time_limit=time_limit)
        x = problem.feasible(result.x[:n_paths])
        price = np.zeros(problem.arrays.n_links)
        price[links] = np.abs(result.row_dual[:n_links])
        bound = problem.mlu_lower_bound(price)
    elif objective == "flow":
        # Columns: x in [0, 1]. Rows: load_e <= c_e; sum_{p in k} x_p <= 1. Maximise carried traffic.
        matrix = sp.vstack([weighted, pair_rows])
        result = highs.solve(problem.path_demand, matrix, np.full(n_links + n_pairs, -np.inf),
                             np.concatenate([problem.capacity[links], np.ones(n_pairs)]),
                             np.zeros(n_paths), np.ones(n_paths), maximize=True, time_limit=time_limit)
        x = _cap_at_demand(problem, result.x)
        price = np.zeros(problem.arrays.n_links)
        price[links] = np.abs(result.row_dual[:n_links])
        bound = problem.flow_upper_bound(price) * problem.scale
    else:
        raise ValueError(f"unknown objective {objective!r}")
    if not result.optimal:
        raise RuntimeError(f"HiGHS stopped with status {result.status}")
    return Routing(problem, x, objective, "lp", time.perf_counter() - started, bound,
                   info={"highs_seconds": result.seconds, "link_price": price})


def _cap_at_demand(problem: TEProblem, x: np.ndarray) -> np.ndarray:
    """Solver round-off removed: fractions in [0, 1], at most the whole demand per pair."""
    x = np.clip(np.nan_to_num(x), 0.0, 1.0)
    return x / np.maximum(problem.pair_sum(x), 1.0)[problem.paths.path_pair]


def unrestricted_mlu(problem: TEProblem, *, time_limit: float | None = None) -> tuple[float, float]:
    """(optimal MLU over all paths, solve seconds): the edge-based multicommodity-flow LP.

    Commodities are aggregated by source, so the LP has one flow variable per (source, link).
    """
    started = time.perf_counter()
    arrays = problem.arrays
    n, links = arrays.n_nodes, np.flatnonzero(arrays.up)
    m = len(links)
    sources, inverse = np.unique(problem.pairs[:, 0], return_inverse=True)
    s_count = len(sources)
    # Net supply b[s, v]: +total out of s at s, -d at each destination.
    supply = np.zeros((s_count, n))
    np.add.at(supply, (inverse, problem.pairs[:, 1]), -problem.demand)
    supply[np.arange(s_count), sources] += np.bincount(inverse, weights=problem.demand, minlength=s_count)
    # Columns: f[s, e] for s in sources, e in links, then U.
    cols = np.arange(s_count * m).reshape(s_count, m)
    out_rows = (np.arange(s_count)[:, None] * n + arrays.src[links][None, :])
    in_rows = (np.arange(s_count)[:, None] * n + arrays.dst[links][None, :])
    conservation = sp.csr_matrix(
        (np.concatenate([np.ones(cols.size), -np.ones(cols.size)]),
         (np.concatenate([out_rows.ravel(), in_rows.ravel()]), np.concatenate([cols.ravel(), cols.ravel()]))),
        shape=(s_count * n, s_count * m + 1))
    capacity_rows = sp.csr_matrix(
        (np.concatenate([np.ones(cols.size), -problem.capacity[links]]),
         (np.concatenate([np.tile(np.arange(m), s_count), np.arange(m)]),
          np.concatenate([cols.ravel(), np.full(m, s_count * m)]))),
        shape=(m, s_count * m + 1))
    matrix = sp.vstack([conservation, capacity_rows])
    b = supply.ravel()
    cost = np.zeros(s_count * m + 1)
    cost[-1] = 1.0
    result = highs.solve(cost, matrix, np.concatenate([b, np.full(m, -np.inf)]), np.concatenate([b, np.zeros(m)]),
                         np.zeros(s_count * m + 1), np.full(s_count * m + 1, np.inf), time_limit=time_limit)
    if not result.optimal:
        raise RuntimeError(f"HiGHS stopped with status {result.status}")
    return float(result.objective), time.perf_counter() - started
