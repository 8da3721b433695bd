"""A traffic-engineering instance in normalised units, its routings and their certificates."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from netpilot.errors import InputError
from netpilot.model.network import Demand, Network, NetworkArrays
from netpilot.model.routing import lightest_graph
from netpilot.optimize.te.paths import PathSet, k_shortest_paths

OBJECTIVES = ("mlu", "flow")


@dataclass(frozen=True)
class TEProblem:
    """Demands aggregated per node pair, their candidate paths, and capacities, all divided by ``scale``.

    HiGHS returned wrong answers on raw bit/s data, so every solver works on ``capacity / scale`` and
    ``volume / scale`` with ``scale`` the largest capacity; utilisation is unit-free and unchanged.
    """

    arrays: NetworkArrays
    paths: PathSet
    volume: np.ndarray  # (P,) Mbit/s per pair
    scale: float
    #: (L,) normalised load of traffic outside this instance, fixed (say, the pairs a failure leaves alone);
    #: the fast MLU method and the bounds count it, the LPs do not take it.
    background: np.ndarray | None = None

    @property
    def pairs(self) -> np.ndarray:
        return self.paths.pairs

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """(L, Q) link-on-path matrix."""
        return self.paths.incidence(self.arrays.n_links)

    @cached_property
    def incidence_csc(self) -> sp.csc_matrix:
        return self.incidence.tocsc()

    @cached_property
    def incidence_t(self) -> sp.csr_matrix:
        return self.incidence.T.tocsr()

    @cached_property
    def capacity(self) -> np.ndarray:
        """(L,) normalised capacity; links that are down get +inf so nothing counts against them."""
        cap = self.arrays.capacity / self.scale
        return np.where(self.arrays.up, cap, np.inf)

    @cached_property
    def demand(self) -> np.ndarray:
        """(P,) normalised volume per pair."""
        return self.volume / self.scale

    @cached_property
    def path_demand(self) -> np.ndarray:
        """(Q,) normalised volume of each path's pair."""
        return self.demand[self.paths.path_pair]

    @cached_property
    def pair_starts(self) -> np.ndarray:
        return self.paths.pair_ptr[:-1]

    def loads(self, x: np.ndarray, paths: np.ndarray | None = None) -> np.ndarray:
        """(L,) normalised load for path fractions ``x`` (plus the fixed background); with ``paths``, ``x`` holds
        the fractions of those paths only and the rest carry nothing (a product over their columns alone)."""
        if paths is None:
            load = self.incidence @ (self.path_demand * x)
        else:
            load = self.incidence_csc[:, paths] @ (self.path_demand[paths] * x)
        return load if self.background is None else load + self.background

    def utilisation(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.isfinite(self.capacity), self.loads(x) / self.capacity, 0.0)

    def mlu(self, x: np.ndarray) -> float:
        return float(self.utilisation(x).max(initial=0.0))

    def pair_min(self, per_path: np.ndarray) -> np.ndarray:
        """(P,) the minimum of a per-path quantity over each pair's paths."""
        return np.minimum.reduceat(per_path, self.pair_starts)

    def pair_sum(self, per_path: np.ndarray) -> np.ndarray:
        return np.add.reduceat(per_path, self.pair_starts)

    def mlu_lower_bound(self, link_price: np.ndarray, enabled: np.ndarray | None = None) -> float:
        """LP-duality bound on the best MLU over this path set, from any prices ``y >= 0`` on links.

        ``sum_k d_k * min_{p in P_k} y(p) / sum_e y_e c_e``: routing every demand costs at least its cheapest
        path, and a routing of MLU U costs at most ``U * sum_e y_e c_e``. With ``enabled`` (a mask over paths)
        only those paths may carry traffic, and pairs left with none are out of the bound (they cannot be served).
        """
        y = np.where(np.isfinite(self.capacity), np.maximum(link_price, 0.0), 0.0)
        budget = float((y * np.where(np.isfinite(self.capacity), self.capacity, 0.0)).sum())
        if budget <= 0:
            return 0.0
        path_cost = self.incidence_t @ y
        fixed = 0.0 if self.background is None else float(y @ self.background)
        if enabled is not None:
            path_cost = np.where(enabled, path_cost, np.inf)
        cheapest = self.pair_min(path_cost)
        servable = np.isfinite(cheapest)
        return (float(self.demand[servable] @ cheapest[servable]) + fixed) / budget

    def feasible(self, x: np.ndarray, enabled: np.ndarray | None = None) -> np.ndarray:
        """Non-negative fractions summing to one per pair over its enabled paths: traffic on a disabled path
        moves to the pair's other paths in proportion, or evenly if they carried none; a pair with no enabled
        path gets all zeros (it cannot be served)."""
        x = np.clip(np.nan_to_num(np.asarray(x, dtype=float)), 0.0, None)
        if enabled is not None:
            x = np.where(enabled, x, 0.0)
        else:
            enabled = np.ones_like(x, dtype=bool)
        owner = self.paths.path_pair
        total = self.pair_sum(x)
        empty = total <= 0
        if empty.any():
            x = np.where(empty[owner] & enabled, 1.0, x)
            total = self.pair_sum(x)
        return np.where(total[owner] > 0, x / np.where(total > 0, total, 1.0)[owner], 0.0)

    def unrestricted_mlu_lower_bound(self, link_price: np.ndarray) -> float:
        """The same bound with the cheapest path over the whole graph: a bound for any routing at all."""
        y = np.where(np.isfinite(self.capacity), np.maximum(link_price, 0.0), 0.0)
        budget = float((y * np.where(np.isfinite(self.capacity), self.capacity, 0.0)).sum())
        if budget <= 0:
            return 0.0
        dist = shortest_distances(self.arrays, y, self.pairs)
        fixed = 0.0 if self.background is None else float(y @ self.background)
        return (float(self.demand @ dist) + fixed) / budget

    def flow_upper_bound(self, link_price: np.ndarray) -> float:
        """LP-duality bound on the most traffic (normalised) that fits.

        ``sum_e c_e y_e + sum_k d_k (1 - min_p y(p))+`` for any prices ``y >= 0``.
        """
        y = np.where(np.isfinite(self.capacity), np.maximum(link_price, 0.0), 0.0)
        cap = np.where(np.isfinite(self.capacity), self.capacity, 0.0)
        cheapest = self.pair_min(self.incidence_t @ y)
        return float(cap @ y + self.demand @ np.maximum(0.0, 1.0 - cheapest))

    def with_paths(self, paths: PathSet) -> TEProblem:
        return TEProblem(self.arrays, paths, self.volume, self.scale, self.background)

    def restricted(self, pairs: np.ndarray, background: np.ndarray) -> TEProblem:
        """Only ``pairs`` (indices) free to move, everything else fixed as ``background`` load (normalised)."""
        pairs = np.asarray(pairs, dtype=np.int64)
        return TEProblem(self.arrays, self.paths.subset(pairs), self.volume[pairs], self.scale, background)

    def with_volume(self, volume: np.ndarray) -> TEProblem:
        """The same pairs and paths carrying ``volume`` (Mbit/s per pair); the path matrices are shared."""
        volume = np.asarray(volume, dtype=float)
        if volume.shape != self.volume.shape:
            raise ValueError(f"expected {self.volume.shape[0]} volumes, one per pair, got {volume.shape}")
        twin = TEProblem(self.arrays, self.paths, volume, self.scale, self.background)
        for name in ("incidence", "incidence_csc", "incidence_t", "capacity", "pair_starts"):
            if name in self.__dict__:
                twin.__dict__[name] = self.__dict__[name]
        return twin


