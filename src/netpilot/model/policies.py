"""Explicit path policies (SR-TE) as link arrays: the share of each pair's traffic they put on each link, and
where that traffic goes when links fail."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from netpilot.model.network import NetworkArrays, PathPolicy
from netpilot.model.routing import igp_loads

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


def to_policies(arrays: NetworkArrays, paths: Compiled) -> list[PathPolicy]:
    """The inverse of ``compile_policies``: link paths with weights as a network's policies, by node id."""
    ids = arrays.node_ids
    return [PathPolicy(source=ids[a], target=ids[b],
                       paths=[{"nodes": [ids[arrays.src[links[0]]], *(ids[e] for e in arrays.dst[links])],
                               "weight": weight} for links, weight in pair_paths])
            for (a, b), pair_paths in paths.items()]


def steer_after_failures(arrays: NetworkArrays, compiled: Compiled, pairs: np.ndarray, volume: np.ndarray,
                         alive: np.ndarray, loads: np.ndarray, stranded: np.ndarray) -> None:
    """Add the policies' traffic to ``loads`` (scenarios × links: the IGP's loads after each scenario's failure,
    pairs on policies left out) where ``alive`` (scenarios × links) says which links each scenario leaves up.

    A pair whose paths are all up carries on as now; a failed path's share goes to the pair's paths left, by
    weight; a pair whose paths have all failed goes to the IGP (under ``arrays.metric``), and what it cannot
    reach adds to ``stranded``. The pairs covered are those with a path up over ``arrays.up``. All paths and
    scenarios at once: a path's links as a row of a (paths × links) matrix."""
    position = pair_positions(pairs, list(compiled))
    paths = [(q, links, w) for q, (pair_paths, p) in enumerate(zip(compiled.values(), position, strict=True))
             if p >= 0 and volume[p] > 0 for links, w in pair_paths if w > 0]
    if not paths:
        return
    owner = np.array([q for q, _, _ in paths])
    weight = np.array([w for _, _, w in paths])
    lengths = [len(links) for _, links, _ in paths]
    on_path = np.zeros((len(paths), arrays.n_links))  # dense: a few hundred paths, faster than sparse here
    on_path[np.repeat(np.arange(len(paths)), lengths), np.concatenate([links for _, links, _ in paths])] = 1.0
    up_now = on_path @ ~arrays.up == 0
    if not up_now.all():
        owner, weight, on_path = owner[up_now], weight[up_now], on_path[up_now]
    if not len(owner):
        return
    policy, owner = np.unique(owner, return_inverse=True)  # the pairs covered now, and each path's
    pair_volume = volume[position[policy]]
    total = np.bincount(owner, weights=weight)
    # Every scenario starts from the policies' traffic as it is now ...
    loads += (weight / total[owner] * pair_volume[owner]) @ on_path
    # ... then, per path, the scenarios that fail it, and each path's change of share.
    dead = on_path @ ~alive.T > 0  # (paths, scenarios)
    hit = np.zeros((len(policy), len(alive)), dtype=bool)
    np.logical_or.at(hit, owner, dead)
    left = np.zeros((len(policy), len(alive)))
    np.add.at(left, owner, weight[:, None] * ~dead)
    gone = left <= 0
    mine = (weight / total[owner])[:, None]
    change = np.where(dead | gone[owner], -mine, weight[:, None] / np.where(gone, 1.0, left)[owner] - mine)
    loads += (np.where(hit[owner], change, 0.0) * pair_volume[owner][:, None]).T @ on_path
    handed = hit & gone  # (pairs covered, scenarios): every path of the pair failed
    for i in np.flatnonzero(handed.any(axis=0)).tolist():
        chosen = position[policy[handed[:, i]]]
        fallback, lost = igp_loads(arrays, arrays.metric, pairs[chosen], volume[chosen], alive[i])
        loads[i] += fallback
        stranded[i] += lost
