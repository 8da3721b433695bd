"""Fast TE: scaled gradient projection on a smoothed maximum, with a duality certificate at every step.

Why this method (measured against HiGHS on the staged instances, see BENCHMARKS.md): the objective
``max_e u_e`` is replaced by ``(1/beta) log sum_e exp(beta u_e)``, whose gradient ``w = softmax(beta u)`` is at
once a descent direction and a vector of dual link prices. Per pair, traffic moves from costlier paths to the
cheapest one by the cost difference over a Gershgorin bound on the second derivative (Bertsekas and Gallager's
projection method for optimal routing), then an exact line search on the smoothed objective, which costs
nothing since the link count is small. ``beta`` grows as the routing settles. Only pairs whose paths cross a
hot link take part once the hot links are known (on Cogentco about a tenth of them), the rest is background
load, re-checked every few iterations. Every iteration is a few sparse products and segment reductions; it
starts warm from any earlier routing, and the prices give a lower bound on the optimal MLU, so it stops as
soon as it can prove it is within ``tolerance``.

ADMM (Teal) and multiplicative weights were the alternatives considered. They were not benchmarked here; their
known convergence (O(1/epsilon) and O(1/epsilon^2) iterations for a 1 % gap) and the lack of a direct bound
decided against them. What was measured is this method: tens of iterations to a certified 0.5 % on every
staged topology (BENCHMARKS.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from netpilot.optimize.te import kernels
from netpilot.optimize.te.problem import Routing, TEProblem


def initial_split(problem: TEProblem) -> np.ndarray:
    """Everything on each pair's first (shortest) path."""
    x = np.zeros(problem.paths.n_paths)
    x[problem.pair_starts] = 1.0
    return x


@dataclass
class _Active:
    """The pairs being optimised, their paths' columns, and the load of everyone else."""

    paths: np.ndarray          # (Qa,) path ids
    starts: np.ndarray         # (Pa,) offsets of each active pair's first path within ``paths``
    owner: np.ndarray          # (Qa,) active-pair index of each path
    demand: np.ndarray         # (Qa,) normalised demand of each path's pair
    pair_demand: np.ndarray    # (Pa,)
    a: sp.csc_matrix           # (L, Qa)
    at: sp.csr_matrix          # (Qa, L)
    background: np.ndarray     # (L,) load of inactive pairs
    multicore: bool = False    # price the paths with the Numba kernel on every core (the same sums as SciPy's)

    def path_sums(self, columns: np.ndarray) -> np.ndarray:
        """(Qa, m): per active path, ``columns`` (L, m) summed over its links."""
        if self.multicore:
            return kernels.path_sums(self.a.indptr, self.a.indices, self.a.data, columns)
        return self.at @ columns


def _activate(problem: TEProblem, pair_mask: np.ndarray, x: np.ndarray, a_csc: sp.csc_matrix,
              full: np.ndarray, compiled: bool = False) -> _Active:
    ptr = problem.paths.pair_ptr
    pairs = np.flatnonzero(pair_mask)
    counts = ptr[pairs + 1] - ptr[pairs]
    paths = np.repeat(ptr[pairs] - np.cumsum(np.concatenate([[0], counts[:-1]])), counts) + np.arange(counts.sum())
    owner = np.repeat(np.arange(len(pairs)), counts)
    a = a_csc[:, paths]
    demand = problem.demand[pairs][owner]
    background = full - a @ (demand * x[paths])
    # The transpose of a CSC slice is a CSR view: both products run without converting anything.
    return _Active(paths, np.cumsum(counts) - counts, owner, demand, problem.demand[pairs],
                   a, a.T, np.maximum(background, 0.0), compiled and kernels.worthwhile(a.nnz))


def _smoothed(u, beta: float, exp=np.exp) -> float:
    """(1/beta) log sum exp(beta u), computed stably; ``u`` a NumPy array or a PyTorch tensor (with ``exp``)."""
    top = float(u.max())
    return top + math.log(float(exp(beta * (u - top)).sum())) / beta