def shortest_distances(arrays: NetworkArrays, link_weight: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(P,) shortest distance per pair under ``link_weight`` over links that are up (parallel: lightest)."""
    up = arrays.up
    # Zero prices would vanish from a sparse matrix; a tiny floor keeps those links in the graph.
    graph = lightest_graph(arrays.src[up], arrays.dst[up], np.maximum(link_weight[up], 1e-15), arrays.n_nodes)
    sources, inverse = np.unique(pairs[:, 0], return_inverse=True)
    dist = dijkstra(graph, indices=sources)
    return dist[inverse, pairs[:, 1]]


def aggregate_demands(network: Network, demands: list[Demand] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pairs (P, 2), volume (P,)) with demands of the same pair summed; zero-volume pairs dropped."""
    if demands is not None:
        network = network.model_copy(update={"demands": demands})
    if not network.demands:
        raise InputError.at("the demand matrix is empty: nothing to route", field="demands")
    pairs, volume = network.arrays().demand_pairs()
    if len(volume) == 0:
        raise InputError.at("every demand has volume 0: nothing to route", field="demands")
    return pairs, volume


def build_problem(network: Network, *, demands: list[Demand] | None = None, k: int = 4, weight: str = "hop",
                  cache_dir: str | Path | None = None) -> TEProblem:
    """The TE instance for ``network`` and its demands (or ``demands``), with ``k`` paths per pair."""
    arrays = network.arrays()
    check_capacities(network, arrays)
    pairs, volume = aggregate_demands(network, demands)
    return problem_from_pairs(arrays, pairs, volume, k=k, weight=weight, cache_dir=cache_dir)


def check_capacities(network: Network, arrays: NetworkArrays | None = None) -> None:
    """Refuse links that are up with zero capacity: no utilisation can be defined on them."""
    arrays = network.arrays() if arrays is None else arrays
    zero = np.flatnonzero(arrays.up & (arrays.capacity <= 0))
    if len(zero):
        shown = ", ".join(network.links[i].id for i in zero[:5])
        raise InputError.at(f"{len(zero)} links are up with zero capacity ({shown}); set them down or give them "
                            "capacity", field="links")


def problem_from_pairs(arrays: NetworkArrays, pairs: np.ndarray, volume: np.ndarray, *, k: int = 4,
                       weight: str = "hop", cache_dir: str | Path | None = None) -> TEProblem:
    """The TE instance for demand ``volume`` (Mbit/s) between node-index ``pairs``; no Demand objects needed,
    which matters for matrices with hundreds of thousands of pairs."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    volume = np.asarray(volume, dtype=float)
    if len(pairs) == 0 or not (volume > 0).any():
        raise InputError.at("the demand matrix is empty: nothing to route", field="demands")
    paths = k_shortest_paths(arrays, pairs, k, weight=weight, cache_dir=cache_dir)
    stranded = np.flatnonzero(paths.paths_per_pair == 0)
    if len(stranded):
        shown = ", ".join(f"{arrays.node_ids[a]}->{arrays.node_ids[b]}" for a, b in pairs[stranded[:5]])
        raise InputError.at(f"{len(stranded)} demands join nodes with no path between them over links that are "
                            f"up: {shown}", field="demands")
    scale = float(arrays.capacity[arrays.up].max())
    return TEProblem(arrays, paths, volume, scale)


@dataclass
class Routing:
    """A routing: a fraction per path, its quality and a certificate of how far from optimal it can be."""

    problem: TEProblem
    x: np.ndarray
    objective: str
    method: str
    solve_seconds: float
    bound: float  # lower bound on the optimal MLU (mlu) or upper bound on the most flow, Mbit/s (flow)
    iterations: int = 0
    info: dict = field(default_factory=dict)

    @property
    def mlu(self) -> float:
        return self.problem.mlu(self.x)

    @property
    def total_flow(self) -> float:
        """Satisfied traffic, Mbit/s."""
        return float(self.problem.volume @ self.problem.pair_sum(self.x))

    @property
    def gap(self) -> float:
        """Relative distance to the optimum that the certificate allows (0.006 = at most 0.6 % off)."""
        if self.objective == "mlu":
            return max(0.0, self.mlu / self.bound - 1.0) if self.bound > 0 else float("inf")
        return max(0.0, self.bound / self.total_flow - 1.0) if self.total_flow > 0 else float("inf")

    def certificate(self) -> str:
        if "guaranteed_mlu" in self.info:
            return (f"MLU {self.mlu:.4g} with no failure, at most {self.info['guaranteed_mlu']:.4g} under any single "
                    "failure with proportional rerouting")
        if self.objective == "flow":
            return f"flow {self.total_flow:.6g} Mbit/s, at most {100 * self.gap:.2g} % below the most that fits"
        scope = self.info.get("bound_scope", "on this path set")
        if self.bound <= 0:
            return f"MLU {self.mlu:.4g} (no optimality bound)"
        return f"MLU {self.mlu:.4g}, at most {100 * self.gap:.2g} % above optimal {scope}"

    def pair_paths(self) -> list[dict]:
        """Per demand pair: source, target, volume and ``[{"nodes": [...], "fraction": x}]``."""
        p, arrays = self.problem, self.problem.arrays
        ids = np.asarray(arrays.node_ids, dtype=object)
        ptr, links = p.paths.path_ptr, p.paths.path_links
        # Node names of every hop's far end, once; a path's node list is its first link's source then these.
        far_end = ids[arrays.dst[links]]
        used = np.flatnonzero(self.x > 1e-9)
        first_link = links[np.minimum(ptr[used], max(len(links) - 1, 0))] if len(links) else used
        starts = ids[arrays.src[first_link]] if len(links) else np.empty(len(used), dtype=object)
        entries: list[list[dict]] = [[] for _ in range(p.paths.n_pairs)]
        owner = p.paths.path_pair[used].tolist()
        for q, i, start, fraction in zip(used.tolist(), owner, starts.tolist(), self.x[used].tolist()):
            hops = far_end[ptr[q]:ptr[q + 1]].tolist()
            entries[i].append({"nodes": [start, *hops] if hops else [], "fraction": fraction})
        pairs, volume = p.pairs.tolist(), p.volume.tolist()
        return [{"source": ids[a], "target": ids[b], "volume": v, "paths": e}
                for (a, b), v, e in zip(pairs, volume, entries)]
