"""Compiled (Numba) versions of the routing loops every stage of the autopilot runs: ECMP routing (distances,
DAGs, splits), pushing demand down the DAGs, the routing matrix and the single-failure what-if. Used when
Numba is installed (``pip install netpilot[fast]``); the NumPy versions in ``routing`` and ``whatif`` give the
same results without it.

Each walks one destination (or pair, or failure and destination) at a time in the order of its shortest-path
distances, which NumPy can only do in rounds over all of them at once: that is where the time went (the
what-if of every single failure of the 124-node bundled network is about 4x faster compiled; see
BENCHMARKS.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

try:
    import numba
except ImportError:  # the optional extra is not installed: the NumPy versions run
    numba = None

AVAILABLE = numba is not None


def wanted(compiled: bool | None) -> bool:
    """Whether a caller's ``compiled`` argument asks for the kernels (None: where Numba is installed)."""
    return AVAILABLE if compiled is None else compiled


def jit(function=None, **options):
    """``function`` compiled by Numba (cached, without the GIL; ``options`` as ``numba.njit`` takes them) where it
    is installed, else ``function`` itself; usable bare (``@jit``) or with options (``@jit(inline="always")``)."""
    if function is None:
        return lambda f: jit(f, **options)
    return numba.njit(cache=True, nogil=True, **options)(function) if AVAILABLE else function


@jit
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
    order, out_ptr, out_links = _orders(routing)
    injected = np.zeros((n_targets, n))
    live = ~routing.unreachable
    np.add.at(injected, (routing.pair_target[live], routing.pairs[live, 0]), np.asarray(volume, dtype=float)[live])
    flow = np.zeros((n_targets, len(routing.src)))
    _push(order, injected, out_ptr, out_links, routing.on_dag, routing.share, routing.dst, routing.targets, flow)
    return flow


def _orders(routing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes by distance to each target, farthest first; the links out of each node), kept with the routing."""
    if "order" not in routing._cache:
        dist = routing.distance
        keep_order(routing, np.argsort(-np.where(np.isfinite(dist), dist, -1.0), axis=1, kind="stable"))
    return routing._cache["order"]


def keep_order(routing, farthest_first: np.ndarray) -> None:
    """Keep with ``routing`` its nodes by distance to each target, farthest first (the compiled Dijkstra gives
    them as it goes)."""
    routing._cache["order"] = (farthest_first, *out_lists(routing.src, routing.n_nodes))


def out_lists(src: np.ndarray, n: int, links: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, links): the links leaving node v are links[ptr[v]:ptr[v + 1]] (``links``: these only)."""
    links = np.arange(len(src)) if links is None else links
    order = links[np.argsort(src[links], kind="stable")]
    return np.concatenate([[0], np.cumsum(np.bincount(src[links], minlength=n))]), order


@jit
def _all_gone(v, s, t, scenario_of, dst, out_ptr, out_links, on_dag, in_s):  # pragma: no cover - compiled
    """Whether every next hop ``v`` had towards destination ``t`` is failed in ``s`` or leads into S."""
    for j in range(out_ptr[v], out_ptr[v + 1]):
        e = out_links[j]
        if on_dag[t, e] and scenario_of[e] != s and not in_s[dst[e]]:
            return False
    return True


