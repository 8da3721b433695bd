"""The single-failure what-if: link loads after the IGP reconverges around each failed link, computed
incrementally from the routing before the failure, all failures and destinations at once.

For one failure and one destination whose shortest-path DAG used a failed link, only three things change:
the nodes whose every shortest path crossed a failed link (S) get new distances and next hops; the nodes
outside S that had a next hop into S or over a failed link (B) drop it; and the traffic those changes move
flows down the new DAG. Writing the new flows as the old ones plus that difference keeps the work to the part
of each DAG that moves, and is exact (ECMP included): it gives the same loads as routing everything again.
"""

from __future__ import annotations

import numpy as np

from netpilot.model import kernels
from netpilot.model.network import NetworkArrays
from netpilot.model.routing import EcmpRouting


def failure_scenarios(arrays: NetworkArrays) -> list[np.ndarray]:
    """Single failures of a physical link (both directions of each link that is up)."""
    up = np.flatnonzero(arrays.up)
    key = np.minimum(arrays.src[up], arrays.dst[up]) * arrays.n_nodes + np.maximum(arrays.src[up], arrays.dst[up])
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    return np.split(up[order], cuts)


def _csr(keys: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, values sorted by key): values[ptr[k]:ptr[k+1]] are those of key k."""
    order = np.argsort(keys, kind="stable")
    return np.searchsorted(keys[order], np.arange(size + 1)), values[order]


def _expand(ptr: np.ndarray, values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each key, its CSR values: (owner index into ``keys``, value)."""
    counts = ptr[keys + 1] - ptr[keys]
    owner = np.repeat(np.arange(len(keys)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, values[np.repeat(ptr[keys], counts) + within]


def _unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct keys (sorting is much faster here than NumPy's hash-based unique)."""
    ordered = np.sort(keys)
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered


def _merge(keys: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys sorted, the sum of the amounts of each). The position rides in the low bits of the key,
    so one plain sort of integers stands in for an argsort."""
    if not len(keys):
        return keys, amounts
    bits = len(keys).bit_length()
    if int(keys.max()) >= 1 << (62 - bits):
        distinct, inverse = np.unique(keys, return_inverse=True)
        return distinct, np.bincount(inverse, weights=amounts, minlength=len(distinct))
    packed = np.sort((keys << bits) | np.arange(len(keys)))
    order = packed & ((1 << bits) - 1)
    ordered = packed >> bits
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[starts], np.add.reduceat(amounts[order], starts)


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is each key in ``sorted_keys``, its position there)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys, pos


def what_if(arrays: NetworkArrays, routing: EcmpRouting, volume: np.ndarray, scenarios: list[np.ndarray], *,
            compiled: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per scenario (disjoint sets of links that fail together, as ``failure_scenarios`` gives them), after IGP
    reconvergence: (MLU, most loaded link, demand volume cut off, loads of shape (scenarios, links), zero on
    the links it fails). ``compiled``: whether to use the Numba kernel (by default, where Numba is installed)."""
    loads, stranded = failure_loads(arrays, routing, volume, scenarios, compiled=compiled)
    mlu, worst = worst_links(loads, arrays.capacity, links_left_up(arrays.up, scenarios))
    return mlu, worst, stranded, loads


def failure_loads(arrays: NetworkArrays, routing: EcmpRouting, volume: np.ndarray, scenarios: list[np.ndarray], *,
                  compiled: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``what_if``'s (loads, demand cut off) alone, for a caller that adds traffic of its own before it looks
    for the worst link (the failed links' loads are round-off here, not yet zero)."""
    scenario_of = np.full(arrays.n_links, -1, dtype=np.int64)
    for k, links in enumerate(scenarios):
        if (scenario_of[links] >= 0).any():
            raise ValueError("failure scenarios must not share links")
        scenario_of[links] = k
    loads = np.repeat(routing.loads[None, :], len(scenarios), axis=0)
    stranded = np.zeros(len(scenarios))
    if kernels.wanted(compiled):
        # Rows: (scenario, destination) pairs whose DAG used a failed link.
        dag_t, dag_e = np.nonzero(routing.on_dag)
        hit = scenario_of[dag_e] >= 0
        rows = _unique(scenario_of[dag_e[hit]] * len(routing.targets) + dag_t[hit])
        kernels.reroute(arrays, routing, volume, scenario_of, rows // len(routing.targets),
                        rows % len(routing.targets), loads, stranded)
    else:
        _reroute(arrays, routing, volume, scenario_of, loads, stranded)
    return loads, stranded


def _reroute(arrays: NetworkArrays, routing: EcmpRouting, volume: np.ndarray, scenario_of: np.ndarray,
             loads: np.ndarray, stranded: np.ndarray) -> None:
    """The what-if in NumPy, every (scenario, destination) at once: the moved flows into ``loads``, the demand
    cut off into ``stranded``."""
    n, n_links, n_targets = arrays.n_nodes, arrays.n_links, len(routing.targets)
    src, dst = arrays.src, arrays.dst
    metric = np.asarray(routing.metric, dtype=float)
    dist = routing.distance

    dag_t, dag_e = np.nonzero(routing.on_dag)

    # The DAGs as edge lists, by tail and by head; node throughput and injected volume per destination.
    tail_key, head_key = dag_t * n + src[dag_e], dag_t * n + dst[dag_e]
    out_ptr, out_e = _csr(tail_key, dag_e, n_targets * n)
    in_ptr, in_e = _csr(head_key, dag_e, n_targets * n)
    next_hops = np.diff(out_ptr)
    through = np.bincount(tail_key, weights=routing.link_flow[dag_t, dag_e], minlength=n_targets * n)
    live = ~routing.unreachable
    injected = np.bincount(routing.pair_target[live] * n + routing.pairs[live, 0],
                           weights=np.asarray(volume, dtype=float)[live], minlength=n_targets * n)
    up_links = np.flatnonzero(arrays.up)
    graph_ptr, graph_e = _csr(src[up_links], up_links, n)

    # Rows: (scenario, destination) pairs whose DAG used a failed link; their failed links' tails, keyed by
    # row * n + tail, with how many of each tail's next hops failed.
    hit = scenario_of[dag_e] >= 0
    row_key = scenario_of[dag_e[hit]] * n_targets + dag_t[hit]
    rows = _unique(row_key)
    if len(rows) == 0:
        return
    row_s, row_t = rows // n_targets, rows % n_targets
    u_keys, failed_here = np.unique(np.searchsorted(rows, row_key) * n + src[dag_e[hit]], return_counts=True)

    def row_of(keys):
        return keys // n

    # S: grow upwards from the tails; a node joins when every next hop it had is failed or already in S.
    seed = next_hops[row_t[row_of(u_keys)] * n + u_keys % n] == failed_here
    frontier = u_keys[seed]
    in_s = frontier
    while len(frontier):
        r = row_of(frontier)
        owner, e = _expand(in_ptr, in_e, row_t[r] * n + frontier % n)
        candidates = _unique(r[owner] * n + src[e])
        candidates = candidates[~_member(in_s, candidates)[0]]
        if not len(candidates):
            break
        r2 = row_of(candidates)
        owner2, e2 = _expand(out_ptr, out_e, row_t[r2] * n + candidates % n)
        dead = (scenario_of[e2] == row_s[r2[owner2]]) | _member(in_s, r2[owner2] * n + dst[e2])[0]
        alive = np.bincount(owner2, weights=~dead, minlength=len(candidates))
        frontier = candidates[alive == 0]
        in_s = np.sort(np.concatenate([in_s, frontier]), kind="stable")  # two sorted runs (_unique sorts): a merge
    s_keys = in_s
    s_rows = row_of(s_keys)
    s_nodes = s_keys % n
    s_targets = row_t[s_rows]

    # New distances inside S (Bellman-Ford over S only: outside S nothing moved).
    owner, e = _expand(graph_ptr, graph_e, s_nodes)
    keep = scenario_of[e] != row_s[s_rows[owner]]
    owner, e = owner[keep], e[keep]
    head_in_s, head_pos = _member(s_keys, s_rows[owner] * n + dst[e])
    # Exits (heads outside S) offer a fixed distance; only edges inside S need relaxing, round after round.
    exits = ~head_in_s
    exit_offer = metric[e[exits]] + dist[s_targets[owner[exits]], dst[e[exits]]]
    distance = _group_min(owner[exits], exit_offer, len(s_keys))
    inner_owner, inner_cost, inner_head = owner[head_in_s], metric[e[head_in_s]], head_pos[head_in_s]
    # Each round relaxes only the edges into nodes whose distance the last round lowered.
    lowered = np.isfinite(distance)
    for _ in range(n):
        edges = lowered[inner_head]
        if not edges.any():
            break
        offer = _group_min(inner_owner[edges], inner_cost[edges] + distance[inner_head[edges]], len(s_keys))
        lowered = offer < distance
        distance = np.where(lowered, offer, distance)
    offers = np.empty(len(e))
    offers[exits] = exit_offer
    offers[head_in_s] = inner_cost + distance[inner_head]
    on_new = np.isfinite(offers) & (offers == distance[owner])
    s_owner, s_edge = owner[on_new], e[on_new]
    lost = ~np.isfinite(distance)
    np.add.at(stranded, row_s[s_rows[lost]], injected[s_targets[lost] * n + s_nodes[lost]])

    # B: nodes outside S that had a next hop into S or over a failed link; they keep the others.
    owner, e = _expand(in_ptr, in_e, s_targets * n + s_nodes)
    tails = s_rows[owner] * n + src[e]
    b_keys = _unique(np.concatenate([tails, u_keys[~seed]]))  # a tail that had other next hops too
    b_keys = b_keys[~_member(s_keys, b_keys)[0]]
    b_rows = row_of(b_keys)
    owner, e = _expand(out_ptr, out_e, row_t[b_rows] * n + b_keys % n)
    gone = (scenario_of[e] == row_s[b_rows[owner]]) | _member(s_keys, b_rows[owner] * n + dst[e])[0]
    b_owner, b_edge = owner[~gone], e[~gone]

    # The changed nodes' new next hops, one table keyed by row * n + node.
    c_keys = np.concatenate([s_keys, b_keys])
    c_owner = np.concatenate([s_owner, len(s_keys) + b_owner])
    c_edge = np.concatenate([s_edge, b_edge])
    order = np.argsort(c_keys, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    c_keys = c_keys[order]
    c_ptr, c_edge = _csr(rank[c_owner], c_edge, len(c_keys))
    c_share = 1.0 / np.maximum(np.diff(c_ptr), 1)

    # Each changed node's own throughput leaves by its new next hops instead of its old ones ...
    c_rows = row_of(c_keys)
    c_nodes = c_keys % n
    c_targets = row_t[c_rows]
    c_through = through[c_targets * n + c_nodes]
    new_owner, new_edge = _expand(c_ptr, c_edge, np.arange(len(c_keys)))
    new_amount = c_through[new_owner] * c_share[new_owner]
    old_owner, old_edge = _expand(out_ptr, out_e, c_targets * n + c_nodes)
    old_amount = -c_through[old_owner] * routing.share[c_targets[old_owner], old_edge]
    walker_row = np.concatenate([c_rows[new_owner], c_rows[old_owner]])
    walker_edge = np.concatenate([new_edge, old_edge])
    walker_amount = np.concatenate([new_amount, old_amount])
    moved_at, moved = [], []
    # ... and the difference flows on down the new DAG: over new next hops at changed nodes, old ones elsewhere.
    for _ in range(n + 1):
        if not len(walker_row):
            break
        moved_at.append(row_s[walker_row] * n_links + walker_edge)
        moved.append(walker_amount)
        heads = dst[walker_edge]
        onward = heads != routing.targets[row_t[walker_row]]
        keys, amounts = _merge(walker_row[onward] * n + heads[onward], walker_amount[onward])
        still = np.abs(amounts) > 1e-12
        keys, amounts = keys[still], amounts[still]
        changed, position = _member(c_keys, keys)
        a_owner, a_edge = _expand(c_ptr, c_edge, position[changed])
        a_keys = keys[changed]
        a_amount = amounts[changed][a_owner] * c_share[position[changed]][a_owner]
        plain_keys, plain_amounts = keys[~changed], amounts[~changed]
        plain_rows = row_of(plain_keys)
        p_owner, p_edge = _expand(out_ptr, out_e, row_t[plain_rows] * n + plain_keys % n)
        p_amount = plain_amounts[p_owner] * routing.share[row_t[plain_rows][p_owner], p_edge]
        walker_row = np.concatenate([row_of(a_keys)[a_owner], plain_rows[p_owner]])
        walker_edge = np.concatenate([a_edge, p_edge])
        walker_amount = np.concatenate([a_amount, p_amount])
    if moved:
        loads += np.bincount(np.concatenate(moved_at), weights=np.concatenate(moved),
                             minlength=loads.size).reshape(loads.shape)


def _group_min(owner: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per owner 0..size-1, the smallest of its values (inf for none); ``owner`` ascending."""
    out = np.full(size, np.inf)
    if len(owner):
        starts = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))
        out[owner[starts]] = np.minimum.reduceat(values, starts)
    return out


def links_left_up(up: np.ndarray, scenarios: list[np.ndarray]) -> np.ndarray:
    """(scenarios × links): the links that are up once each scenario's links fail."""
    alive = np.repeat(up[None, :], len(scenarios), axis=0)
    for k, links in enumerate(scenarios):
        alive[k, links] = False
    return alive


def worst_links(loads: np.ndarray, cap: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per scenario (a row of ``alive``), its MLU and most loaded link; ``loads`` on links it fails are zeroed."""
    loads[~alive] = 0.0
    util = np.where(alive & (cap > 0), loads / np.where(cap > 0, cap, 1.0), 0.0)
    if not util.size:
        return np.zeros(len(alive)), np.zeros(len(alive), dtype=np.int64)
    worst = np.argmax(util, axis=1)
    return util[np.arange(len(alive)), worst], worst

