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

    def subset(self, rows: np.ndarray, pairs: np.ndarray | None = None) -> PathSet:
        """The paths of pairs ``rows`` (in that order), relabelled as ``pairs`` (default: their own)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.paths_per_pair[rows]
        first = np.repeat(self.pair_ptr[rows] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        hops = np.diff(self.path_ptr)[first]
        gather = np.repeat(self.path_ptr[first] - np.cumsum(hops) + hops, hops) + np.arange(hops.sum())
        return PathSet(self.pairs[rows] if pairs is None else pairs, np.concatenate([[0], np.cumsum(counts)]),
                       np.concatenate([[0], np.cumsum(hops)]), self.path_links[gather])

    def beyond(self, counts: np.ndarray) -> PathSet:
        """Each pair's paths after its first ``counts[i]``, for the pairs that have any (say, the paths column
        generation added to a k-shortest set)."""
        extra = self.paths_per_pair - np.asarray(counts, dtype=np.int64)
        rows = np.flatnonzero(extra > 0)
        first = np.repeat(self.pair_ptr[rows] + counts[rows] - np.cumsum(extra[rows]) + extra[rows], extra[rows]) \
            + np.arange(extra[rows].sum())
        hops = np.diff(self.path_ptr)[first]
        gather = np.repeat(self.path_ptr[first] - np.cumsum(hops) + hops, hops) + np.arange(hops.sum())
        return PathSet(self.pairs[rows], np.concatenate([[0], np.cumsum(extra[rows])]),
                       np.concatenate([[0], np.cumsum(hops)]), self.path_links[gather])

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
    Results are cached on disk per topology (``PathCache``): pairs seen before cost a file read.
    """
    pairs = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
    if k < 1:
        raise ValueError("k must be at least 1")
    cache = PathCache.open(arrays, k, weight, cache_dir)
    if cache is None:
        return _compute_k_shortest(arrays, pairs, k, weight)
    known, missing = cache.lookup(pairs)
    if len(missing):
        computed = _compute_k_shortest(arrays, pairs[missing], k, weight)
        cache.add(computed)
        known, missing = cache.lookup(pairs)
    return known


def _compute_k_shortest(arrays: NetworkArrays, pairs: np.ndarray, k: int, weight: str) -> PathSet:
    weights = _link_weights(arrays, weight)
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
    return PathSet(pairs, np.concatenate([[0], np.cumsum(counts)]), np.concatenate([[0], np.cumsum(hops)]),
                   np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64))


def cache_root(cache_dir: str | Path | None = None) -> Path | None:
    """Where netpilot keeps computed path sets: ``cache_dir``, else ``$NETPILOT_CACHE``, else
    ``$XDG_CACHE_HOME/netpilot``, else ``~/.cache/netpilot``; an empty string turns caching off (None)."""
    root = cache_dir if cache_dir is not None else os.environ.get("NETPILOT_CACHE")
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = Path(xdg) / "netpilot" if xdg else Path.home() / ".cache" / "netpilot"
    if str(root) == "":
        return None
    return Path(root)


def topology_key(arrays: NetworkArrays, k: int, weight: str) -> str:
    """A hash of everything a path set depends on: the links (ends, up or down, path weights) and k."""
    digest = hashlib.sha256()
    for array in (arrays.src, arrays.dst, arrays.up, _link_weights(arrays, weight)):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(f"{k}:{weight}:{arrays.n_nodes}:{arrays.n_links}:v2".encode())
    return digest.hexdigest()[:32]


