"""Single-failure analysis of a routing: what each link failure does to it, re-optimised answers, and a
routing that stays below a utilisation bound under every single failure (FFC-style robust LP)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from netpilot.model.network import NetworkArrays
from netpilot.optimize import highs
from netpilot.optimize.te.fast import solve_fast
from netpilot.optimize.te.problem import Routing, TEProblem


def failure_groups(arrays: NetworkArrays, *, bidirectional: bool = True) -> np.ndarray:
    """(L,) scenario id per link. A fibre cut takes both directions, so by default the k-th link u->v and
    the k-th link v->u share a scenario; ``bidirectional=False`` fails each directed link alone."""
    n_links = arrays.n_links
    if not bidirectional:
        return np.arange(n_links)
    low, high = np.minimum(arrays.src, arrays.dst), np.maximum(arrays.src, arrays.dst)
    # Rank of each link among links with the same direction and ends, so parallel links pair up in order.
    directed_key = (arrays.src * arrays.n_nodes + arrays.dst)
    order = np.lexsort((np.arange(n_links), directed_key))
    sorted_keys = directed_key[order]
    group_start = np.concatenate([[0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1])
    rank_sorted = np.arange(n_links) - np.repeat(group_start, np.diff(np.concatenate([group_start, [n_links]])))
    rank = np.empty(n_links, dtype=np.int64)
    rank[order] = rank_sorted
    key = (low * arrays.n_nodes + high) * (n_links + 1) + rank
    _, group = np.unique(key, return_inverse=True)
    return group


@dataclass(frozen=True)
class FailureReport:
    """Per scenario (one per failure group that carries a link that is up)."""

    failed: list[np.ndarray]     # link ids failing together
    mlu: np.ndarray              # MLU after the failure
    worst_link: np.ndarray       # the most utilised link after it (-1 if none)
    stranded: np.ndarray         # Mbit/s of demand left with no path
    seconds: float

    @property
    def worst(self) -> int:
        """Index of the scenario with the highest MLU."""
        return int(np.argmax(self.mlu))


def _scenarios(problem: TEProblem, groups: np.ndarray | None) -> list[np.ndarray]:
    arrays = problem.arrays
    if groups is None:
        groups = failure_groups(arrays)
    up = np.flatnonzero(arrays.up)
    order = up[np.argsort(groups[up], kind="stable")]
    cuts = np.flatnonzero(np.diff(groups[order])) + 1
    return np.split(order, cuts)


def evaluate_failures(routing: Routing, groups: np.ndarray | None = None) -> FailureReport:
    """The routing under every single failure, traffic on failed paths moved to the pair's surviving paths
    in proportion to their fractions (evenly if they carried none); a pair with no surviving path is
    stranded."""
    started = time.perf_counter()
    problem, x = routing.problem, routing.x
    paths, incidence, a_csc = problem.paths, problem.incidence, problem.incidence_csc
    finite = np.isfinite(problem.capacity)
    inv_cap = np.where(finite, 1.0 / np.where(finite, problem.capacity, 1.0), 0.0)
    base = problem.loads(x)
    scenarios = _scenarios(problem, groups)
    mlu = np.zeros(len(scenarios))
    worst = np.full(len(scenarios), -1, dtype=np.int64)
    stranded = np.zeros(len(scenarios))
    for s, failed in enumerate(scenarios):
        dead = np.unique(np.concatenate([incidence.indices[incidence.indptr[e]:incidence.indptr[e + 1]]
                                         for e in failed]))
        pairs = np.unique(paths.path_pair[dead])
        counts = paths.pair_ptr[pairs + 1] - paths.pair_ptr[pairs]
        cols = np.repeat(paths.pair_ptr[pairs] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        alive = np.ones(len(cols), dtype=bool)
        alive[np.searchsorted(cols, dead)] = False
        owner = np.repeat(np.arange(len(pairs)), counts)
        old = x[cols]
        new = np.where(alive, old, 0.0)
        total = np.bincount(owner, weights=new, minlength=len(pairs))
        n_alive = np.bincount(owner, weights=alive.astype(float), minlength=len(pairs))
        even = (total <= 0) & (n_alive > 0)
        new = np.where(even[owner] & alive, 1.0 / np.maximum(n_alive, 1)[owner], new)
        total = np.bincount(owner, weights=new, minlength=len(pairs))
        new = np.where(total[owner] > 0, new / np.where(total > 0, total, 1.0)[owner], 0.0)
        stranded[s] = float(problem.volume[pairs] @ (n_alive == 0))
        load = base + a_csc[:, cols] @ (problem.demand[pairs][owner] * (new - old))
        u = load * inv_cap
        u[failed] = 0.0
        worst[s] = int(np.argmax(u))
        mlu[s] = float(u[worst[s]])
    return FailureReport(scenarios, mlu, worst, stranded, time.perf_counter() - started)


def reoptimise_failures(routing: Routing, groups: np.ndarray | None = None, *,
                        tolerance: float = 0.01) -> tuple[FailureReport, list[Routing]]:
    """For every single failure, the fast solver warm-started from the proportional reroute of ``routing``."""
    started = time.perf_counter()
    problem = routing.problem
    scenarios = _scenarios(problem, groups)
    results = [solve_fast(problem, start=routing, failed_links=failed, tolerance=tolerance) for failed in scenarios]
    mlu = np.array([r.mlu for r in results])
    worst = np.array([int(np.argmax(r.problem.utilisation(r.x))) for r in results])
    stranded = np.array([float(problem.volume @ (problem.pair_sum(r.x) <= 0)) for r in results])
    return FailureReport(scenarios, mlu, worst, stranded, time.perf_counter() - started), results


def solve_robust_lp(problem: TEProblem, groups: np.ndarray | None = None, *,
                    time_limit: float | None = None) -> Routing:
    """Minimise the MLU that holds under no failure and every single failure, with proportional rerouting.

    Forward Fault Correction (Liu et al., SIGCOMM 2014): reserve bandwidth ``a_p`` on each path such that the
    paths that survive any one failure still reserve the whole demand; rerouting in proportion to ``a`` then
    never puts more than ``a_p`` on a path, so ``sum a_p <= U c_e`` on every link bounds every scenario.
    A pair whose paths all share a failure cannot be protected against it; it is reserved for the no-failure
    case only, and ``info['unprotected_pairs']`` counts them.
    """
    started = time.perf_counter()
    arrays, paths = problem.arrays, problem.paths
    if groups is None:
        groups = failure_groups(arrays)
    incidence = problem.incidence.tocoo()
    # (pair, failure group) -> bitmask of the pair's paths that group kills.
    path_of_entry = incidence.col
    pair_of_entry = paths.path_pair[path_of_entry]
    local = path_of_entry - paths.pair_ptr[pair_of_entry]
    if paths.paths_per_pair.max(initial=0) > 62:
        raise ValueError("the robust LP supports at most 62 paths per pair")
    key = pair_of_entry * (int(groups.max()) + 1) + groups[incidence.row]
    order = np.argsort(key, kind="stable")
    key, bits = key[order], np.left_shift(np.int64(1), local[order].astype(np.int64))
    starts = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1])
    masks = np.bitwise_or.reduceat(bits, starts) if len(bits) else bits
    scenario_pair = key[starts] // (int(groups.max()) + 1)
    unique_rows = np.unique(np.stack([scenario_pair, masks], axis=1), axis=0)
    full = (np.left_shift(np.int64(1), paths.paths_per_pair[unique_rows[:, 0]]) - 1)
    protectable = unique_rows[:, 1] != full
    unprotected = np.unique(unique_rows[~protectable, 0])
    rows = unique_rows[protectable]
    # Survivor rows: sum over the pair's paths not in the mask of a_p >= d.
    row_pair = rows[:, 0]
    counts = paths.paths_per_pair[row_pair]
    row_index = np.repeat(np.arange(len(rows)), counts)
    local_path = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    survives = (np.right_shift(rows[row_index, 1], local_path) & 1) == 0
    col = paths.pair_ptr[row_pair][row_index] + local_path
    survivor = sp.csr_matrix((np.ones(int(survives.sum())), (row_index[survives], col[survives])),
                             shape=(len(rows), paths.n_paths))
    n_paths, n_pairs = paths.n_paths, paths.n_pairs
    pair_rows = sp.csr_matrix((np.ones(n_paths), (paths.path_pair, np.arange(n_paths))), shape=(n_pairs, n_paths))
    finite = np.isfinite(problem.capacity)
    links = np.flatnonzero(finite)
    load_rows = problem.incidence[links]
    matrix = sp.vstack([
        sp.hstack([load_rows, sp.csr_matrix(-problem.capacity[links][:, None])]),
        sp.hstack([pair_rows, sp.csr_matrix((n_pairs, 1))]),
        sp.hstack([survivor, sp.csr_matrix((len(rows), 1))]),
    ]).tocsr()
    demand = problem.demand
    lower = np.concatenate([np.full(len(links), -np.inf), demand, demand[row_pair]])
    upper = np.concatenate([np.zeros(len(links)), np.full(n_pairs + len(rows), np.inf)])
    cost = np.zeros(n_paths + 1)
    cost[-1] = 1.0
    result = highs.solve(cost, matrix, lower, upper, np.zeros(n_paths + 1), np.full(n_paths + 1, np.inf),
                         time_limit=time_limit)
    if not result.optimal:
        raise RuntimeError(f"HiGHS stopped with status {result.status}")
    reserved = np.maximum(result.x[:n_paths], 0.0)
    x = problem.feasible(reserved)
    return Routing(problem, x, "mlu", "robust-lp", time.perf_counter() - started, 0.0,
                   info={"guaranteed_mlu": float(result.x[-1]), "unprotected_pairs": len(unprotected),
                         "reserved": reserved * problem.scale})