@jit
def _reroute(row_s, row_t, targets, scenario_of, failed_ptr, failed_links, src, dst, metric, out_ptr, out_links,
             in_ptr, in_links, dist, on_dag, share, link_flow, injected, loads, stranded):  # pragma: no cover
    """For each row (scenario s, destination t whose DAG used a link s fails): the loads that move when t's
    traffic is routed again with s's links down, added to ``loads[s]``. As the NumPy version does, it touches
    only what moves: the nodes whose every shortest path crossed a failed link (S) get new distances; they and
    the nodes with a next hop into S or over a failed link (B) send what they carried over their new next hops
    instead of their old ones; and the difference flows on down the new DAG, farthest node first (a heap keyed
    by minus the distance)."""
    n = dist.shape[1]
    in_s = np.zeros(n, dtype=np.bool_)
    changed = np.zeros(n, dtype=np.bool_)
    settled = np.zeros(n, dtype=np.bool_)
    members = np.empty(n, dtype=np.int64)  # S
    touched = np.empty(n, dtype=np.int64)  # S and B
    renewed = np.empty(n)  # new distance, of S's nodes
    own = np.zeros(n)  # what a node of S or B carried before
    arriving = np.zeros(n)
    heap, slot, key = np.empty(n, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.empty(n)  # farthest first
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
        # An indexed heap, not a scan of S for its nearest node: S is the whole network upstream of a failed
        # stub link for the destination behind it (a cell's uplink), and scanning made that row quadratic (50 s
        # of a 2,300-node network's 55 s). The heap is empty between the phases; metrics are whole numbers, so
        # the distances are exact and the same in whatever order ties settle.
        size = 0
        for i in range(count):
            v = members[i]
            if np.isfinite(renewed[v]):
                size = _enqueue(v, renewed[v], heap, slot, renewed, size)
        while size:
            pick = _pop(heap, slot, renewed, size)
            size -= 1
            best = renewed[pick]
            settled[pick] = True
            for j in range(in_ptr[pick], in_ptr[pick + 1]):
                e = in_links[j]
                w = src[e]
                if in_s[w] and not settled[w] and scenario_of[e] != s and metric[e] + best < renewed[w]:
                    renewed[w] = metric[e] + best
                    if slot[w] < 0:
                        size = _enqueue(w, renewed[w], heap, slot, renewed, size)
                    else:
                        _sift_up(heap, slot, renewed, slot[w])
        # S and B take back what they sent over their old next hops ...
        size = 0
        for i in range(n_touched):
            c = touched[i]
            carried = 0.0
            for j in range(out_ptr[c], out_ptr[c + 1]):
                e = out_links[j]
                if on_dag[t, e]:
                    carried += link_flow[t, e]
                    size = _send(loads, s, e, dst[e], -link_flow[t, e], arriving, heap, slot, key, size, in_s,
                                 renewed, old)
            own[c] = carried
            size = _enqueue(c, -_distance(c, in_s, renewed, old), heap, slot, key, size)
            if in_s[c] and not np.isfinite(renewed[c]):
                stranded[s] += injected[t, c]
        # ... and what each node carries now flows on, over new next hops at S and B, old ones elsewhere.
        while size:
            v = _pop(heap, slot, key, size)
            size -= 1
            amount = arriving[v]
            arriving[v] = 0.0
            if v == target:
                continue
            if changed[v]:
                amount += own[v]
                here = _distance(v, in_s, renewed, old)
                if not np.isfinite(here) or amount == 0.0:
                    continue
                hops = 0
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    if scenario_of[e] != s and here == metric[e] + _distance(dst[e], in_s, renewed, old):
                        hops += 1
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    if scenario_of[e] != s and here == metric[e] + _distance(dst[e], in_s, renewed, old):
                        size = _send(loads, s, e, dst[e], amount / hops, arriving, heap, slot, key, size, in_s,
                                     renewed, old)
            elif amount != 0.0:
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    if on_dag[t, e]:
                        size = _send(loads, s, e, dst[e], amount * share[t, e], arriving, heap, slot, key, size,
                                     in_s, renewed, old)
        for i in range(n_touched):
            c = touched[i]
            changed[c] = in_s[c] = settled[c] = False


@jit(inline="always")
def _distance(v, in_s, renewed, old):  # pragma: no cover - compiled
    """A node's distance after the failure: new in S, as before elsewhere."""
    return renewed[v] if in_s[v] else old[v]


@jit(inline="always")
def _send(loads, s, e, w, amount, arriving, heap, slot, key, size, in_s, renewed, old):  # pragma: no cover
    """``amount`` more over link ``e`` into ``w``, which then has it to pass on; the heap's new size."""
    loads[s, e] += amount
    arriving[w] += amount
    return _enqueue(w, -_distance(w, in_s, renewed, old), heap, slot, key, size)


def reroute(arrays, routing, volume: np.ndarray, scenario_of: np.ndarray, row_s: np.ndarray, row_t: np.ndarray,
            loads: np.ndarray, stranded: np.ndarray, *, threads: int | None = None) -> None:
    """The what-if's rows (scenario, destination) routed again, into ``loads`` and ``stranded`` (see
    ``whatif.what_if``). Rows come sorted by scenario. With many of them they are cut at scenario boundaries
    into one run per core (``threads``: how many; by default the cores this process may use), routed side by
    side (the kernel releases the GIL): each scenario's row of ``loads`` is still written by one run, in the
    same order, so the result is the same to the bit."""
    n = arrays.n_nodes
    up = np.flatnonzero(arrays.up)
    out_ptr, out_links = out_lists(arrays.src, n, up)
    in_ptr, in_links = out_lists(arrays.dst, n, up)
    failing = np.flatnonzero(scenario_of >= 0)
    failed_ptr, failed_links = out_lists(scenario_of, int(scenario_of.max(initial=-1)) + 1, failing)
    injected = np.zeros((len(routing.targets), n))
    live = ~routing.unreachable
    np.add.at(injected, (routing.pair_target[live], routing.pairs[live, 0]), np.asarray(volume, dtype=float)[live])
    shared = (routing.targets.astype(np.int64), scenario_of, failed_ptr, failed_links, arrays.src.astype(np.int64),
              arrays.dst.astype(np.int64), np.asarray(routing.metric, dtype=float), out_ptr, out_links, in_ptr,
              in_links, routing.distance, routing.on_dag, routing.share, routing.link_flow, injected, loads, stranded)
    row_s, row_t = row_s.astype(np.int64), row_t.astype(np.int64)
    runs = _scenario_runs(row_s, threads if threads is not None else cores(), n)
    if len(runs) == 1:
        _reroute(row_s, row_t, *shared)
        return
    with ThreadPoolExecutor(len(runs)) as pool:
        for done in [pool.submit(_reroute, row_s[a:b], row_t[a:b], *shared) for a, b in runs]:
            done.result()


# Rows times nodes under which one run does it all: threads cost more than they save on small what-ifs.
PARALLEL_WORK = 200_000


def _scenario_runs(row_s: np.ndarray, threads: int, n: int) -> list[tuple[int, int]]:
    """[start, end) runs of ``row_s`` (sorted), about equal in rows, cut only where the scenario changes."""
    if threads <= 1 or len(row_s) * n < PARALLEL_WORK:
        return [(0, len(row_s))]
    cuts = [0]
    for k in range(1, threads):
        at = int(np.searchsorted(row_s, row_s[len(row_s) * k // threads]))  # the first row of that scenario
        if at > cuts[-1]:
            cuts.append(at)
    cuts.append(len(row_s))
    return [(a, b) for a, b in pairwise(cuts) if b > a]


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@jit(inline="always")
def _sift_up(heap, slot, key, i):  # pragma: no cover - compiled
    """Move the node at heap position ``i`` up to where its key belongs (an indexed binary min-heap:
    ``slot[v]`` is v's position)."""
    v = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        if key[heap[parent]] <= key[v]:
            break
        heap[i] = heap[parent]
        slot[heap[i]] = i
        i = parent
    heap[i] = v
    slot[v] = i


@jit(inline="always")
def _enqueue(v, priority, heap, slot, key, size):  # pragma: no cover - compiled
    """Put ``v`` in the heap with ``priority`` (its ``key``) unless it is there already; the heap's new size."""
    if slot[v] >= 0:
        return size
    key[v] = priority
    heap[size] = v
    slot[v] = size
    _sift_up(heap, slot, key, size)
    return size + 1


@jit(inline="always")
def _pop(heap, slot, key, size):  # pragma: no cover - compiled
    """The node with the least key; the heap then holds ``size - 1``."""
    top = heap[0]
    slot[top] = -1
    size -= 1
    if size > 0:
        v = heap[size]
        i = 0
        while True:
            child = 2 * i + 1
            if child >= size:
                break
            if child + 1 < size and key[heap[child + 1]] < key[heap[child]]:
                child += 1
            if key[heap[child]] >= key[v]:
                break
            heap[i] = heap[child]
            slot[heap[i]] = i
            i = child
        heap[i] = v
        slot[v] = i
    return top


@jit
def _dags(targets, src, dst, metric, usable, out_ptr, out_links, in_ptr, in_links, dist, on_dag, share,
          order):  # pragma: no cover - compiled
    """Per destination: Dijkstra towards it over the usable links (an indexed heap), its ECMP DAG (the links
    on a shortest path) with each link's share of its tail's traffic, and its nodes farthest first."""
    n = dist.shape[1]
    heap = np.empty(n, dtype=np.int64)
    slot = np.full(n, -1, dtype=np.int64)  # -1: not in the heap
    for t in range(len(targets)):
        distance = dist[t]
        distance[:] = np.inf
        distance[targets[t]] = 0.0
        heap[0] = targets[t]
        slot[targets[t]] = 0
        size = 1
        reached = 0
        while size:
            v = _pop(heap, slot, distance, size)
            size -= 1
            reached += 1
            order[t, n - reached] = v
            d = distance[v]
            for j in range(in_ptr[v], in_ptr[v + 1]):
                e = in_links[j]
                w = src[e]
                if usable[e] and d + metric[e] < distance[w]:  # never true of a node settled already
                    if slot[w] < 0:
                        size = _enqueue(w, d + metric[e], heap, slot, distance, size)
                    else:
                        distance[w] = d + metric[e]
                        _sift_up(heap, slot, distance, slot[w])
        k = 0
        for v in range(n):
            if np.isfinite(distance[v]):
                hops = 0
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    if usable[e] and distance[v] == metric[e] + distance[dst[e]]:
                        on_dag[t, e] = True
                        hops += 1
                for j in range(out_ptr[v], out_ptr[v + 1]):
                    e = out_links[j]
                    if on_dag[t, e]:
                        share[t, e] = 1.0 / hops
            else:
                order[t, k] = v  # cannot reach t: first, where no DAG link leaves them
                k += 1


def ecmp_dags(arrays, metric: np.ndarray, targets: np.ndarray, up: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``routing.ecmp_flows``'s shortest paths: (distance (T, N), on DAG (T, L), share (T, L), nodes by
    distance to each target farthest first (T, N))."""
    n, n_links = arrays.n_nodes, arrays.n_links
    out_ptr, out_links = out_lists(arrays.src, n)
    in_ptr, in_links = out_lists(arrays.dst, n)
    dist = np.empty((len(targets), n))
    on_dag = np.zeros((len(targets), n_links), dtype=np.bool_)
    share = np.zeros((len(targets), n_links))
    order = np.empty((len(targets), n), dtype=np.int64)
    _dags(targets.astype(np.int64), arrays.src.astype(np.int64), arrays.dst.astype(np.int64),
          np.asarray(metric, dtype=float), np.asarray(up, dtype=np.bool_), out_ptr, out_links, in_ptr, in_links,
          dist, on_dag, share, order)
    return dist, on_dag, share, order


@jit
def _pair_shares(order, position, pair_source, pair_row, targets, out_ptr, out_links, on_dag, share, dst,
                 entry_link, entry_pair, entry_share):  # pragma: no cover - compiled
    """Per pair, a unit of traffic from its source down its destination's DAG, farthest node first from the
    source's place in that order on: the share it puts on each link. Returns the number of entries."""
    n = order.shape[1]
    through = np.zeros(n)
    count = 0
    for p in range(len(pair_source)):
        t, v0 = pair_row[p], pair_source[p]
        target = targets[t]
        through[v0] = 1.0
        for k in range(position[t, v0], n):
            v = order[t, k]
            amount = through[v]
            if amount == 0.0:
                continue
            through[v] = 0.0
            if v == target:
                continue
            for j in range(out_ptr[v], out_ptr[v + 1]):
                e = out_links[j]
                if on_dag[t, e]:
                    carried = amount * share[t, e]
                    entry_link[count] = e
                    entry_pair[count] = p
                    entry_share[count] = carried
                    count += 1
                    through[dst[e]] += carried
    return count


def pair_shares(routing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``EcmpRouting.routing_matrix``'s entries: (link, pair, share of the pair's traffic on the link)."""
    order, out_ptr, out_links = _orders(routing)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(order.shape[1])[None, :], axis=1)
    live = np.flatnonzero(~routing.unreachable)
    dag_size = np.count_nonzero(routing.on_dag, axis=1)
    size = int(dag_size[routing.pair_target[live]].sum())  # a pair uses each link of its DAG once at most
    entry_link, entry_pair = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    entry_share = np.empty(size)
    count = _pair_shares(order, position, routing.pairs[live, 0].astype(np.int64),
                         routing.pair_target[live].astype(np.int64), routing.targets.astype(np.int64), out_ptr,
                         out_links, routing.on_dag, routing.share, routing.dst.astype(np.int64), entry_link,
                         entry_pair, entry_share)
    return entry_link[:count], live[entry_pair[:count]], entry_share[:count]


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
    routing.routing_matrix(compiled=True)
