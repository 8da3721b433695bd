"""IGP metrics for plain shortest-path ECMP routing (OSPF, IS-IS): load evaluation and Fortz–Thorup local search."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netpilot.model.network import NetworkArrays
from netpilot.model.routing import EcmpRouting, ecmp_flows
from netpilot.model.ties import tie_key
from netpilot.optimize.te.paths import PathSet
from netpilot.optimize.te.problem import Routing, TEProblem

MAX_METRIC = 65535


def ecmp(problem: TEProblem, metric: np.ndarray, up: np.ndarray | None = None) -> EcmpRouting:
    """ECMP routing of ``problem``'s (normalised) demands under ``metric``."""
    return ecmp_flows(problem.arrays, metric, problem.pairs, problem.demand, up)


def ecmp_utilisation(problem: TEProblem, metric: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    loads = ecmp(problem, metric, up).loads
    finite = np.isfinite(problem.capacity)
    return np.where(finite, loads / np.where(finite, problem.capacity, 1.0), 0.0)


def hop_metrics(arrays: NetworkArrays) -> np.ndarray:
    return np.ones(arrays.n_links, dtype=np.int64)


def inverse_capacity_metrics(arrays: NetworkArrays, reference: float | None = None) -> np.ndarray:
    """Cisco's default: reference bandwidth over link bandwidth (reference: the fastest link), at least 1."""
    reference = float(arrays.capacity.max()) if reference is None else reference
    return np.clip(np.round(reference / np.maximum(arrays.capacity, 1e-9)), 1, MAX_METRIC).astype(np.int64)


def _score(u: np.ndarray) -> tuple[float, float]:
    """MLU first; then the Fortz–Thorup-like sum of squares of utilisation to break ties toward headroom.
    Rounded, so that metrics routing the traffic alike tie whatever order the loads were summed in (a move
    that changes nothing must not count as an improvement)."""
    return tie_key(u.max(initial=0.0)), tie_key((u * u).sum())


def bound_excess(u: np.ndarray, allowed: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per bounded case (rows ``u[1:]``, see ``search_metrics``), how far its MLU is over what it may reach: 0
    within ``allowed``, or when it stays at ``reference``."""
    mlu = u[1:].max(axis=1, initial=0.0)
    return np.where(np.abs(mlu - reference) > 1e-9, np.maximum(mlu - allowed, 0.0), 0.0)


#: What a unit of excess over a bounded case's bound costs in the search, in units of MLU now. At a quarter, the
#: search keeps a move that breaks a bound when it buys at least four times as much MLU now: plans that keep
#: every bound and relieve the network are often only reached that way. Callers take a plan only when it breaks
#: no bound (``bound_excess``).
EXCESS_WEIGHT = 0.25


def bounded_score(u: np.ndarray, allowed: np.ndarray, reference: np.ndarray) -> tuple[tuple, np.ndarray]:
    """The score of a plan whose rows of utilisation ``u`` are the network as it runs and then bounded cases
    (see ``search_metrics``), and the row whose hottest link the search should work on.

    The running network's MLU plus ``EXCESS_WEIGHT`` times how far the cases are over their bounds, then its
    sum of squares. The hottest link is that of the case furthest over its bound, or the running network's
    when none is."""
    excess = bound_excess(u, allowed, reference)
    worst = int(np.argmax(excess)) if len(excess) else 0
    row = u[1 + worst] if len(excess) and excess[worst] > 0 else u[0]
    mlu, squares = _score(u[0])
    return (tie_key(mlu + EXCESS_WEIGHT * float(excess.sum())), squares), row


def optimise_metrics(problem: TEProblem, *, start: np.ndarray | None = None, max_evaluations: int = 400,
                     time_limit: float | None = 20.0, seed: int = 0, symmetric: bool = True) -> Routing:
    """IGP metrics that make plain ECMP routing's MLU small, by local search (Fortz and Thorup, 2000).

    Starts from the best of ``start``, hop count and inverse capacity; see ``search_metrics`` for the moves.
    ``symmetric`` keeps both directions of a link at the same metric, which is what most operators configure.
    """
    started = time.perf_counter()
    arrays = problem.arrays
    candidates = [hop_metrics(arrays), inverse_capacity_metrics(arrays)]
    if start is not None:
        candidates.insert(0, np.asarray(start, dtype=np.int64))
    search = search_metrics(lambda m: ecmp_utilisation(problem, m), candidates,
                            partner=reverse_links(arrays) if symmetric else None,
                            max_evaluations=max_evaluations, time_limit=time_limit, seed=seed)
    return routing_from_metrics(problem, search.best, method="igp", seconds=time.perf_counter() - started,
                                info={"evaluations": search.evaluations})


@dataclass(frozen=True)
class MetricSearch:
    """What ``search_metrics`` found: the best metrics by its score, the routings it evaluated, and with bounds
    the metrics of lowest MLU among those it evaluated that keep every bound (``within_bounds``; None without
    bounds, or where none it evaluated kept them: a planner that gives the running metrics as a candidate always
    has one, since they leave every case where it is)."""

    best: np.ndarray
    evaluations: int
    within_bounds: np.ndarray | None = None


def search_metrics(utilisation_of: Callable[[np.ndarray], np.ndarray], candidates: list[np.ndarray], *,
                   partner: np.ndarray | None = None, frozen: np.ndarray | None = None, max_evaluations: int = 400,
                   time_limit: float | None = 20.0, seed: int = 0,
                   bounds: tuple[np.ndarray, np.ndarray] | None = None, threads: int = 1
                   ) -> MetricSearch:
    """Fortz–Thorup local search over IGP metrics for any utilisation model.

    Starts from the best of ``candidates``. Each round takes the most utilised link and tries heavier metrics
    on it (enough to push some of its traffic onto another equal-cost path), and a lighter metric on one of
    the least utilised links, keeping a change when MLU (then the sum of squared utilisation) improves.
    ``partner[e]`` (or -1) is the reverse direction kept at the same metric; ``frozen`` links never change.

    With ``bounds`` = (allowed, reference), ``utilisation_of`` gives one row per case: the network as it runs,
    then cases (failures, say) that each must keep its MLU within ``allowed[f]`` unless it leaves it at
    ``reference[f]`` (its MLU today). The search then minimises the first row's MLU plus a weighted excess over
    the bounds (see ``bounded_score``), so its best may break a bound it passed through on the way; whether it
    keeps every bound is for the caller to check, and ``within_bounds`` is the best it saw that does.

    With ``threads`` > 1, a round's next trials are evaluated that many at a time, side by side (the routing
    kernels release the GIL), and taken in order as one at a time would: a trial after the first that
    improves is not counted, so the search and its result are the same (with a ``time_limit``, the clock is read
    once a batch, so up to ``threads`` trials may end past it). ``utilisation_of`` must then be safe to call from
    several threads at once."""
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            return _search(utilisation_of, candidates, partner, frozen, max_evaluations, time_limit, seed, bounds,
                           lambda ms: list(pool.map(utilisation_of, ms)), threads)
    return _search(utilisation_of, candidates, partner, frozen, max_evaluations, time_limit, seed, bounds,
                   lambda ms: [utilisation_of(m) for m in ms], 1)


def _search(utilisation_of: Callable[[np.ndarray], np.ndarray], candidates: list[np.ndarray],
            partner: np.ndarray | None, frozen: np.ndarray | None, max_evaluations: int, time_limit: float | None,
            seed: int, bounds: tuple[np.ndarray, np.ndarray] | None,
            route: Callable[[list[np.ndarray]], list[np.ndarray]], batch: int) -> MetricSearch:
    """``search_metrics``' rounds; ``route`` gives ``utilisation_of`` of several metric vectors, ``batch`` at a
    time."""
    started = time.perf_counter()
    n_links = len(candidates[0])
    rng = np.random.default_rng(seed)
    partner = np.full(n_links, -1) if partner is None else partner
    frozen = np.zeros(n_links, dtype=bool) if frozen is None else frozen

    within: list = [None, None]  # (score, metrics): the best evaluated that keeps every bound

    def evaluate(m: np.ndarray, u: np.ndarray | None = None) -> tuple[tuple, np.ndarray]:
        u = utilisation_of(m) if u is None else u
        if bounds is None:
            return _score(u), u
        score, row = bounded_score(u, *bounds)
        # Within every bound its score is its MLU and sum of squares, comparable with any other such plan's.
        if (within[0] is None or score < within[0]) and not bound_excess(u, *bounds).any():
            within[:] = [score, m]
        return score, row

    scored = [(*evaluate(m), m) for m in candidates]
    best_score, best_row, best = min(scored, key=lambda item: item[0])
    best = best.copy()
    evaluations = len(candidates)
    tabu: set[tuple[int, int]] = set()
    stale = 0
    while evaluations < max_evaluations and (time_limit is None or time.perf_counter() - started < time_limit):
        u = np.where(frozen, -np.inf, best_row)
        ranked = np.argsort(-u, kind="stable")  # ties in the same order on every machine
        movable = int((~frozen).sum())
        if movable == 0:
            break
        hot = ranked[min(stale % 5, movable - 1)] if stale < 25 else rng.choice(np.flatnonzero(~frozen))
        trials = []
        for factor in (1.15, 1.4, 2.0, 3.0):
            trials.append((hot, int(min(MAX_METRIC, max(best[hot] + 1, round(best[hot] * factor))))))
        cool = ranked[movable - 1 - rng.integers(max(1, movable // 3))]
        trials.append((cool, int(max(1, best[cool] // 2))))
        # The round's trials in order, each once (small metrics give the same value for several factors).
        todo: list[tuple[int, int]] = []
        for link, value in trials:
            if (link, value) not in tabu and value != best[link] and (link, value) not in todo:
                todo.append((link, value))
        improved = False
        for first in range(0, len(todo), batch):
            if time_limit is not None and time.perf_counter() - started >= time_limit:
                break
            metrics = []
            for link, value in todo[first:first + batch]:
                trial = best.copy()
                trial[link] = value
                if partner[link] >= 0 and not frozen[partner[link]]:
                    trial[partner[link]] = value
                metrics.append(trial)
            for (link, value), trial, u in zip(todo[first:first + batch], metrics, route(metrics), strict=True):
                score, row = evaluate(trial, u)
                evaluations += 1
                tabu.add((int(link), value))
                if score < best_score:
                    best_score, best_row, best, improved = score, row, trial, True
                    break
            if improved:
                break
        stale = 0 if improved else stale + 1
        if stale > 60:
            break
    return MetricSearch(best, evaluations, None if within[1] is None else within[1].copy())


def reverse_links(arrays: NetworkArrays) -> np.ndarray:
    """Per link, the first link in the opposite direction between the same nodes, or -1."""
    key = arrays.src * arrays.n_nodes + arrays.dst
    reverse_key = arrays.dst * arrays.n_nodes + arrays.src
    order = np.argsort(key, kind="stable")
    pos = np.searchsorted(key[order], reverse_key)
    pos = np.minimum(pos, len(order) - 1)
    found = key[order][pos] == reverse_key
    return np.where(found, order[pos], -1)


def routing_from_metrics(problem: TEProblem, metric: np.ndarray, *, method: str = "igp", seconds: float = 0.0,
                         info: dict | None = None) -> Routing:
    """The ECMP routing of ``metric`` as explicit paths with fractions (their product of per-node splits)."""
    routing = ecmp(problem, metric)
    paths, x = _enumerate_paths(problem, routing)
    igp_problem = problem.with_paths(paths)
    info = dict(info or {})
    info["metric"] = np.asarray(metric, dtype=np.int64)
    return Routing(igp_problem, x, "mlu", method, seconds, 0.0, info=info)


def _enumerate_paths(problem: TEProblem, routing: EcmpRouting) -> tuple[PathSet, np.ndarray]:
    """Every ECMP path of every pair, found breadth-first for all pairs at once."""
    arrays = problem.arrays
    target_row = np.searchsorted(routing.targets, problem.pairs[:, 1])
    dag_links = [np.flatnonzero(row) for row in routing.on_dag]
    # Out-links on the DAG per (target row, node), as CSR over rows t * n + u.
    n = arrays.n_nodes
    rows = np.concatenate([t * n + arrays.src[links] for t, links in enumerate(dag_links)]) if dag_links else []
    cols = np.concatenate(dag_links) if dag_links else []
    order = np.argsort(rows, kind="stable")
    rows, cols = np.asarray(rows)[order], np.asarray(cols)[order]
    ptr = np.searchsorted(rows, np.arange(len(routing.targets) * n + 1))

    # States: (pair, node, fraction, parent state, link taken).
    live = np.flatnonzero(~routing.unreachable)
    state_pair, state_node = live, problem.pairs[live, 0]
    state_frac = np.ones(len(live))
    parent = [np.full(len(live), -1)]
    taken = [np.full(len(live), -1)]
    pair_of, frac_of = [state_pair], [state_frac]
    offsets = [0]
    done_state: list[np.ndarray] = []
    total = len(live)
    for _ in range(n):
        at_target = state_node == problem.pairs[state_pair, 1]
        done_state.append(offsets[-1] + np.flatnonzero(at_target))
        keep = np.flatnonzero(~at_target)
        if len(keep) == 0:
            break
        key = target_row[state_pair[keep]] * n + state_node[keep]
        counts = ptr[key + 1] - ptr[key]
        src_state = np.repeat(keep, counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        edge = cols[np.repeat(ptr[key], counts) + within]
        new_pair = state_pair[src_state]
        new_frac = state_frac[src_state] * routing.share[target_row[new_pair], edge]
        parent.append(offsets[-1] + src_state)
        taken.append(edge)
        offsets.append(total)
        total += len(src_state)
        state_pair, state_node, state_frac = new_pair, arrays.dst[edge], new_frac
        pair_of.append(new_pair)
        frac_of.append(new_frac)
    parent_all, taken_all = np.concatenate(parent), np.concatenate(taken)
    pair_all, frac_all = np.concatenate(pair_of), np.concatenate(frac_of)
    finals = np.concatenate(done_state)
    finals = finals[np.lexsort((finals, pair_all[finals]))]
    # Walk each final state back to its start, collecting links (reversed).
    walks = []
    cur = finals.copy()
    while True:
        link = taken_all[cur]
        if (link < 0).all():
            break
        walks.append(np.where(link >= 0, link, -1))
        cur = np.where(link >= 0, parent_all[cur], cur)
    hop_matrix = np.stack(walks[::-1], axis=1) if walks else np.zeros((len(finals), 0), dtype=np.int64)
    valid = hop_matrix >= 0
    hops = valid.sum(axis=1)
    path_links = hop_matrix[valid]  # row-major keeps order: reversed walk gives source -> target
    counts = np.bincount(pair_all[finals], minlength=problem.paths.n_pairs)
    paths = PathSet(problem.pairs, np.concatenate([[0], np.cumsum(counts)]), np.concatenate([[0], np.cumsum(hops)]),
                    path_links.astype(np.int64))
    return paths, frac_all[finals]
