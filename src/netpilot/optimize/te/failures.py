"""Single-failure analysis of a routing: what each link failure does to it, re-optimised answers, and a
routing that stays below a utilisation bound under every single failure (FFC-style robust LP)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from netpilot.model.kernels import cores
from netpilot.model.network import NetworkArrays
from netpilot.optimize import highs
from netpilot.optimize.te import kernels
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


@dataclass(frozen=True)
class Reoptimised:
    """One failure scenario re-optimised: the base routing with the fractions of the pairs that moved replaced."""

    base: Routing
    failed: np.ndarray
    paths: np.ndarray      # path ids whose fractions changed from the base routing
    fractions: np.ndarray  # their new fractions
    mlu: float
    bound: float           # lower bound on the best MLU under this failure (scope "touched": moving those pairs)
    iterations: int
    moved_pairs: int

    @property
    def x(self) -> np.ndarray:
        x = self.base.x.copy()
        x[self.paths] = self.fractions
        return x

    def routing(self) -> Routing:
        """The whole routing under this failure (one fraction per path of the base problem)."""
        return Routing(self.base.problem, self.x, "mlu", "fast", 0.0, self.bound, self.iterations,
                       info={"failed_links": self.failed, "moved_pairs": self.moved_pairs})


def reoptimise_failures(routing: Routing, groups: np.ndarray | None = None, *, tolerance: float = 0.01,
                        hot_margin: float = 0.01, rounds: int = 3, scope: str = "whole",
                        workers: int | None = None,
                        ) -> tuple[FailureReport, list[Reoptimised]]:
    """For every single failure, the routing re-optimised, warm-started from the proportional reroute.

    A reroute already within ``tolerance`` of the base routing's bound (its link prices bound every failure
    too, less the demand the failure strands) is kept as it is: certified, no solve. Otherwise the fast
    solver runs from the reroute, over the whole network (``scope='whole'``) or only over the pairs that lose a
    path plus those sending over a link within ``hot_margin`` of the worst one (``scope='touched'``; the rest is
    fixed background load; when its answer makes other links the hottest, their pairs join and it goes again,
    at most ``rounds`` times, and its ``bound`` holds for moving those pairs only). Measured on Cogentco the
    touched scope was no faster — the solver's own active set is already those pairs, and iterations dominate —
    so the whole network is the default (BENCHMARKS.md, issue 31).

    Scenarios are independent: with ``workers`` > 1 (default: the CPUs, when there are enough scenarios to pay
    for starting processes) they run in forked worker processes. Not for two threads at once: it limits the
    process's BLAS threads while it runs.
    """
    started = time.perf_counter()
    problem = routing.problem
    scenarios = _scenarios(problem, groups)
    if workers is None:
        workers = min(cores(), max(1, len(scenarios) // 32))
    if scope not in ("whole", "touched"):
        raise ValueError(f"scope must be 'whole' or 'touched', got {scope!r}")
    # Compiled where the solves together are worth loading Numba for (Cogentco's 490 are; Abilene's 30 are not),
    # and loaded once here, not once per forked worker.
    compiled = kernels.wanted(None, len(problem.paths.path_links) * len(scenarios))
    if compiled:
        kernels.load()
    context = _ScenarioContext.of(routing, tolerance, hot_margin, rounds, scope, compiled)
    # One BLAS thread: its products here are link- and pair-sized dots, too small to share, and an idle OpenBLAS
    # thread spins on the other core; with two workers the spinning took the whole gain of the second (the same
    # 490 Cogentco failures: 16.3 s on two workers against 11.5 s on one; 6.0 s with this). Forked workers
    # inherit the limit.
    with threadpool_limits(limits=1, user_api="blas"):
        answers = _solve_all(context, scenarios, workers)
    mlu = np.array([a[2] for a in answers])
    worst = np.array([a[-1] for a in answers], dtype=np.int64) if answers else np.zeros(0, dtype=np.int64)
    stranded = np.array([a[-2] for a in answers]) if answers else np.zeros(0)
    results = [Reoptimised(routing, failed, *answer[:6]) for failed, answer in zip(scenarios, answers)]
    return FailureReport(scenarios, mlu, worst, stranded, time.perf_counter() - started), results


def _solve_all(context: _ScenarioContext, scenarios: list[np.ndarray], workers: int) -> list[tuple]:
    """Each scenario's answer (``_ScenarioContext.solve``), in order, from forked workers or this process."""
    if workers > 1 and len(scenarios) > 1 and "fork" in multiprocessing.get_all_start_methods():
        # Handed out one small chunk at a time, the likely slowest first (those cutting the most loaded links:
        # their re-optimisations take the most iterations), so that no worker is left with a long one at the
        # end. Each scenario's answer does not depend on which worker or in what order it runs.
        failed_load = np.array([(context.base_load[f] * context.inv_cap[f]).max(initial=0.0) for f in scenarios])
        order = np.argsort(-failed_load, kind="stable")
        chunk = max(1, min(8, len(scenarios) // (8 * workers)))
        batches = [order[i:i + chunk] for i in range(0, len(order), chunk)]
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_install, initargs=(context,))
        with pool:
            parts = list(pool.map(_run_chunk, [[scenarios[i] for i in batch] for batch in batches]))
        answers: list[tuple] = [None] * len(scenarios)  # type: ignore[list-item]
        for batch, part in zip(batches, parts):
            for i, answer in zip(batch, part):
                answers[i] = answer
    else:
        answers = [context.solve(failed) for failed in scenarios]
    return answers


@dataclass(frozen=True)
class _ScenarioContext:
    """What every scenario of one base routing shares (computed once, inherited by worker processes)."""

    problem: TEProblem
    base: Routing
    x: np.ndarray
    base_load: np.ndarray
    inv_cap: np.ndarray
    tolerance: float
    hot_margin: float
    rounds: int
    scope: str
    pair_bound_terms: np.ndarray  # (P,) each pair's share of the base routing's duality bound
    bound_budget: float
    compiled: bool = False  # solve with the Numba kernels

    @classmethod
    def of(cls, routing: Routing, tolerance: float, hot_margin: float, rounds: int = 3,
           scope: str = "whole", compiled: bool = False) -> _ScenarioContext:
        problem = routing.problem
        finite = np.isfinite(problem.capacity)
        inv_cap = np.where(finite, 1.0 / np.where(finite, problem.capacity, 1.0), 0.0)
        problem.incidence_csc  # noqa: B018 - built once here, not once per scenario (or per worker)
        # The base prices bound every failure too (a failure only takes paths away), less the pairs it strands.
        price = np.where(finite, np.maximum(routing.info.get("link_price", np.zeros(len(finite))), 0.0), 0.0)
        terms = problem.demand * problem.pair_min(problem.incidence_t @ price)
        budget = float(price[finite] @ problem.capacity[finite])
        return cls(problem, routing, routing.x, problem.loads(routing.x), inv_cap, tolerance, hot_margin, rounds, scope,
                   terms, budget, compiled)

    def _pairs_on(self, links: np.ndarray, x: np.ndarray) -> np.ndarray:
        incidence, paths = self.problem.incidence, self.problem.paths
        on = np.concatenate([incidence.indices[incidence.indptr[e]:incidence.indptr[e + 1]] for e in links]) \
            if len(links) else np.zeros(0, dtype=np.int64)
        return np.unique(paths.path_pair[on[x[on] > 0]])

    def solve(self, failed: np.ndarray) -> tuple:
        """(changed path ids, their fractions, MLU, bound, iterations, pairs moved, stranded Mbit/s, worst link)."""
        problem, paths = self.problem, self.problem.paths
        incidence = problem.incidence
        dead = np.unique(np.concatenate([incidence.indices[incidence.indptr[e]:incidence.indptr[e + 1]]
                                         for e in failed]))
        hit = np.unique(paths.path_pair[dead])
        alive = np.ones(paths.n_paths, dtype=bool)
        alive[dead] = False
        # Proportional reroute of the pairs the failure hits: the starting point, and the load to find hot links.
        x = self.x.copy()
        x[dead] = 0.0
        cols = _columns(paths, hit)
        x[cols] = _renormalise(x[cols], alive[cols], np.repeat(np.arange(len(hit)), paths.paths_per_pair[hit]))
        counts = paths.paths_per_pair[hit]
        survivors = np.add.reduceat(alive[cols].astype(np.int64), np.cumsum(counts) - counts) if len(hit) else counts
        stranded_pairs = hit[survivors == 0]
        stranded = float(problem.volume[stranded_pairs].sum())
        a_csc = problem.incidence_csc
        load = self.base_load + a_csc[:, cols] @ (problem.path_demand[cols] * (x[cols] - self.x[cols]))
        moving = np.setdiff1d(hit, stranded_pairs)
        iterations = 0
        round_bound = 0.0
        bound = 0.0  # valid for the whole network under this failure, so for any restriction of it too
        if self.bound_budget > 0:
            bound = float(self.pair_bound_terms.sum() - self.pair_bound_terms[stranded_pairs].sum()) \
                / self.bound_budget
        u = load * self.inv_cap
        u[failed] = 0.0
        if float(u.max(initial=0.0)) <= bound * (1 + self.tolerance):
            # The proportional reroute is already certified: nothing to re-optimise.
            changed = np.flatnonzero(x != self.x)
            return changed, x[changed], float(u.max(initial=0.0)), bound, 0, 0, stranded, int(np.argmax(u))
        if self.scope == "whole":
            # As from the base routing itself: its fractions (rerouted the same way), prices and step sizes.
            answer = solve_fast(problem, start=self.base, failed_links=failed, tolerance=self.tolerance,
                                compiled=self.compiled)
            u = answer.info["load"] * self.inv_cap
            u[failed] = 0.0
            changed = np.flatnonzero(answer.x != self.x)
            owners = paths.path_pair[changed]  # sorted, as ``changed`` is: count the runs, no need to sort again
            moved = int(np.count_nonzero(owners[1:] != owners[:-1])) + 1 if len(owners) else 0
            return (changed, answer.x[changed], float(u.max(initial=0.0)), max(bound, answer.bound),
                    answer.iterations, moved, stranded, int(np.argmax(u)))
        for _ in range(self.rounds):
            u = load * self.inv_cap
            u[failed] = 0.0
            top = float(u.max(initial=0.0))
            hot = np.flatnonzero(u >= top * (1 - self.hot_margin))
            hot_pairs = self._pairs_on(hot, x)
            multi = paths.paths_per_pair[hot_pairs] > 1
            joined = np.union1d(moving, hot_pairs[multi])
            if len(joined) == 0 or (iterations and len(joined) == len(moving)):
                break  # nothing can move, or the hottest links' pairs are all re-optimised already
            moving = joined
            cols = _columns(paths, moving)
            background = load - a_csc[:, cols] @ (problem.path_demand[cols] * x[cols])
            sub = problem.restricted(moving, np.maximum(background, 0.0))
            answer = solve_fast(sub, x0=x[cols], failed_links=failed, tolerance=self.tolerance,
                                compiled=self.compiled)
            iterations += answer.iterations
            # A round's bound holds for its own set of moving pairs only; the last round's set is the largest.
            round_bound = answer.bound
            load = background + a_csc[:, cols] @ (problem.path_demand[cols] * answer.x)
            x[cols] = answer.x
        if iterations:
            bound = max(bound, round_bound)
        u = load * self.inv_cap
        u[failed] = 0.0
        changed = np.flatnonzero(x != self.x)
        worst = int(np.argmax(u)) if len(u) else -1
        return changed, x[changed], float(u.max(initial=0.0)), bound, iterations, len(moving), stranded, worst


def _install(context: _ScenarioContext) -> None:
    # A forked worker inherits ``context`` without pickling it (tens of MB of path matrices); it keeps it here
    # for the chunks it is sent. Only worker processes set this.
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = context
    kernels.use_one_core()  # the workers already share the cores between them


_WORKER_CONTEXT: _ScenarioContext | None = None  # one per worker process, set by its initializer


def _run_chunk(scenarios: list[np.ndarray]) -> list[tuple]:
    assert _WORKER_CONTEXT is not None
    return [_WORKER_CONTEXT.solve(failed) for failed in scenarios]


def _columns(paths, pairs: np.ndarray) -> np.ndarray:
    """The path ids of ``pairs``, pair by pair."""
    counts = paths.paths_per_pair[pairs]
    return np.repeat(paths.pair_ptr[pairs] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


def _renormalise(x: np.ndarray, alive: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Fractions on surviving paths scaled to sum to one per pair (evenly where the survivors carried none)."""
    n = int(owner.max()) + 1 if len(owner) else 0
    x = np.where(alive, x, 0.0)
    total = np.bincount(owner, weights=x, minlength=n)
    n_alive = np.bincount(owner, weights=alive.astype(float), minlength=n)
    even = (total <= 0) & (n_alive > 0)
    x = np.where(even[owner] & alive, 1.0 / np.maximum(n_alive, 1)[owner], x)
    total = np.bincount(owner, weights=x, minlength=n)
    return np.where(total[owner] > 0, x / np.where(total > 0, total, 1.0)[owner], 0.0)


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