def solve_fast(problem: TEProblem, *, x0: np.ndarray | None = None, start: Routing | None = None,
               tolerance: float = 0.005,
               max_iterations: int = 1000, time_limit: float | None = None, hot_weight: float = 1e-3,
               refresh_every: int = 6, stall_ramp: float = 1.6,
               settle: float = 0.001, initial_sharpness: float | None = None, patience: int = 30,
               failed_links: np.ndarray | None = None, warm_sharpness: float = 32.0,
               compiled: bool | None = None) -> Routing:
    """A routing minimising MLU over the path set, within ``tolerance`` of optimal when it converges.

    ``x0`` warm-starts from an earlier routing's fractions; ``start`` from an earlier routing on the same path
    set (say, the last interval's), its link prices and step sizes too, so that a matrix close to the last one
    is often certified before the first step. Links whose price (softmax weight)
    is at least ``hot_weight`` times the top link's are hot, and only pairs that send traffic over a hot link
    and have another path are optimised; the rest is background load until the next refresh.
    ``failed_links``: links to route around (their paths carry nothing; pairs left without a path are dropped).
    The answer's ``info`` holds its link prices (``link_price``, the certificate's) and normalised link loads
    (``load``), so that a caller need not recompute them.
    ``compiled``: whether to use the Numba kernels (by default, where Numba is installed and the instance is
    large enough to pay for loading them: ``kernels.WORTH_LOADING``); the answer is the same bits either way.
    """
    started = time.perf_counter()
    compiled = kernels.wanted(compiled, len(problem.paths.path_links))
    finite = np.isfinite(problem.capacity)
    cap = np.where(finite, problem.capacity, 1.0)
    inv_cap = np.where(finite, 1.0 / cap, 0.0)
    enabled = np.ones(problem.paths.n_paths, dtype=bool)
    if failed_links is not None and len(failed_links):
        inv_cap[failed_links] = 0.0
        # The paths over a failed link: that link's row of the incidence matrix (not a product over all paths).
        rows = problem.incidence
        for e in np.asarray(failed_links, dtype=np.int64):
            enabled[rows.indices[rows.indptr[e]:rows.indptr[e + 1]]] = False
    if start is not None and x0 is None:
        x0 = start.x
    x = initial_split(problem) if x0 is None else np.asarray(x0, dtype=float)
    x = problem.feasible(x, enabled)
    every_path = bool(enabled.all())
    incidence = problem.incidence
    a_csc = problem.incidence_csc
    usable = problem.pair_sum(enabled.astype(float))
    movable = usable > 1
    # Pairs with a single usable path load the network the same whatever the routing: part of every bound.
    pinned = np.flatnonzero((usable == 1)[problem.paths.path_pair] & enabled)
    pinned_load = problem.loads(np.ones(len(pinned)), paths=pinned)  # their columns alone: a small product
    log_links = np.log(max(2, int(finite.sum())))

    # A warm start is near an optimum already: begin sharp rather than re-converge from a blurred maximum.
    if initial_sharpness is None:
        initial_sharpness = 4.0 if x0 is None else warm_sharpness
    sharpness = initial_sharpness
    boldness = 1.0
    if start is not None and "sharpness" in start.info:
        sharpness, boldness = max(start.info["sharpness"] / 2, initial_sharpness), start.info["boldness"]
    best_bound, best_mlu, best_x = 0.0, np.inf, x
    best_price = inv_cap
    if start is not None and "link_price" in start.info:
        # The last answer's prices, with failed links priced out and their paths barred, bound this instance.
        best_price = np.where(inv_cap > 0, start.info["link_price"], 0.0)
        best_bound = problem.mlu_lower_bound(best_price, None if every_path else enabled)
        start_load = problem.loads(x)
        carried_over = float((start_load * inv_cap).max(initial=0.0))
        if carried_over <= best_bound * (1 + tolerance):
            return Routing(problem, x, "mlu", "fast", time.perf_counter() - started, best_bound, 0,
                           info={"active_pairs": 0, "sharpness": sharpness, "boldness": boldness,
                                 "link_price": best_price, "load": start_load})
    else:
        start_load = None
    smoothed_price = None
    iterations = improved_at = 0
    checkpoint = np.inf
    active: _Active | None = None
    barred: np.ndarray | None = None  # the active paths a failure takes away, priced out of every step
    xa = x
    since_refresh = refresh_every
    for iterations in range(1, max_iterations + 1):
        if since_refresh >= refresh_every:
            if active is None:
                # The same x as the warm start's check above: its loads, computed once.
                load = problem.loads(x) if start_load is None else start_load
            else:
                x[active.paths] = xa
                load = active.background + active.a @ (active.demand * xa)
            u = load * inv_cap
            mlu = float(u.max())
            # Hot: a link whose smoothed-max weight is within ``hot_weight`` of the top one's.
            beta = sharpness * log_links / max(mlu, 1e-12)
            hot = np.flatnonzero(u >= mlu + np.log(hot_weight) / beta)
            on_hot = incidence.indices[np.concatenate([np.arange(incidence.indptr[e], incidence.indptr[e + 1])
                                                       for e in hot])]
            senders = np.zeros(problem.paths.n_pairs, dtype=bool)
            senders[problem.paths.path_pair[on_hot[x[on_hot] > 0]]] = True
            active = _activate(problem, movable & senders, x, a_csc, load, compiled)
            xa = x[active.paths].copy()
            barred = None if every_path else np.flatnonzero(~enabled[active.paths])
            since_refresh = 0
        since_refresh += 1
        mlu = float(u.max())
        if mlu < best_mlu:
            if mlu < checkpoint * (1 - tolerance / 10):
                improved_at, checkpoint = iterations, mlu
            best_mlu = mlu
            best_x = x.copy()
            best_x[active.paths] = xa
        beta = sharpness * log_links / max(mlu, 1e-12)
        w = np.exp(beta * (u - mlu))
        w /= w.sum()
        price = w * inv_cap
        smoothed_price = price if smoothed_price is None else 0.7 * smoothed_price + 0.3 * price
        if len(active.starts) == 0:
            bound = problem.mlu_lower_bound(price, None if every_path else enabled)
            if bound > best_bound:
                best_bound, best_price = bound, price
            if best_mlu <= best_bound * (1 + tolerance):
                break
            since_refresh = refresh_every
            sharpness = min(sharpness * stall_ramp, 400.0)
            continue
        # One pass over the sparse matrix for the path costs, the curvature and (now and then) the averaged prices.
        check_smoothed = iterations % 3 == 0
        columns = [price, beta * w * u * inv_cap] + ([smoothed_price] if check_smoothed else [])
        products = active.path_sums(np.column_stack(columns))
        cost, curvature = products[:, 0].copy(), products[:, 1]
        if barred is not None:
            cost[barred] = np.inf
        if compiled:
            cheapest, dx, smoothed_cheapest = kernels.projection_step(
                active.starts, cost, curvature, xa, boldness, products[:, 2] if check_smoothed else None)
        else:
            cheapest = np.minimum.reduceat(cost, active.starts)
            smoothed_cheapest = np.minimum.reduceat(products[:, 2], active.starts) if check_smoothed else None
        # Duality bounds from the active pairs alone (dropping pairs only lowers a bound, so it stays valid).
        bound = (float(active.pair_demand @ cheapest) + float(price @ pinned_load)) / float(w[finite].sum())
        if bound > best_bound:
            best_bound, best_price = bound, price
        if check_smoothed:
            bound = _bound(active, smoothed_cheapest, smoothed_price, cap, finite, pinned_load)
            if bound > best_bound:
                best_bound, best_price = bound, smoothed_price
        if best_mlu <= best_bound * (1 + tolerance):
            break
        if time_limit is not None and time.perf_counter() - started > time_limit:
            break
        if iterations - improved_at > patience:
            break  # no real progress for a while: the certificate says how far off this may still be
        if not compiled:
            dx = numpy_step(active.starts, active.owner, cost, cheapest, curvature, xa, boldness)
        du = (active.a @ (active.demand * dx)) * inv_cap
        alpha, gain = _line_search(u, du, beta)
        # The Gershgorin bound is conservative where many paths share a link: learn how far to trust it.
        boldness = min(boldness * 2.0, 1e4) if alpha > 0.9 else max(boldness * max(alpha, 0.25) * 1.5, 1e-3)
        # Converged for this smoothing (the gain is small next to the smoothing error, mlu / sharpness): sharpen.
        if gain < settle * mlu / sharpness:
            if since_refresh > 1:
                since_refresh = refresh_every  # maybe only the active set is exhausted: look again first
            else:
                sharpness = min(sharpness * stall_ramp, 400.0)
        xa = np.clip(xa + alpha * dx, 0.0, 1.0)
        u = u + alpha * du

    if active is not None:
        x[active.paths] = xa
    x = problem.feasible(x, enabled)
    load = problem.loads(x)
    # Back to the best iterate only when it is better by more than rounding: at a tie (the top link's load fixed)
    # the last iterate stays, whichever way the last bit falls.
    if float((load * inv_cap).max(initial=0.0)) > best_mlu * (1.0 + 1e-12):
        x = problem.feasible(best_x, enabled)
        load = problem.loads(x)
    return Routing(problem, x, "mlu", "fast", time.perf_counter() - started, best_bound, iterations,
                   info={"active_pairs": 0 if active is None else len(active.starts), "sharpness": sharpness,
                         "boldness": boldness, "link_price": best_price, "load": load})


