"""Traffic engineering: path sets, the exact LP, the fast solver, failure analysis and IGP metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netpilot.model.network import Network
    from netpilot.optimize.te.problem import Routing, TEProblem

#: How far above a lower bound over *any* routing the default answer may be before paths are grown.
GROW_TOLERANCE = 0.01


def solve_te(network: Network | None = None, *, problem: TEProblem | None = None, objective: str = "mlu",
             method: str = "fast", k: int = 4, grow: bool | None = None, failures: bool = False,
             robust: bool = False, time_limit: float | None = None, tolerance: float = GROW_TOLERANCE,
             cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Solve TE for ``network``'s demands (or a prepared ``problem``) and return the routing document (see
    ``report.routing_document``).

    ``grow`` (default: on for the fast method's MLU) adds paths by column generation until the answer is
    certified within ``tolerance`` of the best MLU of any routing at all; the paths it adds are kept in the
    topology's path cache, so the next matrix on the same topology starts from them.
    """
    from netpilot.optimize.te.report import routing_document

    if problem is None:
        from netpilot.optimize.te.problem import build_problem

        problem = build_problem(network, k=k, cache_dir=cache_dir)
    if grow is None:
        grow = method == "fast" and objective == "mlu" and not robust
    routing = _solve(problem, objective=objective, method=method, k=k, grow=grow, robust=robust,
                     time_limit=time_limit, tolerance=tolerance, cache_dir=cache_dir)
    report = None
    if failures:
        from netpilot.optimize.te.failures import evaluate_failures

        report = evaluate_failures(routing)
    return routing_document(routing, failures=report)


def _solve(problem: TEProblem, *, objective: str, method: str, k: int, grow: bool, robust: bool,
           time_limit: float | None, tolerance: float, cache_dir: str | Path | None) -> Routing:
    if robust:
        from netpilot.optimize.te.failures import solve_robust_lp

        return solve_robust_lp(problem, time_limit=time_limit)
    if method == "igp":
        from netpilot.optimize.te.fast import solve_fast
        from netpilot.optimize.te.igp import optimise_metrics

        routing = optimise_metrics(problem, start=problem.arrays.metric,
                                   time_limit=time_limit if time_limit is not None else 20.0)
        # ECMP may use paths outside the k-path set, so only a bound over any routing at all applies to it.
        prices = solve_fast(problem).info["link_price"]
        routing.bound = problem.unrestricted_mlu_lower_bound(prices)
        routing.info["bound_scope"] = "over any routing"
        return routing
    if method == "lp":
        from netpilot.optimize.te.grow import solve_growing
        from netpilot.optimize.te.lp import solve_lp

        if objective == "flow":
            return solve_lp(problem, "flow", time_limit=time_limit)
        return (solve_growing(problem, lambda p, **kw: solve_lp(p, time_limit=time_limit)) if grow
                else solve_lp(problem, time_limit=time_limit))
    from netpilot.optimize.te.fast import solve_fast, solve_fast_flow

    if objective == "flow":
        return solve_fast_flow(problem, time_limit=time_limit)
    if not grow:
        return solve_fast(problem, time_limit=time_limit)
    return solve_fast_growing(problem, k=k, tolerance=tolerance, time_limit=time_limit, cache_dir=cache_dir)


def solve_fast_growing(problem: TEProblem, *, k: int = 4, tolerance: float = GROW_TOLERANCE,
                       time_limit: float | None = None, cache_dir: str | Path | None = None) -> Routing:
    """The fast method over ``problem``'s paths plus those grown on this topology before, growing more until
    the answer is within ``tolerance`` of a lower bound over any routing; what was grown is cached."""
    import time

    from netpilot.optimize.te.fast import solve_fast
    from netpilot.optimize.te.grow import solve_growing
    from netpilot.optimize.te.paths import PathCache

    started = time.perf_counter()
    base_counts = problem.paths.paths_per_pair
    cache = PathCache.open(problem.arrays, k, "hop", cache_dir)
    reused = 0
    if cache is not None:
        owner, links = cache.grown_for(problem.pairs)
        reused = len(links)
        if reused:
            problem = problem.with_paths(problem.paths.extend(owner, links))
    routing = solve_growing(problem, lambda p, **kw: solve_fast(p, time_limit=time_limit, **kw), warm=True,
                            margin=0.05, tolerance=tolerance)
    grown = routing.problem.paths.beyond(base_counts)
    if cache is not None and routing.info["paths_added"]:
        cache.remember_grown(grown)
    routing.info["paths_reused"] = reused
    routing.info["bound_scope"] = "on this path set"
    routing.solve_seconds = time.perf_counter() - started
    return routing
