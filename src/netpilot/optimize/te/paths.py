"""Candidate paths per demand pair: k edge-disjoint shortest paths from batched compiled Dijkstra runs."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from netpilot.model.network import NetworkArrays

#: Edge entries per batched Dijkstra call; bounds memory at a few hundred MB.
BATCH_EDGES = 3_000_000
WEIGHTS = ("hop", "metric", "latency")


@dataclass(frozen=True)
class PathSet:
    """Paths in CSR layout: pair ``i`` owns paths ``pair_ptr[i]:pair_ptr[i+1]``; path ``q`` is the link list
    ``path_links[path_ptr[q]:path_ptr[q+1]]``, in order from source to target."""

    pairs: np.ndarray      # (P, 2) node indices
    pair_ptr: np.ndarray   # (P + 1,)
    path_ptr: np.ndarray   # (Q + 1,)
    path_links: np.ndarray  # (sum of hops,)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def n_paths(self) -> int:
        return len(self.path_ptr) - 1

    @cached_property
    def path_pair(self) -> np.ndarray:
        """(Q,) the pair each path serves."""
        return np.repeat(np.arange(self.n_pairs), np.diff(self.pair_ptr))

    @cached_property
    def paths_per_pair(self) -> np.ndarray:
        return np.diff(self.pair_ptr)

    def incidence(self, n_links: int) -> sp.csr_matrix:
        """(L, Q) 0/1 matrix: link ``e`` lies on path ``q``."""
        hops = np.diff(self.path_ptr)
        cols = np.repeat(np.arange(self.n_paths), hops)
        data = np.ones(len(self.path_links))
        return sp.csr_matrix((data, (self.path_links, cols)), shape=(n_links, self.n_paths))

    def links_of(self, q: int) -> np.ndarray:
        return self.path_links[self.path_ptr[q]:self.path_ptr[q + 1]]

    def nodes_of(self, q: int, arrays: NetworkArrays) -> list[str]:
        links = self.links_of(q)
        if len(links) == 0:
            return []
        return [arrays.node_ids[arrays.src[links[0]]], *(arrays.node_ids[arrays.dst[e]] for e in links)]

    def extend(self, new_pair: np.ndarray, new_links: list[np.ndarray]) -> PathSet:
        """This set plus the given paths (``new_pair[j]`` is the pair of ``new_links[j]``); each pair's new
        paths come after its old ones."""
        if len(new_pair) == 0:
            return self
        new_pair = np.asarray(new_pair, dtype=np.int64)
        old_hops = np.diff(self.path_ptr)
        new_hops = np.array([len(p) for p in new_links], dtype=np.int64)
        owner = np.concatenate([self.path_pair, new_pair])
        hops = np.concatenate([old_hops, new_hops])
        starts = np.concatenate([self.path_ptr[:-1], len(self.path_links) + np.cumsum(new_hops) - new_hops])
        links = np.concatenate([self.path_links, *new_links]).astype(np.int64)
        order = np.argsort(owner, kind="stable")
        hops, starts = hops[order], starts[order]
        gather = np.repeat(starts - np.cumsum(hops) + hops, hops) + np.arange(hops.sum())
        counts = np.bincount(owner, minlength=self.n_pairs)
        return PathSet(self.pairs, np.concatenate([[0], np.cumsum(counts)]),
                       np.concatenate([[0], np.cumsum(hops)]), links[gather])


def cheapest_paths(arrays: NetworkArrays, pairs: np.ndarray, link_weight: np.ndarray) -> tuple[list, np.ndarray]:
    """(path per pair as a link array or None, distance per pair) under ``link_weight`` over links that are up."""
    weights = np.maximum(np.asarray(link_weight, dtype=float), 1e-12)
    edges = _collapse_parallel(arrays, weights, arrays.up)
    n = arrays.n_nodes
    edge_u, edge_v = arrays.src[edges], arrays.dst[edges]
    graph = sp.csr_matrix((weights[edges], (edge_u, edge_v)), shape=(n, n))
    sources, inverse = np.unique(pairs[:, 0], return_inverse=True)
    dist, pred = dijkstra(graph, indices=sources, return_predecessors=True)
    paths = _walk(lambda cur, rows: pred[rows, cur], pairs[:, 1], pairs[:, 0], inverse, n, edges,
                  edge_u * n + edge_v)
    return paths, dist[inverse, pairs[:, 1]]


def _link_weights(arrays: NetworkArrays, weight: str) -> np.ndarray:
    if weight == "hop":
        return np.ones(arrays.n_links)
    if weight == "metric":
        return arrays.metric.astype(float)
    if weight == "latency":
        return np.maximum(arrays.latency_ms, 1e-6)
    raise ValueError(f"unknown path weight {weight!r}; use one of {', '.join(WEIGHTS)}")


def _collapse_parallel(arrays: NetworkArrays, weights: np.ndarray, usable: np.ndarray):
    """One edge per ordered node pair (the lightest usable link), since CSR matrices add duplicates up."""
    idx = np.flatnonzero(usable)
    order = idx[np.lexsort((weights[idx], arrays.dst[idx], arrays.src[idx]))]
    keys = arrays.src[order] * arrays.n_nodes + arrays.dst[order]
    first = np.concatenate([[True], keys[1:] != keys[:-1]])
    return order[first]  # link ids, one per (u, v), sorted by (u, v)


def k_shortest_paths(arrays: NetworkArrays, pairs: np.ndarray, k: int = 4, *, weight: str = "hop",
                     cache_dir: str | Path | None = None) -> PathSet:
    """Up to ``k`` link-disjoint paths per pair: each the shortest once the earlier ones' links are removed.

    This is the path set of Teal, NCFlow and POP (k=4, edge-disjoint, min-hop with ``weight='hop'``).
    The first path of every pair comes from one Dijkstra per source; later rounds give every pair its own
    copy of the graph without its used links, many copies to one compiled multi-source Dijkstra call.
    Results are cached on disk per topology, pair list, k and weight.
    """
    pairs = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
    if k < 1:
        raise ValueError("k must be at least 1")
    weights = _link_weights(arrays, weight)
    cache = _cache_file(arrays, pairs, k, weight, cache_dir)
    if cache is not None and cache.exists():
        with np.load(cache) as data:
            return PathSet(pairs, data["pair_ptr"], data["path_ptr"], data["path_links"])

    edges = _collapse_parallel(arrays, weights, arrays.up)
    n = arrays.n_nodes
    edge_u, edge_v, edge_w = arrays.src[edges], arrays.dst[edges], weights[edges]

    found: list[list[np.ndarray]] = [[] for _ in range(len(pairs))]
    # Round 1: shortest-path trees from each distinct source.
    graph = sp.csr_matrix((edge_w, (edge_u, edge_v)), shape=(n, n))
    sources, inverse = np.unique(pairs[:, 0], return_inverse=True)
    if len(sources):
        _, pred = dijkstra(graph, indices=sources, return_predecessors=True)
        paths = _walk(lambda cur, rows: pred[rows, cur], pairs[:, 1], pairs[:, 0], inverse, n, edges,
                      edge_u * n + edge_v)
        for i, p in enumerate(paths):
            if p is not None:
                found[i].append(p)

    used = np.zeros(len(pairs), dtype=bool)
    for _ in range(1, k):
        # Pairs whose last round found a path try for another without any link used so far.
        todo = np.array([i for i in range(len(pairs)) if len(found[i]) == _ and not used[i]], dtype=np.int64)
        if len(todo) == 0:
            break
        batch = max(1, BATCH_EDGES // max(1, len(edges)))
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            for i, p in zip(chunk, _disjoint_round(chunk, pairs, found, edges, edge_u, edge_v, edge_w, n)):
                if p is None:
                    used[i] = True
                else:
                    found[i].append(p)

    counts = np.array([len(f) for f in found], dtype=np.int64)
    flat = [p for f in found for p in f]
    hops = np.array([len(p) for p in flat], dtype=np.int64)
    result = PathSet(pairs, np.concatenate([[0], np.cumsum(counts)]), np.concatenate([[0], np.cumsum(hops)]),
                     np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, pair_ptr=result.pair_ptr, path_ptr=result.path_ptr, path_links=result.path_links)
        tmp.replace(cache)
    return result


def _disjoint_round(chunk, pairs, found, edges, edge_u, edge_v, edge_w, n):
    b, m = len(chunk), len(edges)
    keep = np.ones((b, m), dtype=bool)
    position = np.full(int(edges.max()) + 1, -1, dtype=np.int64)
    position[edges] = np.arange(m)
    rows = np.repeat(np.arange(b), [sum(len(p) for p in found[i]) for i in chunk])
    if len(rows):
        keep[rows, position[np.concatenate([p for i in chunk for p in found[i]])]] = False
    offsets = np.arange(b, dtype=np.int64) * n
    data = np.broadcast_to(edge_w, (b, m))[keep]
    graph = sp.csr_matrix((data, ((edge_u[None, :] + offsets[:, None])[keep],
                                  (edge_v[None, :] + offsets[:, None])[keep])), shape=(b * n, b * n))
    starts = pairs[chunk, 0] + offsets
    _, pred, _ = dijkstra(graph, indices=starts, min_only=True, return_predecessors=True)
    return _walk(lambda cur, _rows: pred[cur], pairs[chunk, 1] + offsets, starts, None, n, edges,
                 edge_u * n + edge_v)


def _walk(predecessor, targets, sources, rows, n, edges, edge_keys):
    """Follow predecessors from every target back to its source, all at once.

    Returns one link array per target, or None where the target is unreachable.
    """
    cur = targets.copy()
    trail = [cur]
    alive = cur != sources
    reachable = np.ones(len(cur), dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        p = predecessor(cur[idx], rows[idx] if rows is not None else None)
        dead = p < 0
        reachable[idx[dead]] = False
        cur = cur.copy()
        cur[idx[~dead]] = p[~dead]
        alive[idx[dead]] = False
        alive &= cur != sources
        trail.append(cur)
    # Finished rows repeat their source, so reversed rows read source, source, ..., target.
    path = np.stack(trail[::-1], axis=1) % n
    u, v = path[:, :-1], path[:, 1:]
    hop = u != v
    link_of_hop = edges[np.searchsorted(edge_keys, u[hop] * n + v[hop])]
    pieces = np.split(link_of_hop, np.cumsum(hop.sum(axis=1))[:-1])
    return [piece.astype(np.int64) if ok and len(piece) else None for piece, ok in zip(pieces, reachable)]


def _cache_file(arrays: NetworkArrays, pairs: np.ndarray, k: int, weight: str,
                cache_dir: str | Path | None) -> Path | None:
    root = cache_dir if cache_dir is not None else os.environ.get("NETPILOT_CACHE")
    if root is None:
        root = Path.home() / ".cache" / "netpilot"
    if str(root) == "":
        return None
    digest = hashlib.sha256()
    for array in (arrays.src, arrays.dst, arrays.up, _link_weights(arrays, weight), pairs):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(f"{k}:{weight}:{arrays.n_nodes}:v1".encode())
    return Path(root) / "paths" / f"{digest.hexdigest()[:32]}.npz"