def numpy_step(starts: np.ndarray, owner: np.ndarray, cost: np.ndarray, cheapest: np.ndarray,
               curvature: np.ndarray, xa: np.ndarray, boldness: float) -> np.ndarray:
    """The move ``dx`` per path of one scaled projection step (``kernels.projection_step`` in NumPy passes):
    traffic leaves each path dearer than its pair's cheapest by the cost difference over a bound on the second
    derivative, capped at what the path carries, and goes to the pair's first cheapest path."""
    excess = cost - cheapest[owner]
    is_target = excess <= 0
    # One target per pair: the first cheapest path.
    first = np.flatnonzero(is_target)
    first = first[np.concatenate([[True], owner[first][1:] != owner[first][:-1]])]
    target_of_pair = np.empty(len(starts), dtype=np.int64)
    target_of_pair[owner[first]] = first
    target_path = target_of_pair[owner]
    moving = (xa > 0) & (excess > 0)
    # Second derivative of the smoothed max along a path, bounded by letting all traffic on each link move
    # together (Gershgorin); ``boldness`` learns how pessimistic that is.
    denom = curvature + curvature[target_path]
    step = np.where(moving, np.minimum(xa, boldness * excess / np.maximum(denom, 1e-300)), 0.0)
    gained = np.bincount(owner, weights=step, minlength=len(starts))
    dx = -step
    dx[first] += gained[owner[first]]
    return dx


