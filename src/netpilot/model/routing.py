"""Shortest-path forwarding as routers do it: IGP metrics, ECMP splits per node, and the loads that follow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from netpilot.model.network import NetworkArrays


@dataclass(frozen=True)
class EcmpRouting:
    """Where ECMP over shortest paths under ``metric`` sends each destination's traffic. The splits depend on
    the metrics and topology only, so ``carry`` moves any new demand over them without re-running Dijkstra."""

    metric: np.ndarray       # (L,) int
    targets: np.ndarray      # (T,) destination node indices
    on_dag: np.ndarray       # (T, L) bool: link lies on a shortest path towards the target
    share: np.ndarray        # (T, L) float: fraction of the link's source-node traffic it carries
    link_flow: np.ndarray    # (T, L) traffic towards each target on each link, for the volume routed
    unreachable: np.ndarray  # (P,) bool: pair with no path
    pairs: np.ndarray        # (P, 2) node indices
    pair_target: np.ndarray  # (P,) row of each pair's target in ``targets``
    src: np.ndarray          # (L,) link source node
    dst: np.ndarray          # (L,) link target node
    n_nodes: int
    distance: np.ndarray | None = None  # (T, N) IGP distance of each node to each target
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def loads(self) -> np.ndarray:
        return self.link_flow.sum(axis=0)

    def carry(self, volume: np.ndarray, *, compiled: bool | None = None) -> np.ndarray:
        """(T, L) traffic per target per link for ``volume`` per pair (same pairs), on these splits.
        ``compiled``: whether to use the Numba kernel (by default, where Numba is installed).

        In NumPy, traffic is pushed down every target's DAG at once over the DAG's edges only (not every
        link), until it settles: at most as many rounds as the longest shortest path has hops.
        """
        kernels = _kernels()
        if kernels.wanted(compiled):
            return kernels.carry(self, volume)
        n_targets, n = len(self.targets), self.n_nodes
        if "dag" not in self._cache:
            rows, links = np.nonzero(self.on_dag)
            self._cache["dag"] = (rows, links, rows * n + self.src[links], rows * n + self.dst[links],
                                  self.share[rows, links])
        rows, links, from_node, to_node, share = self._cache["dag"]
        injected = np.zeros(n_targets * n)
        live = ~self.unreachable
        np.add.at(injected, self.pair_target[live] * n + self.pairs[live, 0], np.asarray(volume, dtype=float)[live])
        sinks = np.arange(n_targets) * n + self.targets
        injected[sinks] = 0.0
        through = injected
        for _ in range(n):
            arriving = np.bincount(to_node, weights=through[from_node] * share, minlength=n_targets * n)
            arriving[sinks] = 0.0
            updated = injected + arriving
            if np.array_equal(updated, through):
                break
            through = updated
        flow = np.zeros((n_targets, len(self.src)))
        flow[rows, links] = through[from_node] * share
        return flow

    def link_loads(self, volume: np.ndarray) -> np.ndarray:
        """(L,) load per link for ``volume`` per pair: one sparse product with ``routing_matrix``, built on the
        second use. A routing asked once (a planner's trial metrics) pushes the volume down its DAGs instead,
        which costs a third of building the matrix."""
        volume = np.asarray(volume, dtype=float)
        if "matrix" not in self._cache and not self._cache.get("asked"):
            self._cache["asked"] = True
            return self.carry(volume).sum(axis=0)
        return self.routing_matrix() @ volume

    def routing_matrix(self, *, compiled: bool | None = None) -> sp.csr_matrix:
        """(L, P) share of each pair's traffic on each link, built once by walking every pair's ECMP DAG
        (compiled: pair by pair; in NumPy: breadth-first, all pairs at once, merging walkers that meet at a
        node)."""
        if "matrix" in self._cache:
            return self._cache["matrix"]
        n, n_links = self.n_nodes, len(self.src)
        kernels = _kernels()
        if kernels.wanted(compiled):
            link, pair, share = kernels.pair_shares(self)
            matrix = sp.csr_matrix((share, (link, pair)), shape=(n_links, len(self.pairs)))
            self._cache["matrix"] = matrix
            return matrix
        rows_t, links = np.nonzero(self.on_dag)
        order = np.lexsort((links, self.src[links], rows_t))
        keys = rows_t[order] * n + self.src[links[order]]
        out_links = links[order]
        ptr = np.searchsorted(keys, np.arange(len(self.targets) * n + 1))
        live = np.flatnonzero(~self.unreachable)
        pair, node, share = live, self.pairs[live, 0], np.ones(len(live))
        entry_link, entry_pair, entry_share = [], [], []
        for _ in range(n):
            moving = node != self.pairs[pair, 1]
            pair, node, share = pair[moving], node[moving], share[moving]
            if len(pair) == 0:
                break
            key = self.pair_target[pair] * n + node
            counts = ptr[key + 1] - ptr[key]
            walker = np.repeat(np.arange(len(pair)), counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            edge = out_links[np.repeat(ptr[key], counts) + within]
            carried = share[walker] * self.share[self.pair_target[pair[walker]], edge]
            entry_link.append(edge)
            entry_pair.append(pair[walker])
            entry_share.append(carried)
            merged, inverse = np.unique(pair[walker] * n + self.dst[edge], return_inverse=True)
            pair, node = merged // n, merged % n
            share = np.bincount(inverse, weights=carried, minlength=len(merged))
        matrix = sp.csr_matrix((np.concatenate(entry_share) if entry_share else [],
                                (np.concatenate(entry_link) if entry_link else [],
                                 np.concatenate(entry_pair) if entry_pair else [])),
                               shape=(n_links, len(self.pairs)))
        self._cache["matrix"] = matrix
        return matrix


def ecmp_flows(arrays: NetworkArrays, metric: np.ndarray, pairs: np.ndarray, volume: np.ndarray,
               up: np.ndarray | None = None, *, compiled: bool | None = None) -> EcmpRouting:
    """Shortest-path routing with even splits over equal-cost next hops (per node, as routers do) of ``volume``
    between node-index ``pairs``, all destinations at once. Links that are not ``up`` carry nothing.
    ``compiled``: whether to use the Numba kernels (by default, where Numba is installed)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    volume = np.asarray(volume, dtype=float)
    up = arrays.up if up is None else np.asarray(up, dtype=bool)
    metric = np.asarray(metric, dtype=np.int64)
    n, n_links = arrays.n_nodes, arrays.n_links
    targets, pair_target = np.unique(pairs[:, 1], return_inverse=True)
    kernels = _kernels()
    use_kernels = kernels.wanted(compiled)
    if use_kernels:
        dist, on_dag, share, order = kernels.ecmp_dags(arrays, metric, targets, up)
    else:
        dist, on_dag, share = _shortest_path_dags(arrays, metric, targets, up)
    reachable = np.isfinite(dist[pair_target, pairs[:, 0]])
    routing = EcmpRouting(metric, targets, on_dag, share, np.zeros((len(targets), n_links)),
                          ~reachable, pairs, pair_target, arrays.src, arrays.dst, n, dist)
    if use_kernels:
        kernels.keep_order(routing, order)
    object.__setattr__(routing, "link_flow", routing.carry(volume, compiled=use_kernels))
    return routing


def _shortest_path_dags(arrays: NetworkArrays, metric: np.ndarray, targets: np.ndarray, up: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In NumPy and SciPy: (distance (T, N), on DAG (T, L), share (T, L)) towards each of ``targets``."""
    n, n_links = arrays.n_nodes, arrays.n_links
    links = np.flatnonzero(up)
    # Distances *to* each target: Dijkstra from the target on the reversed graph (lightest parallel link).
    reverse = lightest_graph(arrays.dst[links], arrays.src[links], metric[links].astype(float), n)
    dist = dijkstra(reverse, indices=targets)  # (T, N): dist[t, u] = distance u -> target t
    src, dst = arrays.src, arrays.dst
    on_dag = np.zeros((len(targets), n_links), dtype=bool)
    on_dag[:, links] = np.isfinite(dist[:, src[links]]) & (dist[:, src[links]] == metric[links] + dist[:, dst[links]])
    rows, dag_links = np.nonzero(on_dag)
    next_hops = np.bincount(rows * n + src[dag_links], minlength=len(targets) * n).reshape(len(targets), n)
    share = np.where(on_dag, 1.0 / np.maximum(next_hops[:, src], 1.0), 0.0)
    return dist, on_dag, share


def igp_loads(arrays: NetworkArrays, metric: np.ndarray, pairs: np.ndarray, volume: np.ndarray, up: np.ndarray,
              *, compiled: bool | None = None) -> tuple[np.ndarray, float]:
    """(load per link, traffic with no path) of ``volume`` between node-index ``pairs`` on shortest-path ECMP
    over the links ``up``."""
    routing = ecmp_flows(arrays, metric, pairs, volume, up, compiled=compiled)
    return routing.loads, float(np.asarray(volume, dtype=float)[routing.unreachable].sum())


def _kernels():
    """The Numba kernels module, imported on first use: importing Numba takes ~0.15 s, which commands that
    only need ``lightest_graph`` (``te solve``) should not pay."""
    from netpilot.model import kernels

    return kernels


def lightest_graph(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int) -> sp.csr_matrix:
    """(n, n) sparse graph with one edge per ordered node pair, the lightest of its parallel links (a CSR
    matrix would add duplicates up)."""
    keys = src * n + dst
    order = np.lexsort((w, keys))
    keys, w = keys[order], w[order]
    first = np.concatenate([[True], keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=bool)
    keys = keys[first]
    # Sorted by row already: the CSR arrays directly (building from coordinates costs more than the search).
    indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // n, minlength=n))])
    return sp.csr_matrix((w[first], keys % n, indptr), shape=(n, n))




def latency_matrix(arrays: NetworkArrays, sources: np.ndarray, targets: np.ndarray,
                   utilisation: np.ndarray | None = None, *, per_hop_ms: float = 0.0,
                   service_ms: float = 0.05) -> np.ndarray:
    """(len(sources), len(targets)) one-way latency in ms over the lowest-latency path on links that are up:
    propagation, plus ``per_hop_ms`` of switching per link, plus M/M/1 queueing ``service_ms * u / (1 - u)``
    where link ``utilisation`` is given (capped at 99 %). Unreachable pairs are ``inf``."""
    delay = arrays.latency_ms + per_hop_ms
    if utilisation is not None:
        u = np.minimum(np.asarray(utilisation, dtype=float), 0.99)
        delay = delay + service_ms * u / (1.0 - u)
    up = np.flatnonzero(arrays.up)
    graph = lightest_graph(arrays.src[up], arrays.dst[up], np.maximum(delay[up], 1e-9), arrays.n_nodes)
    sources = np.asarray(sources, dtype=np.int64)
    dist = dijkstra(graph, indices=sources)
    return dist[:, np.asarray(targets, dtype=np.int64)]
