"""Compiled (Numba) versions of the two routing loops every stage of the autopilot runs: pushing demand down
the ECMP DAGs of a routing, and the single-failure what-if. Used when Numba is installed (``pip install
netpilot[fast]``); the NumPy versions in ``routing`` and ``whatif`` give the same loads without it.

Both walk one destination at a time in the order of its shortest-path distances, which NumPy can only do in
rounds over every destination at once: that is where the time went (a what-if of every single failure of the
124-node bundled network: 63 ms in NumPy; see BENCHMARKS.md for what this gives).
"""

from __future__ import annotations

import heapq

import numpy as np

try:
    import numba
except ImportError:  # the optional extra is not installed: the NumPy versions run
    numba = None

AVAILABLE = numba is not None


def _jit(function):
    return numba.njit(cache=True, nogil=True)(function) if AVAILABLE else function


@_jit
def _push(order, injected, out_ptr, out_links, on_dag, share, dst, targets, flow):  # pragma: no cover - compiled
    """Per destination, its injected traffic down its DAG, farthest node first (``order``: nodes by distance,
    farthest first): every node's inflow is complete before it passes it on."""
    n_targets, n = order.shape
    through = np.empty(n)
    for t in range(n_targets):
        through[:] = injected[t]
        target = targets[t]
        for k in range(n):
            v = order[t, k]
            amount = through[v]
            if amount == 0.0 or v == target:
                continue
            for j in range(out_ptr[v], out_ptr[v + 1]):
                e = out_links[j]
                if on_dag[t, e]:
                    carried = amount * share[t, e]
                    flow[t, e] = carried
                    through[dst[e]] += carried


def carry(routing, volume: np.ndarray) -> np.ndarray:
    """``EcmpRouting.carry``: (T, L) traffic per target per link for ``volume`` per pair."""
    n_targets, n = len(routing.targets), routing.n_nodes
    cache = routing._cache
    if "order" not in cache:
        dist = routing.distance
        farthest_first = np.argsort(-np.where(np.isfinite(dist), dist, -1.0), axis=1, kind="stable")
        cache["order"] = (farthest_first, *_out_lists(routing.src, n))
    order, out_ptr, out_links = cache["order"]
    injected = np.zeros((n_targets, n))
    live = ~routing.unreachable
    np.add.at(injected, (routing.pair_target[live], routing.pairs[live, 0]), np.asarray(volume, dtype=float)[live])
    flow = np.zeros((n_targets, len(routing.src)))
    _push(order, injected, out_ptr, out_links, routing.on_dag, routing.share, routing.dst, routing.targets, flow)
    return flow