@dataclass
class PathCache:
    """The path sets computed for one topology, on disk: the k-shortest paths of every pair asked for so far,
    and the paths column generation added (``grown``), so that a new matrix on a known topology starts from
    them. The file is named by ``topology_key``: change a link and it is a different file. Writes go to a
    temporary file renamed into place, so a reader never sees half a file and concurrent writers lose at worst
    the other's additions (they are recomputed)."""

    file: Path
    n_nodes: int
    base: PathSet | None
    grown: PathSet | None

    @classmethod
    def open(cls, arrays: NetworkArrays, k: int, weight: str, cache_dir: str | Path | None = None) -> PathCache | None:
        root = cache_root(cache_dir)
        if root is None:
            return None
        file = root / "paths" / f"{topology_key(arrays, k, weight)}.npz"
        base = grown = None
        if file.exists():
            try:
                with np.load(file) as data:
                    base = PathSet(data["pairs"], data["pair_ptr"], data["path_ptr"], data["path_links"])
                    if "grown_pairs" in data:
                        grown = PathSet(data["grown_pairs"], data["grown_pair_ptr"], data["grown_path_ptr"],
                                        data["grown_path_links"])
            except (OSError, ValueError, KeyError):
                base = grown = None  # unreadable (say, truncated by a full disk): recompute and overwrite
        return cls(file, arrays.n_nodes, base, grown)

    def _rows(self, paths: PathSet | None, pairs: np.ndarray) -> np.ndarray:
        """Row of each pair in ``paths``, -1 where absent."""
        if paths is None or paths.n_pairs == 0:
            return np.full(len(pairs), -1, dtype=np.int64)
        codes = paths.pairs[:, 0] * self.n_nodes + paths.pairs[:, 1]
        order = np.argsort(codes, kind="stable")
        wanted = pairs[:, 0] * self.n_nodes + pairs[:, 1]
        at = np.minimum(np.searchsorted(codes[order], wanted), len(codes) - 1)
        return np.where(codes[order][at] == wanted, order[at], -1)

    def lookup(self, pairs: np.ndarray) -> tuple[PathSet, np.ndarray]:
        """(the cached paths of ``pairs`` — complete only when nothing is missing —, indices of missing pairs)."""
        rows = self._rows(self.base, pairs)
        missing = np.flatnonzero(rows < 0)
        if len(missing) or self.base is None:
            return PathSet(pairs, np.zeros(len(pairs) + 1, dtype=np.int64), np.zeros(1, dtype=np.int64),
                           np.zeros(0, dtype=np.int64)), missing
        return self.base.subset(rows, pairs), missing

    def add(self, computed: PathSet) -> None:
        """Remember the k-shortest paths of more pairs."""
        self.base = computed if self.base is None else _concat(self.base, computed)
        self._save()

    def grown_for(self, pairs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(pair index per path, link arrays): the grown paths remembered for ``pairs``."""
        rows = self._rows(self.grown, pairs)
        have = np.flatnonzero(rows >= 0)
        if len(have) == 0:
            return np.zeros(0, dtype=np.int64), []
        subset = self.grown.subset(rows[have])
        owner = have[subset.path_pair]
        return owner, [subset.links_of(q) for q in range(subset.n_paths)]

    def remember_grown(self, grown: PathSet) -> None:
        """Keep ``grown`` (each pair's paths beyond its k shortest) in place of what was kept for those pairs."""
        if self.grown is not None and self.grown.n_pairs:
            stale = self._rows(grown, self.grown.pairs) >= 0
            kept = self.grown.subset(np.flatnonzero(~stale))
            grown = _concat(kept, grown)
        self.grown = grown
        self._save()

    def _save(self) -> None:
        arrays = {}
        if self.base is not None:
            arrays.update(pairs=self.base.pairs, pair_ptr=self.base.pair_ptr, path_ptr=self.base.path_ptr,
                          path_links=self.base.path_links)
        if self.grown is not None:
            arrays.update(grown_pairs=self.grown.pairs, grown_pair_ptr=self.grown.pair_ptr,
                          grown_path_ptr=self.grown.path_ptr, grown_path_links=self.grown.path_links)
        if "pairs" not in arrays:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_name(self.file.stem + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)
            tmp.replace(self.file)
        except OSError:
            pass  # a read-only or full cache costs recomputation next time, never the answer


def _concat(first: PathSet, second: PathSet) -> PathSet:
    return PathSet(np.concatenate([first.pairs, second.pairs]).reshape(-1, 2),
                   np.concatenate([first.pair_ptr, first.pair_ptr[-1] + second.pair_ptr[1:]]),
                   np.concatenate([first.path_ptr, first.path_ptr[-1] + second.path_ptr[1:]]),
                   np.concatenate([first.path_links, second.path_links]).astype(np.int64))


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
