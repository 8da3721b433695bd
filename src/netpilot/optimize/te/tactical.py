"""Tactical TE: explicit paths (SR-TE policies) for the few demand pairs that load the hottest links, on top of
the IGP, planned by one small LP that also bounds named single failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from netpilot.model.network import NetworkArrays
from netpilot.model.policies import Compiled, pair_positions
from netpilot.model.routing import ecmp_flows
from netpilot.optimize import highs
from netpilot.optimize.te.paths import k_shortest_paths

#: Weight of a bounded case's excess against the MLU in the LP's objective: keeping every bound comes first.
BOUND_PENALTY = 10.0


@dataclass
class TacticalPlan:
    """Per node-index pair, its paths (link arrays) with fractions; the LP's MLU now and how far the bounded
    cases end over their bounds in the LP's model (0: within them all)."""

    paths: dict[tuple[int, int], list[tuple[np.ndarray, float]]]
    mlu: float
    excess: float


def plan_tactical(arrays: NetworkArrays, pairs: np.ndarray, volume: np.ndarray, metric: np.ndarray,
                  up: np.ndarray, capacity: np.ndarray, *, cases: list[np.ndarray] = (),
                  allowed: np.ndarray | None = None, current: Compiled | None = None, max_pairs: int = 24,
                  max_steered: int = 64, k: int = 3, hot: float = 0.9,
                  igp_matrix: Callable[[np.ndarray], sp.csr_matrix] | None = None) -> TacticalPlan | None:
    """Explicit paths for the pairs the network already steers (``current``, as ``compile_policies`` gives
    them) and up to ``max_pairs`` more, that minimise the MLU now, with every other pair on the IGP under
    ``metric``, and each case (links up under a named failure) held within its MLU bound ``allowed[f]``.

    The new pairs are those with the most traffic on links above ``hot`` of the MLU, now or in a case, as the
    network routes today (its explicit paths included), at most ``max_steered`` steered in all; each planned
    pair gets up to ``k`` link-disjoint candidate paths, and a steered pair its current paths too, so the plan
    can keep what runs. In a case, a path that fails hands its share to the IGP (the LP's model; the network
    shares it among the policy's paths left, which verification checks exactly). None when no pair crosses a
    hot link and none is steered. ``igp_matrix(up)`` gives the IGP's (links × pairs) routing matrix under
    ``metric`` over the links ``up``; a caller that plans tick after tick passes one that keeps them."""
    volume = np.asarray(volume, dtype=float)
    cap = np.where(capacity > 0, capacity, np.inf)
    allowed = np.zeros(0) if allowed is None else np.asarray(allowed, dtype=float)
    masks = [up, *cases]
    if igp_matrix is None:
        def igp_matrix(mask: np.ndarray) -> sp.csr_matrix:
            return ecmp_flows(arrays, metric, pairs, volume, mask).routing_matrix()
    routings = [igp_matrix(mask) for mask in masks]
    current = current or {}
    position = pair_positions(pairs, list(current))
    steered = position[position >= 0]
    current_paths = {int(q): current[ends] for q, ends in zip(position, current, strict=True) if q >= 0}

    # The pairs behind the hottest links as the network routes now and in each case, steered ones aside.
    weight = np.zeros(len(pairs))
    unsteered = volume.copy()
    unsteered[steered] = 0.0
    for matrix, mask in zip(routings, masks, strict=True):
        loads = matrix @ unsteered + _steered_loads(matrix, current_paths, volume, mask)
        util = np.where(mask, loads / cap, 0.0)
        links = np.flatnonzero(util >= hot * util.max(initial=0.0))
        weight += np.asarray(matrix[links].multiply(unsteered[None, :]).sum(axis=0)).ravel()
    room = max(0, min(max_pairs, max_steered - len(steered)))
    fresh = np.argsort(-weight, kind="stable")[:room]  # ties in the same order on every machine
    fresh = fresh[weight[fresh] > 0]
    chosen = np.concatenate([steered, fresh]).astype(np.int64)
    if not len(chosen):
        return None
    shortest = k_shortest_paths(dataclasses.replace(arrays, up=up), pairs[chosen], k, weight="metric")
    link_of, owner = [], []
    for p, pair in enumerate(chosen.tolist()):
        mine = [shortest.links_of(q) for q in range(shortest.pair_ptr[p], shortest.pair_ptr[p + 1])]
        known = {links.tobytes() for links in mine}
        mine += [links for links, _ in current_paths.get(pair, [])
                 if links.tobytes() not in known and up[links].all()]
        link_of += mine
        owner += [p] * len(mine)
    owner = np.array(owner, dtype=np.int64)
    n_paths, n_links, n_cases = len(link_of), arrays.n_links, len(cases)
    rows = np.concatenate(link_of) if n_paths else np.zeros(0, dtype=np.int64)
    cols = np.repeat(np.arange(n_paths), [len(links) for links in link_of])
    carried = volume[chosen][owner]
    on_path = sp.csr_matrix((carried[cols], (rows, cols)), shape=(n_links, n_paths))
    others = volume.copy()
    others[chosen] = 0.0

    # Columns: path fractions, then t (MLU now), then one excess per case.
    blocks, upper = [], []
    for f, (matrix, mask) in enumerate(zip(routings, masks, strict=True)):
        finite = np.flatnonzero(mask & np.isfinite(cap))
        background = (matrix @ others)[finite]
        if f == 0:
            load = on_path
        else:
            # A path through a failed link hands its share to the IGP route of its pair under the failure.
            dead = np.array([not mask[links].all() for links in link_of], dtype=bool)
            alive = on_path @ sp.diags((~dead).astype(float))
            igp = matrix[:, chosen[owner]] @ sp.diags(np.where(dead, carried, 0.0))
            load = alive + igp
        # Load on a link at most its capacity times t (now) or times the case's bound plus its excess.
        limit = sp.csr_matrix((-cap[finite], (np.arange(len(finite)), np.full(len(finite), f))),
                              shape=(len(finite), 1 + n_cases))
        blocks.append(sp.hstack([sp.csr_matrix(load)[finite], limit]))
        upper.append(-background if f == 0 else allowed[f - 1] * cap[finite] - background)
    link_rows = sp.vstack(blocks)
    sums = sp.hstack([sp.csr_matrix((np.ones(n_paths), (owner, np.arange(n_paths))), shape=(len(chosen), n_paths)),
                      sp.csr_matrix((len(chosen), 1 + n_cases))])
    constraints = sp.vstack([link_rows, sums]).tocsr()
    lower = np.concatenate([np.full(link_rows.shape[0], -np.inf), np.ones(len(chosen))])
    upper_all = np.concatenate([*upper, np.ones(len(chosen))])
    hops = np.array([len(links) for links in link_of], dtype=float)
    cost = np.concatenate([1e-4 * hops, [1.0], np.full(n_cases, BOUND_PENALTY)])
    n_cols = n_paths + 1 + n_cases
    result = highs.solve(cost, constraints, lower, upper_all, np.zeros(n_cols), np.full(n_cols, np.inf))
    if not result.optimal:
        return None
    x = np.clip(result.x[:n_paths], 0.0, 1.0)
    plan: dict[tuple[int, int], list[tuple[np.ndarray, float]]] = {}
    for p, pair in enumerate(chosen):
        mine = np.flatnonzero(owner == p)
        kept = [(link_of[q], float(x[q])) for q in mine if x[q] > 1e-3]
        total = sum(share for _, share in kept)
        plan[(int(pairs[pair][0]), int(pairs[pair][1]))] = [(links, share / total) for links, share in kept]
    return TacticalPlan(plan, float(result.x[n_paths]), float(result.x[n_paths + 1:].sum()))


def _steered_loads(matrix: sp.csr_matrix, current: dict[int, list[tuple[np.ndarray, float]]], volume: np.ndarray,
                   up: np.ndarray) -> np.ndarray:
    """Link loads of the steered pairs (pair position -> paths with weights) over the links ``up``, in the LP's
    model: a failed path's share goes to the pair's IGP route (``matrix``'s column)."""
    loads = np.zeros(matrix.shape[0])
    for q, paths in current.items():
        total = sum(weight for _, weight in paths) or 1.0
        for links, weight in paths:
            amount = volume[q] * weight / total
            if up[links].all():
                np.add.at(loads, links, amount)
            else:
                loads += amount * matrix[:, q].toarray().ravel()
    return loads