def _out_lists(src: np.ndarray, n: int, links: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, links): the links leaving node v are links[ptr[v]:ptr[v + 1]] (``links``: these only)."""
    links = np.arange(len(src)) if links is None else links
    order = links[np.argsort(src[links], kind="stable")]
    return np.concatenate([[0], np.cumsum(np.bincount(src[links], minlength=n))]), order


@_jit
def _all_gone(v, s, t, scenario_of, dst, out_ptr, out_links, on_dag, in_s):  # pragma: no cover - compiled
    """Whether every next hop ``v`` had towards destination ``t`` is failed in ``s`` or leads into S."""
    for j in range(out_ptr[v], out_ptr[v + 1]):
        e = out_links[j]
        if on_dag[t, e] and scenario_of[e] != s and not in_s[dst[e]]:
            return False
    return True


@_jit
def _reroute(row_s, row_t, targets, scenario_of, failed_ptr, failed_links, src, dst, metric, out_ptr, out_links,
             in_ptr, in_links, dist, on_dag, share, link_flow, injected, loads, stranded):  # pragma: no cover
    """For each row (scenario s, destination t whose DAG used a link s fails): the loads that move when t's
    traffic is routed again with s's links down, added to ``loads[s]``. As the NumPy version does, it touches
    only what moves: the nodes whose every shortest path crossed a failed link (S) get new distances; they and
    the nodes with a next hop into S or over a failed link (B) send what they carried over their new next hops
    instead of their old ones; and the difference flows on down the new DAG, farthest node first (a heap)."""
    n = dist.shape[1]
    in_s = np.zeros(n, dtype=np.bool_)
    changed = np.zeros(n, dtype=np.bool_)
    settled = np.zeros(n, dtype=np.bool_)
    queued = np.zeros(n, dtype=np.bool_)
    members = np.empty(n, dtype=np.int64)  # S
    touched = np.empty(n, dtype=np.int64)  # S and B
    renewed = np.empty(n)  # new distance, of S's nodes
    own = np.zeros(n)  # what a node of S or B carried before
    arriving = np.zeros(n)
    heap = [(0.0, 0)]  # (minus distance, node): empty between rows
    heap.pop()
    for r in range(len(row_s)):
        s, t = row_s[r], row_t[r]
        target = targets[t]
        old = dist[t]
        count = n_touched = 0
        for j in range(failed_ptr[s], failed_ptr[s + 1]):
            e = failed_links[j]
            if on_dag[t, e] and not changed[src[e]]:
                changed[src[e]] = True
                touched[n_touched] = src[e]
                n_touched += 1
        for i in range(n_touched):
            u = touched[i]
            if _all_gone(u, s, t, scenario_of, dst, out_ptr, out_links, on_dag, in_s):
                in_s[u] = True
                members[count] = u
                count += 1
        # S grows upwards; a node is checked again whenever one of its next hops joins.
        i = 0
        while i < count:
            v = members[i]
            i += 1
            for j in range(in_ptr[v], in_ptr[v + 1]):
                e = in_links[j]
                w = src[e]
                if not on_dag[t, e] or in_s[w]:
                    continue
                if not changed[w]:
                    changed[w] = True
                    touched[n_touched] = w
                    n_touched += 1
                if _all_gone(w, s, t, scenario_of, dst, out_ptr, out_links, on_dag, in_s):
                    in_s[w] = True
                    members[count] = w
                    count += 1
        # New distances inside S: Dijkstra over S from the offers of its exits (outside S nothing moved).
        for i in range(count):
            v = members[i]
            best = np.inf
            for j in range(out_ptr[v], out_ptr[v + 1]):
                e = out_links[j]
                w = dst[e]
                if scenario_of[e] != s and not in_s[w] and metric[e] + old[w] < best:
                    best = metric[e] + old[w]
            renewed[v] = best
        for _ in range(count):
            pick, best = -1, np.inf
            for i in range(count):
                v = members[i]
                if not settled[v] and renewed[v] < best:
                    pick, best = v, renewed[v]
            if pick < 0:
                break
            settled[pick] = True
            for j in range(in_ptr[pick], in_ptr[pick + 1]):
                e = in_links[j]
                w = src[e]
                if in_s[w] and not settled[w] and scenario_of[e] != s and metric[e] + best < renewed[w]:
                    renewed[w] = metric[e] + best
        # S and B take back what they sent over their old next hops ...
        for i in range(n_touched):
            c = touched[i]
            carried = 0.0
            for j in range(out_ptr[c], out_ptr[c + 1]):
                e = out_links[j]
                if on_dag[t, e]:
                    f = link_flow[t, e]
                    carried += f
                    loads[s, e] -= f
                    arriving[dst[e]] -= f
                    if not queued[dst[e]]:
                        queued[dst[e]] = True
                        heapq.heappush(heap, (-(renewed[dst[e]] if in_s[dst[e]] else old[dst[e]]), dst[e]))
            own[c] = carried
            if not queued[c]:
                queued[c] = True
                heapq.heappush(heap, (-(renewed[c] if in_s[c] else old[c]), c))
            if in_s[c] and not np.isfinite(renewed[c]):
                stranded[s] += injected[t, c]
        # ... and what each node carries now flows on, over new next hops at S and B, old ones elsewhere.
        while len(heap):
            _, v = heapq.heappop(heap)
            queued[v] = False
            amount = arriving[v]
            arriving[v] = 0.0
            if v == target:
                continue
            if changed[v]:
                amount += own[v]
                here = renewed[v] if in_s[v] else old[v]
                if not np.isfinite(here) or amount == 0.0:
                    continue
                hops = 0
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    w = dst[e]
                    if scenario_of[e] != s and here == metric[e] + (renewed[w] if in_s[w] else old[w]):
                        hops += 1
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    w = dst[e]
                    if scenario_of[e] != s and here == metric[e] + (renewed[w] if in_s[w] else old[w]):
                        _send(loads, s, e, w, amount / hops, arriving, queued, heap, renewed, in_s, old)
            elif amount != 0.0:
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    if on_dag[t, e]:
                        _send(loads, s, e, dst[e], amount * share[t, e], arriving, queued, heap, renewed, in_s, old)
        for i in range(n_touched):
            c = touched[i]
            changed[c] = in_s[c] = settled[c] = False


@_jit
def _send(loads, s, e, w, amount, arriving, queued, heap, renewed, in_s, old):  # pragma: no cover - compiled
    loads[s, e] += amount
    arriving[w] += amount
    if not queued[w]:
        queued[w] = True
        heapq.heappush(heap, (-(renewed[w] if in_s[w] else old[w]), w))


def reroute(arrays, routing, volume: np.ndarray, scenario_of: np.ndarray, row_s: np.ndarray, row_t: np.ndarray,
            loads: np.ndarray, stranded: np.ndarray) -> None:
    """The what-if's rows (scenario, destination) routed again, into ``loads`` and ``stranded`` (see
    ``whatif.what_if``)."""
    n = arrays.n_nodes
    up = np.flatnonzero(arrays.up)
    out_ptr, out_links = _out_lists(arrays.src, n, up)
    in_ptr, in_links = _out_lists(arrays.dst, n, up)
    failing = np.flatnonzero(scenario_of >= 0)
    failed_ptr, failed_links = _out_lists(scenario_of, int(scenario_of.max(initial=-1)) + 1, failing)
    injected = np.zeros((len(routing.targets), n))
    live = ~routing.unreachable
    np.add.at(injected, (routing.pair_target[live], routing.pairs[live, 0]), np.asarray(volume, dtype=float)[live])
    _reroute(row_s.astype(np.int64), row_t.astype(np.int64), routing.targets.astype(np.int64), scenario_of,
             failed_ptr, failed_links, arrays.src.astype(np.int64), arrays.dst.astype(np.int64),
             np.asarray(routing.metric, dtype=float), out_ptr, out_links, in_ptr, in_links, routing.distance,
             routing.on_dag, routing.share, routing.link_flow, injected, loads, stranded)


def warm_up() -> None:
    """Compile the kernels now (seconds, the first time on a machine; then read from Numba's cache), so that a
    loop's first tick does not pay for it. A program calls it once it is set up."""
    if not AVAILABLE:
        return
    from netpilot.model.network import Demand, Link, Network, Router
    from netpilot.model.routing import ecmp_flows
    from netpilot.model.whatif import failure_scenarios, what_if

    names = ["a", "b", "c"]
    links = [Link(source=x, target=y, capacity=10.0, metric=1) for x in names for y in names if x != y]
    network = Network(name="warm-up", nodes=[Router(id=x) for x in names], links=links,
                      demands=[Demand(source="a", target="c", volume=1.0)])
    arrays = network.arrays()
    pairs, volume = arrays.demand_pairs()
    routing = ecmp_flows(arrays, arrays.metric, pairs, volume)
    what_if(arrays, routing, volume, failure_scenarios(arrays), compiled=True)
