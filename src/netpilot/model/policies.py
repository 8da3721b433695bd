"""Explicit path policies (SR-TE) as link arrays, and the share of each pair's traffic they put on each link."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from netpilot.model.network import NetworkArrays, PathPolicy

#: Per (source index, target index): each path as the links it takes, and its weight.
Compiled = dict[tuple[int, int], list[tuple[np.ndarray, float]]]


def compile_policies(arrays: NetworkArrays, policies: list[PathPolicy] | dict) -> Compiled:
    """Policies by node indices and link indices. ``policies`` is a network's list, or {(source, target):
    [(node path, weight), ...]} by node id. A hop between nodes with parallel links takes the first of them."""
    by_ends: dict[tuple[int, int], int] = {}
    for e in range(arrays.n_links):
        by_ends.setdefault((int(arrays.src[e]), int(arrays.dst[e])), e)
    items = policies.items() if isinstance(policies, dict) else \
        (((p.source, p.target), [(path.nodes, path.weight) for path in p.paths]) for p in policies)
    index = arrays.index
    compiled: Compiled = {}
    for (a, b), paths in items:
        compiled[(index[a], index[b])] = [
            (np.array([by_ends[(index[u], index[v])] for u, v in itertools.pairwise(nodes)], dtype=np.int64),
             float(weight)) for nodes, weight in paths]
    return compiled


def policy_matrix(compiled: Compiled, pairs: np.ndarray, up: np.ndarray, n_links: int
                  ) -> tuple[sp.csr_matrix, np.ndarray]:
    """(links × pairs share of each pair's traffic on each link, which pairs the policies carry) over the links
    that are ``up``: a pair's paths that are all up share its traffic by weight; a pair whose paths have all
    failed is not covered (the IGP carries it)."""
    pairs = np.asarray(pairs).reshape(-1, 2)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    covered = np.zeros(len(pairs), dtype=bool)
    for paths, p in zip(compiled.values(), pair_positions(pairs, list(compiled)), strict=True):
        if p < 0:
            continue
        alive = [(links, w) for links, w in paths if w > 0 and up[links].all()]
        total = sum(w for _, w in alive)
        if total <= 0:
            continue
        covered[p] = True
        for links, w in alive:
            rows.extend(links.tolist())
            cols.extend([p] * len(links))
            vals.extend([w / total] * len(links))
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n_links, len(pairs)))
    return matrix, covered


def pair_positions(pairs: np.ndarray, ends: list[tuple[int, int]]) -> np.ndarray:
    """Where each (source, target) of ``ends`` is among ``pairs`` (-1 where it is not); ``pairs`` may be long."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if not ends or not len(pairs):
        return np.full(len(ends), -1, dtype=np.int64)
    width = int(max(pairs.max(), max(max(e) for e in ends))) + 1
    keys = pairs[:, 0] * width + pairs[:, 1]
    wanted = np.array([a * width + b for a, b in ends], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    at = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    return np.where(keys[order][at] == wanted, order[at], -1)