def _bound(active: _Active, cheapest: np.ndarray, price: np.ndarray, cap: np.ndarray, finite: np.ndarray,
           pinned_load: np.ndarray) -> float:
    """The duality bound of ``TEProblem.mlu_lower_bound`` over the active and single-path pairs only, from each
    active pair's cheapest path under ``price``."""
    budget = float(price[finite] @ cap[finite])
    if budget <= 0:
        return 0.0
    return (float(active.pair_demand @ cheapest) + float(price @ pinned_load)) / budget


def _line_search(u, du, beta: float, rounds: int = 6, exp=np.exp) -> tuple[float, float]:
    """(alpha, decrease): the smoothed maximum of ``u + alpha du`` minimised over [0, 1] by safeguarded Newton
    steps on its exact first and second derivatives (it is convex in alpha). NumPy arrays, or PyTorch tensors
    with ``exp=torch.exp``."""
    lo, hi, alpha = 0.0, 1.0, 1.0
    du_sq = du * du
    for _ in range(rounds):
        z = beta * (u + alpha * du)
        w = exp(z - z.max())
        w = w / w.sum()
        slope = float(w @ du)
        curvature = beta * max(float(w @ du_sq) - slope * slope, 0.0)
        if slope < 0:
            lo = alpha
            if alpha >= 1.0:
                break
        else:
            hi = alpha
        newton = alpha - slope / curvature if curvature > 0 else (lo + hi) / 2
        alpha = newton if lo < newton < hi else (lo + hi) / 2
    alpha = max(alpha, lo)
    decrease = _smoothed(u, beta, exp) - _smoothed(u + alpha * du, beta, exp)
    if decrease < 0:
        return 0.0, 0.0
    return alpha, decrease


