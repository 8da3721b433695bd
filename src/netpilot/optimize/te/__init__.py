"""Traffic engineering: path sets, the exact LP, the fast solver, failure analysis and IGP metrics."""

from __future__ import annotations

from typing import Any

from netpilot.model.network import Network


def solve_te(network: Network, *, objective: str = "mlu", method: str = "fast", k: int = 4, grow: bool = False,
             failures: bool = False, robust: bool = False, time_limit: float | None = None) -> dict[str, Any]:
    """Solve TE for ``network``'s demands and return the routing document (see ``report.routing_document``)."""
    from netpilot.optimize.te import failures as failure_analysis
    from netpilot.optimize.te.fast import solve_fast, solve_fast_flow
    from netpilot.optimize.te.grow import solve_growing
    from netpilot.optimize.te.igp import optimise_metrics
    from netpilot.optimize.te.lp import solve_lp
    from netpilot.optimize.te.problem import build_problem
    from netpilot.optimize.te.report import routing_document

    problem = build_problem(network, k=k)
    if robust:
        routing = failure_analysis.solve_robust_lp(problem, time_limit=time_limit)
    elif method == "igp":
        routing = optimise_metrics(problem, start=problem.arrays.metric,
                                   time_limit=time_limit if time_limit is not None else 20.0)
        # ECMP may use paths outside the k-path set, so only a bound over any routing at all applies to it.
        prices = solve_fast(problem).info["link_price"]
        routing.bound = problem.unrestricted_mlu_lower_bound(prices)
        routing.info["bound_scope"] = "over any routing"
    elif objective == "flow":
        routing = (solve_lp(problem, "flow", time_limit=time_limit) if method == "lp"
                   else solve_fast_flow(problem, time_limit=time_limit))
    elif method == "lp":
        routing = (solve_growing(problem, lambda p, **kw: solve_lp(p, time_limit=time_limit)) if grow
                   else solve_lp(problem, time_limit=time_limit))
    else:
        routing = (solve_growing(problem, lambda p, **kw: solve_fast(p, time_limit=time_limit, **kw), warm=True,
                                 margin=0.05) if grow
                   else solve_fast(problem, time_limit=time_limit))
    report = failure_analysis.evaluate_failures(routing) if failures else None
    return routing_document(routing, failures=report)
