"""RAN slicing: split each cell's physical resource blocks among slices with SLAs, exactly (LP) or fast
(closed form, vectorised over cells), plus the static and proportional baselines an operator would compare.

The model, per cell and interval: slice ``s`` has a priority ``w_s``, a guaranteed share ``g_s`` of the cell's
PRBs (it gets up to ``g_s * prbs`` whenever it asks for that much) and a forecast demand ``f_s`` in PRBs.
An allocation ``a`` uses at most the cell's PRBs and

1. reserves ``r_s = min(g_s * prbs, (1 + margin) f_s)`` for every slice (the SLA; forecasts err, hence the margin),
2. then serves forecast demand in priority order: maximise ``sum_s w_s min(a_s, f_s)``,
3. then hands out what is left as headroom against forecast error: first topping every slice up to its
   guarantee (in priority order), then in proportion to forecast demand.

The SLA of slice ``s`` is met in an interval when ``a_s >= min(actual_s, g_s * prbs)``; it can be met at all only
when ``sum_s min(actual_s, g_s * prbs) <= prbs``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from netpilot.model.ran import Slice
from netpilot.optimize import highs

__all__ = ["Slice", "SliceDecision", "allocate_fast", "allocate_lp", "allocate_proportional", "allocate_static",
           "evaluate"]


@dataclass(frozen=True)
class SliceDecision:
    allocation: np.ndarray   # (C, S) PRBs
    reserved: np.ndarray     # (C, S) PRBs held for the SLA
    shortfall: np.ndarray    # (C, S) reservation that did not fit (guarantees over-subscribed)
    method: str
    seconds: float

    def objective(self, demand: np.ndarray, slices: list[Slice]) -> np.ndarray:
        """(C,) priority-weighted forecast demand served."""
        weights = np.array([s.priority for s in slices])
        return (np.minimum(self.allocation, demand) * weights).sum(axis=1)


def _check(prbs: np.ndarray, demand: np.ndarray, slices: list[Slice]) -> tuple[np.ndarray, np.ndarray]:
    prbs = np.asarray(prbs, dtype=float).reshape(-1)
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 2 or demand.shape != (len(prbs), len(slices)):
        raise ValueError(f"demand must have shape (cells, slices) = ({len(prbs)}, {len(slices)}), got {demand.shape}")
    if (prbs < 0).any() or (demand < 0).any() or not np.isfinite(demand).all():
        raise ValueError("PRBs and demands must be finite and non-negative")
    shares = sum(s.guaranteed_share for s in slices)
    if shares > 1 + 1e-9:
        raise ValueError(f"guaranteed shares add up to {shares:.3g} > 1")
    return prbs, demand


def reservations(prbs: np.ndarray, demand: np.ndarray, slices: list[Slice], margin: float) -> np.ndarray:
    guaranteed = np.array([s.guaranteed_share for s in slices])[None, :] * prbs[:, None]
    return np.minimum(guaranteed, (1.0 + margin) * demand)


def allocate_fast(prbs: np.ndarray, demand: np.ndarray, slices: list[Slice], *, margin: float = 0.1) -> SliceDecision:
    """The closed-form allocation, vectorised over cells (a loop over the few slices only).

    Step 2 is a fractional knapsack with unit sizes, so serving in priority order is optimal for it: this
    gives the LP's objective exactly (tests check it against HiGHS).
    """
    started = time.perf_counter()
    prbs, demand = _check(prbs, demand, slices)
    reserve = reservations(prbs, demand, slices, margin)
    total_reserve = reserve.sum(axis=1)
    # Guarantees fit by construction (shares <= 1); the margin can push reservations past the cell: scale down.
    fit = np.where(total_reserve > prbs, prbs / np.maximum(total_reserve, 1e-12), 1.0)
    held = reserve * fit[:, None]
    shortfall = reserve - held
    allocation = held.copy()
    left = prbs - allocation.sum(axis=1)
    for s in np.argsort([-sl.priority for sl in slices], kind="stable"):
        want = np.maximum(demand[:, s] - allocation[:, s], 0.0)
        give = np.minimum(want, left)
        allocation[:, s] += give
        left -= give
    allocation = _hand_out(allocation, left, prbs, demand, slices)
    return SliceDecision(allocation, held, shortfall, "fast", time.perf_counter() - started)


def _hand_out(allocation: np.ndarray, left: np.ndarray, prbs: np.ndarray, demand: np.ndarray,
              slices: list[Slice]) -> np.ndarray:
    """Give the PRBs no forecast asked for as headroom: first top every slice up to its guarantee, in
    priority order (a burst then finds its SLA already reserved), the rest in proportion to forecast demand."""
    allocation = allocation.copy()
    left = left.copy()
    guaranteed = np.array([s.guaranteed_share for s in slices])[None, :] * prbs[:, None]
    for s in np.argsort([-sl.priority for sl in slices], kind="stable"):
        give = np.minimum(np.maximum(guaranteed[:, s] - allocation[:, s], 0.0), left)
        allocation[:, s] += give
        left -= give
    weight = demand.sum(axis=1, keepdims=True)
    share = np.where(weight > 0, demand / np.where(weight > 0, weight, 1.0), 1.0 / len(slices))
    return allocation + share * left[:, None]


def allocate_lp(prbs: np.ndarray, demand: np.ndarray, slices: list[Slice], *, margin: float = 0.1) -> SliceDecision:
    """The same decision as one LP over every cell (HiGHS): maximise priority-weighted served forecast demand,
    with reservations as lower bounds (scaled to fit where the margin over-subscribes a cell), then the same
    proportional hand-out of the remainder."""
    started = time.perf_counter()
    prbs, demand = _check(prbs, demand, slices)
    n_cells, n_slices = demand.shape
    reserve = reservations(prbs, demand, slices, margin)
    total_reserve = reserve.sum(axis=1)
    fit = np.where(total_reserve > prbs, prbs / np.maximum(total_reserve, 1e-12), 1.0)
    held = reserve * fit[:, None]
    n = n_cells * n_slices
    # Columns: a (allocation), y (served forecast demand); rows: sum_s a <= prbs, y - a <= 0.
    cell_of = np.repeat(np.arange(n_cells), n_slices)
    capacity_rows = sp.csr_matrix((np.ones(n), (cell_of, np.arange(n))), shape=(n_cells, 2 * n))
    served_rows = sp.hstack([-sp.identity(n), sp.identity(n)]).tocsr()
    matrix = sp.vstack([capacity_rows, served_rows])
    weights = np.tile([s.priority for s in slices], n_cells)
    # A tiny reward for allocating keeps HiGHS from leaving PRBs idle where priorities tie.
    cost = np.concatenate([np.full(n, 1e-9), weights])
    scale = max(float(prbs.max(initial=1.0)), 1.0)  # normalise: PRBs to O(1)
    result = highs.solve(cost, matrix, np.full(n_cells + n, -np.inf),
                         np.concatenate([prbs / scale, np.zeros(n)]),
                         np.concatenate([held.ravel() / scale, np.zeros(n)]),
                         np.concatenate([np.full(n, np.inf), demand.ravel() / scale]), maximize=True)
    if not result.optimal:
        raise RuntimeError(f"HiGHS stopped with status {result.status}")
    allocation = np.maximum(result.x[:n].reshape(n_cells, n_slices) * scale, held)
    served = np.minimum(allocation, demand)
    allocation = np.maximum(np.minimum(allocation, np.maximum(served, held)), 0.0)
    left = np.maximum(prbs - allocation.sum(axis=1), 0.0)
    allocation = _hand_out(allocation, left, prbs, demand, slices)
    return SliceDecision(allocation, held, reserve - held, "lp", time.perf_counter() - started)


def allocate_static(prbs: np.ndarray, demand: np.ndarray, slices: list[Slice]) -> SliceDecision:
    """Baseline: every slice gets an equal, fixed share."""
    prbs, demand = _check(prbs, demand, slices)
    allocation = np.repeat((prbs / len(slices))[:, None], len(slices), axis=1)
    return SliceDecision(allocation, allocation, np.zeros_like(allocation), "static", 0.0)


def allocate_proportional(prbs: np.ndarray, demand: np.ndarray, slices: list[Slice]) -> SliceDecision:
    """Baseline: PRBs in proportion to forecast demand."""
    prbs, demand = _check(prbs, demand, slices)
    weight = demand.sum(axis=1, keepdims=True)
    share = np.where(weight > 0, demand / np.where(weight > 0, weight, 1.0), 1.0 / len(slices))
    allocation = share * prbs[:, None]
    return SliceDecision(allocation, allocation, np.zeros_like(allocation), "proportional", 0.0)


@dataclass(frozen=True)
class SlaReport:
    """How allocations fared against what the slices then actually asked for."""

    satisfaction: float          # share of (interval, slice) with the SLA met, where it could be met
    satisfaction_by_slice: dict[str, float]
    feasible_intervals: int      # intervals where every slice's SLA could be met at once
    intervals: int
    efficiency: float            # served PRBs / allocated PRBs
    served_share: float          # served PRBs / demanded PRBs


def evaluate(allocation: np.ndarray, actual: np.ndarray, prbs: np.ndarray, slices: list[Slice]) -> SlaReport:
    """SLA satisfaction of allocations ``(..., S)`` against actual demand of the same shape; ``prbs`` is a scalar
    or broadcasts to the allocation's leading shape."""
    alloc = allocation.reshape(-1, len(slices))
    real = actual.reshape(-1, len(slices))
    cap = np.broadcast_to(np.asarray(prbs, dtype=float), allocation.shape[:-1]).reshape(-1, 1)
    guaranteed = np.array([s.guaranteed_share for s in slices])[None, :] * cap
    need = np.minimum(real, guaranteed)
    feasible = need.sum(axis=1) <= cap[:, 0] + 1e-9
    met = alloc >= need - 1e-9
    by_slice = {s.name: float(met[feasible, i].mean()) if feasible.any() else float("nan")
                for i, s in enumerate(slices)}
    served = np.minimum(alloc, real).sum()
    return SlaReport(float(met[feasible].mean()) if feasible.any() else float("nan"), by_slice, int(feasible.sum()),
                     len(alloc), float(served / max(alloc.sum(), 1e-12)), float(served / max(real.sum(), 1e-12)))
