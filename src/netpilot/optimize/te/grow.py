"""Column generation: add to each pair the path its link prices say is cheapest, when the path set lacks it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netpilot.optimize.te.paths import cheapest_paths
from netpilot.optimize.te.problem import Routing, TEProblem


def grow_paths(problem: TEProblem, link_price: np.ndarray, *, margin: float = 1e-6) -> tuple[TEProblem, int]:
    """(problem with new paths, how many were added): for every pair whose shortest path under ``link_price``
    is cheaper than all of its current paths, that path (the pricing step of the path LP's column generation)."""
    price = np.where(np.isfinite(problem.capacity), np.maximum(link_price, 0.0), 0.0)
    current = problem.pair_min(problem.incidence_t @ price)
    paths, dist = cheapest_paths(problem.arrays, problem.pairs, price)
    better = np.flatnonzero(dist < current * (1 - margin) - 1e-15)
    better = np.array([i for i in better if paths[i] is not None], dtype=np.int64)
    if len(better) == 0:
        return problem, 0
    return problem.with_paths(problem.paths.extend(better, [paths[i] for i in better])), len(better)


def solve_growing(problem: TEProblem, solve: Callable[..., Routing], *, rounds: int = 10,
                  tolerance: float = 0.005, warm: bool = False, margin: float = 1e-6) -> Routing:
    """Solve, add the paths the prices ask for, and solve again until the unrestricted bound is met.

    ``warm`` restarts each solve from the last routing; ``margin`` is how much cheaper (relative) a new path
    must be (approximate prices, like the fast method's, call for a few per cent). The result's ``info``
    says how many paths were added and carries ``unrestricted_bound``: a lower bound on the MLU of any
    routing at all, over any paths, from the same prices.
    """
    routing = solve(problem)
    added_total = 0
    for _ in range(rounds):
        price = routing.info["link_price"]
        bound = routing.problem.unrestricted_mlu_lower_bound(price)
        routing.info["unrestricted_bound"] = max(bound, routing.info.get("unrestricted_bound", 0.0))
        if routing.mlu <= routing.info["unrestricted_bound"] * (1 + tolerance):
            break
        grown, added = grow_paths(routing.problem, price, margin=margin)
        if added == 0:
            break
        added_total += added
        previous = routing.info["unrestricted_bound"]
        routing = solve(grown, x0=_carry(routing, grown)) if warm else solve(grown)
        routing.info["unrestricted_bound"] = previous
    routing.info["paths_added"] = added_total
    routing.info.setdefault("unrestricted_bound",
                            routing.problem.unrestricted_mlu_lower_bound(routing.info["link_price"]))
    return routing


def _carry(routing: Routing, grown: TEProblem) -> np.ndarray:
    """The old fractions in the grown path set (old paths keep their place within each pair; new ones get 0)."""
    old, new = routing.problem.paths, grown.paths
    x = np.zeros(new.n_paths)
    offset = new.pair_ptr[:-1] - old.pair_ptr[:-1]
    x[np.arange(old.n_paths) + offset[old.path_pair]] = routing.x
    return x
