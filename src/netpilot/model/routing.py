"""Shortest-path forwarding as routers do it: IGP metrics, ECMP splits per node, and the loads that follow."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def loads(self) -> np.ndarray:
        return self.link_flow.sum(axis=0)

    def carry(self, volume: np.ndarray) -> np.ndarray:
        """(T, L) traffic per target per link for ``volume`` per pair (same pairs), on these splits."""
        n_targets = len(self.targets)
        injected = np.zeros((n_targets, self.n_nodes))
        live = ~self.unreachable
        np.add.at(injected, (self.pair_target[live], self.pairs[live, 0]), np.asarray(volume, dtype=float)[live])
        injected[np.arange(n_targets), self.targets] = 0.0
        through = injected
        for _ in range(self.n_nodes):
            arriving = np.zeros_like(through)
            _scatter_columns(arriving, self.dst, through[:, self.src] * self.share)
            arriving[np.arange(n_targets), self.targets] = 0.0
            updated = injected + arriving
            if np.array_equal(updated, through):
                break
            through = updated
        return through[:, self.src] * self.share

    def link_loads(self, volume: np.ndarray) -> np.ndarray:
        """(L,) load per link for ``volume`` per pair."""
        return self.carry(volume).sum(axis=0)


def ecmp_flows(arrays: NetworkArrays, metric: np.ndarray, pairs: np.ndarray, volume: np.ndarray,
               up: np.ndarray | None = None) -> EcmpRouting:
    """Shortest-path routing with even splits over equal-cost next hops (per node, as routers do) of ``volume``
    between node-index ``pairs``, all destinations at once. Links that are not ``up`` carry nothing."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    volume = np.asarray(volume, dtype=float)
    up = arrays.up if up is None else np.asarray(up, dtype=bool)
    metric = np.asarray(metric, dtype=np.int64)
    n, n_links = arrays.n_nodes, arrays.n_links
    targets, pair_target = np.unique(pairs[:, 1], return_inverse=True)
    links = np.flatnonzero(up)
    # Distances *to* each target: Dijkstra from the target on the reversed graph (lightest parallel link).
    reverse = _lightest(arrays.dst[links], arrays.src[links], metric[links].astype(float), n)
    dist = dijkstra(reverse, indices=targets)  # (T, N): dist[t, u] = distance u -> target t
    src, dst = arrays.src, arrays.dst
    on_dag = np.zeros((len(targets), n_links), dtype=bool)
    on_dag[:, links] = np.isfinite(dist[:, src[links]]) & (dist[:, src[links]] == metric[links] + dist[:, dst[links]])
    next_hops = np.zeros((len(targets), n))
    rows = np.repeat(np.arange(len(targets)), on_dag.sum(axis=1))
    np.add.at(next_hops, (rows, src[np.nonzero(on_dag)[1]]), 1.0)
    share = np.where(on_dag, 1.0 / np.maximum(next_hops[:, src], 1.0), 0.0)
    reachable = np.isfinite(dist[pair_target, pairs[:, 0]])
    routing = EcmpRouting(metric, targets, on_dag, share, np.zeros((len(targets), n_links)), ~reachable, pairs,
                          pair_target, src, dst, n)
    object.__setattr__(routing, "link_flow", routing.carry(volume))
    return routing


def _scatter_columns(out: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
    """``out[:, columns[j]] += values[:, j]`` for every j, duplicates summed."""
    n = out.shape[1]
    matrix = sp.csr_matrix((np.ones(len(columns)), (np.arange(len(columns)), columns)), shape=(len(columns), n))
    out += values @ matrix


def _lightest(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int) -> sp.csr_matrix:
    keys = src * n + dst
    order = np.lexsort((w, keys))
    keys, w = keys[order], w[order]
    first = np.concatenate([[True], keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=bool)
    return sp.csr_matrix((w[first], (keys[first] // n, keys[first] % n)), shape=(n, n))