def solve_fast_flow(problem: TEProblem, *, x0: np.ndarray | None = None, tolerance: float = 0.01,
                    max_iterations: int = 400, time_limit: float | None = None, patience: int = 40) -> Routing:
    """Routing that carries the most traffic without exceeding any capacity (Teal's, NCFlow's, POP's objective).

    Each pair gets a virtual "drop" path that costs 1 per unit; links charge ``y_e = 2 sigmoid(beta (u_e - 1))``,
    an exact penalty since no optimal link price exceeds 1. The same scaled projection as ``solve_fast`` moves
    traffic to each pair's cheapest option; ``beta`` sharpens as it settles; at the end any overloaded link's
    paths are scaled down so the answer is strictly feasible, and the prices bound the most that could fit.
    """
    started = time.perf_counter()
    finite = np.isfinite(problem.capacity)
    cap = np.where(finite, problem.capacity, 1.0)
    inv_cap = np.where(finite, 1.0 / cap, 0.0)
    a, at = problem.incidence_csc, problem.incidence_t
    starts, owner = problem.pair_starts, problem.paths.path_pair
    d_path = problem.path_demand
    x = np.zeros(problem.paths.n_paths) if x0 is None else np.clip(np.nan_to_num(x0), 0.0, 1.0)
    over = problem.pair_sum(x)
    x = x / np.maximum(over, 1.0)[owner]
    u = (a @ (d_path * x)) * inv_cap
    penalty_weight = 2.0
    beta, boldness = 20.0, 1.0
    best_bound, best_flow, best_x = np.inf, -1.0, x
    best_price = np.zeros_like(cap)
    improved_at = 0
    iterations = 0

    def objective(u_: np.ndarray, carried: float) -> float:
        soft = np.logaddexp(0.0, beta * (u_ - 1.0)) / beta
        return -carried + penalty_weight * float(cap[finite] @ soft[finite])

    for iterations in range(1, max_iterations + 1):
        sig = expit(beta * (u - 1.0))
        price = np.where(finite, penalty_weight * sig, 0.0)
        cost = at @ price
        if iterations % 4 == 1:
            bound = problem.flow_upper_bound(price)
            if bound < best_bound:
                best_bound, best_price = bound, price
            feasible = _scale_to_capacity(problem, x, u)
            flow = float(problem.demand @ problem.pair_sum(feasible))
            if flow > best_flow:
                if flow > best_flow * (1 + tolerance / 10):
                    improved_at = iterations
                best_flow, best_x = flow, feasible
            if best_bound <= best_flow * (1 + tolerance) or iterations - improved_at > patience:
                break
        if time_limit is not None and time.perf_counter() - started > time_limit:
            break
        cheapest = np.minimum(np.minimum.reduceat(cost, starts), 1.0)  # 1.0: the drop option
        excess = cost - cheapest[owner]
        carried = problem.pair_sum(x)
        dropped = 1.0 - carried
        drop_excess = 1.0 - cheapest
        curvature = at @ (penalty_weight * beta * sig * (1 - sig) * u * inv_cap)
        first = _first_cheapest(cost, cheapest, owner, len(starts))
        drop_is_target = first < 0
        target_curv = np.where(drop_is_target, 0.0, curvature[np.maximum(first, 0)])
        moving = (x > 0) & (excess > 0)
        step = np.where(moving, np.minimum(x, boldness * excess / np.maximum(curvature + target_curv[owner], 1e-300)),
                        0.0)
        drop_step = np.where(~drop_is_target & (dropped > 0),
                             np.minimum(dropped, boldness * drop_excess / np.maximum(target_curv, 1e-300)), 0.0)
        gained = np.bincount(owner, weights=step, minlength=len(starts))
        dx = -step
        into_path = ~drop_is_target
        dx[first[into_path]] += gained[into_path] + drop_step[into_path]
        dcarried = np.bincount(owner, weights=dx, minlength=len(starts))
        du = (a @ (d_path * dx)) * inv_cap
        base_carried = float(problem.demand @ carried)
        dflow = float(problem.demand @ dcarried)
        alpha = _golden(lambda t, u=u, du=du, c=base_carried, f=dflow: objective(u + t * du, c + t * f))
        boldness = min(boldness * 2.0, 1e4) if alpha > 0.9 else max(boldness * max(alpha, 0.25) * 1.5, 1e-3)
        x = np.clip(x + alpha * dx, 0.0, 1.0)
        u = u + alpha * du
        if alpha * np.abs(du).max(initial=0.0) < 1e-3 / beta:
            beta = min(beta * 1.6, 5000.0)

    return Routing(problem, best_x, "flow", "fast", time.perf_counter() - started, best_bound * problem.scale,
                   iterations, info={"link_price": best_price})


def _first_cheapest(cost: np.ndarray, cheapest: np.ndarray, owner: np.ndarray, n_pairs: int) -> np.ndarray:
    """Per pair, the first path at the pair's cheapest cost, or -1 where dropping is cheapest."""
    hits = np.flatnonzero(cost <= cheapest[owner])
    first = np.full(n_pairs, -1, dtype=np.int64)
    keep = np.concatenate([[True], owner[hits][1:] != owner[hits][:-1]]) if len(hits) else hits.astype(bool)
    first[owner[hits[keep]]] = hits[keep]
    return first


def _scale_to_capacity(problem: TEProblem, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``x`` with every path through an overloaded link scaled down by that link's worst overload."""
    shrink = np.where(u > 1.0, 1.0 / np.maximum(u, 1e-300), 1.0)
    factor = np.minimum.reduceat(shrink[problem.paths.path_links], problem.paths.path_ptr[:-1]) \
        if problem.paths.path_links.size else np.ones_like(x)
    return x * factor


def _golden(f, rounds: int = 16) -> float:
    g = 0.6180339887498949
    lo, hi = 0.0, 1.0
    a, b = hi - g, g
    fa, fb = f(a), f(b)
    for _ in range(rounds):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    alpha = 0.5 * (lo + hi)
    return 1.0 if f(1.0) <= f(alpha) else alpha
