"""The digital twin: the network's state under faults at any minute of the week, its routing (IGP ECMP, or
explicit path splits), the load and KPIs it should show without noise, and the replay of fault hypotheses.
The simulator makes synthetic data on top of it; the loop plans and localises on it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from netpilot.model.faults import Fault, TwinState
from netpilot.model.frame import FrameLayout, KpiFrame
from netpilot.model.network import Network, PathPolicy
from netpilot.model.policies import compile_policies, policy_matrix, steer_after_failures
from netpilot.model.profile import bundled_profile, profile_at
from netpilot.model.routing import EcmpRouting, ecmp_flows, lightest_graph
from netpilot.model.whatif import what_if

#: Radio throughput per physical resource block, Mbit/s (273 PRBs of 100 MHz NR give about 1 Gbit/s).
MBPS_PER_PRB = 3.7
#: Mean throughput of an active user, Mbit/s: turns cell traffic into a user count.
MBPS_PER_USER = 1.5
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


@dataclass
class Expected:
    """The twin's noise-free state: demand per pair, which links are up, their capacity and metrics."""

    volume: np.ndarray
    link_up: np.ndarray
    capacity: np.ndarray
    metric: np.ndarray


class Twin:
    """The network as a fluid model, without noise. ``faults`` are the faults it holds (scheduled, or believed);
    ``minute`` (from ``start``) places it in the week, which sets the demand's level; ``set_metrics`` and
    ``set_policies`` set what it runs.

    Its demand per pair is the network's busy-hour matrix with each node's share drawn once from ``seed`` (a
    lognormal spread between nodes); a simulator made with the same seed has the same demand without its
    noise."""

    def __init__(self, network: Network, *, seed: int = 0, start: datetime = DEFAULT_START,
                 faults: list[Fault] | None = None, profile: np.ndarray | None = None) -> None:
        self.network = network
        self.arrays = arrays = network.arrays()
        # A simulator built on the twin goes on drawing its noise from the same generator.
        self.rng = np.random.default_rng(seed)
        self.start = start.astimezone(UTC)
        self.profile = bundled_profile() if profile is None else np.asarray(profile, dtype=float)
        self.faults: list[Fault] = []
        self.minute = 0.0
        self.metric = arrays.metric.astype(np.int64).copy()
        self._splits: dict[tuple[int, int], list[tuple[np.ndarray, float]]] | None = None
        self._splits_version = 0
        self._routing_cache: OrderedDict[bytes, Any] = OrderedDict()

        n = arrays.n_nodes
        self.pairs, self.base_volume = arrays.demand_pairs()
        node_scale = self.rng.lognormal(0.0, 0.15, n)
        self.base_volume = self.base_volume * np.sqrt(node_scale[self.pairs[:, 0]] * node_scale[self.pairs[:, 1]])

        self.layout = layout = FrameLayout.of(network)
        self.cells, self.edges = layout.cells, layout.edges
        self.link_ids, self.node_ids = layout.link_ids, layout.node_ids
        self.cell_ids, self.edge_ids = layout.cell_ids, layout.edge_ids
        self.cell_capacity = np.array([network.nodes[i].prbs * MBPS_PER_PRB for i in self.cells])
        # Each cell's traffic to and from edge sites decides the RAN share of that site's GPUs.
        # Per edge site: which demands touch it and which cells it serves (fixed by the demand matrix).
        self._edge_touching = np.array([(self.pairs == e).any(axis=1) for e in self.edges]).reshape(
            len(self.edges), len(self.pairs)).astype(float)
        self._edge_homed = np.array([np.isin(self.cells, self.pairs[t > 0].ravel()) for t in self._edge_touching]
                                    ).reshape(len(self.edges), len(self.cells)).astype(float)
        self._edge_traffic_base = np.maximum(self._edge_touching @ self.base_volume, 1e-9)
        for fault in faults or []:
            self.check(fault)
            self.faults.append(fault)

    @property
    def now(self) -> datetime:
        return self.start + timedelta(minutes=self.minute)

    # --- what it runs -----------------------------------------------------------------------------------------

    def set_metrics(self, metric: np.ndarray | dict[str, int]) -> None:
        """New IGP metrics (per link, in the network's link order, or by link id ``A->B``)."""
        if isinstance(metric, dict):
            index = {lk.id: i for i, lk in enumerate(self.network.links)}
            for link_id, value in metric.items():
                self.metric[index[link_id]] = int(value)
        else:
            self.metric = np.asarray(metric, dtype=np.int64).copy()

    def set_path_splits(self, splits: dict[tuple[str, str], list[tuple[list[str], float]]] | None) -> None:
        """Explicit routing (SR-TE / weighted ECMP): per (source, target), node paths with fractions. Pairs it
        does not name, and pairs whose paths all fail, follow the IGP. ``None`` returns everything to the IGP."""
        self._splits = None if splits is None else compile_policies(self.arrays, splits)
        self._splits_version += 1

    def set_policies(self, policies: list[PathPolicy]) -> None:
        """A network's explicit path policies (SR-TE), as ``set_path_splits`` takes them."""
        self._splits = compile_policies(self.arrays, policies) if policies else None
        self._splits_version += 1

    def run_as(self, other: Twin) -> None:
        """Run what ``other`` runs, at its minute: its IGP metrics and explicit paths (for a what-if beside a
        running simulation that must not touch its state)."""
        self.minute = other.minute
        self.metric = other.metric.copy()
        self._splits = other._splits
        self._splits_version += 1

    def steered_pairs(self) -> int:
        """How many demand pairs run on explicit paths."""
        return len(self._splits or {})


    # --- the model ------------------------------------------------------------------------------------------

    def check(self, fault: Fault) -> None:
        """ValueError, naming the fault, unless its target is in this network."""
        try:
            fault.behaviour.check(fault, self.arrays)
        except ValueError as exc:
            raise ValueError(f"fault {fault.id}: {exc}") from None

    def state(self, faults: Sequence[Fault] | None = None) -> TwinState:
        """The network at ``minute`` under ``faults`` (the twin's own by default), those active then applied in
        order; a node down takes its links down with it."""
        arrays = self.arrays
        state = TwinState(link_up=arrays.up.copy(), capacity=arrays.capacity.copy(),
                          extra_loss=np.zeros(arrays.n_links), node_up=np.ones(arrays.n_nodes, dtype=bool),
                          demand_factor=np.ones(arrays.n_nodes), metric=self.metric.copy())
        for fault in self.faults if faults is None else faults:
            if fault.active(self.minute):
                fault.behaviour.apply(fault, state, self.network, arrays, self.minute)
        dead_node = ~state.node_up
        state.link_up &= ~(dead_node[arrays.src] | dead_node[arrays.dst])
        return state

    def links_of(self, fault: Fault) -> np.ndarray:
        """The link indices a fault acts on (none for a fault at a node)."""
        return fault.behaviour.links(fault, self.arrays)

    def _cached(self, key: bytes, make: Callable[[], Any]) -> Any:
        """The routing cache: the 64 routings used last are kept (a planner asks for the running metrics under
        each failure it plans against tick after tick, among many trial metrics asked once)."""
        cache = self._routing_cache
        # A planner's search reads it from several threads (``search_metrics(threads=...)``): each step below is
        # one operation on the dict, so an entry another thread pushed out is made again, never a KeyError.
        value = cache.get(key)
        if value is not None:
            with contextlib.suppress(KeyError):
                cache.move_to_end(key)
            return value
        value = cache[key] = make()
        while len(cache) > 64:
            with contextlib.suppress(KeyError):
                cache.popitem(last=False)
        return value

    def _ecmp(self, metric: np.ndarray, link_up: np.ndarray) -> EcmpRouting:
        routing: EcmpRouting = self._cached(metric.tobytes() + link_up.tobytes(),
                            lambda: ecmp_flows(self.arrays, metric, self.pairs, self.base_volume, link_up))
        return routing

    def routed_loads(self, volume: np.ndarray, metric: np.ndarray, link_up: np.ndarray, *, keep: bool = True
                     ) -> tuple[np.ndarray, float]:
        """(loads per link, traffic with no path). With ``keep`` False (a planner's search, which routes many
        metric vectors once or a few times), a routing in the cache is used and one that is not is routed
        afresh and not kept: it would push out the routings asked tick after tick, and asked again it would be
        given a routing matrix, which costs as much as 40 pushes of the demand down its paths (13 ms against
        0.3 ms at 149 routers). Either way the loads are the same bits as a routing's first ask."""
        igp_volume = volume.copy()
        loads = np.zeros(self.arrays.n_links)
        if self._splits:
            matrix, covered = self._split_matrix(link_up)
            loads += matrix @ np.where(covered, volume, 0.0)
            igp_volume = np.where(covered, 0.0, volume)
        if keep or metric.tobytes() + link_up.tobytes() in self._routing_cache:
            routing = self._ecmp(metric, link_up)
            loads += routing.link_loads(igp_volume)
        else:
            routing = ecmp_flows(self.arrays, metric, self.pairs, igp_volume, link_up)
            loads += routing.loads  # the push a cached routing's first ask makes (``EcmpRouting.link_loads``)
        return loads, float(igp_volume[routing.unreachable].sum())

    def _split_matrix(self, link_up: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        # Keyed by a version, not the dict's id: a freed dict's id can come back with other paths.
        key = b"splits" + link_up.tobytes() + str(self._splits_version).encode()
        splits = self._splits or {}
        matrix: tuple[sp.csr_matrix, np.ndarray] = self._cached(
            key, lambda: policy_matrix(splits, self.pairs, link_up, self.arrays.n_links))
        return matrix

    def volume(self, state: TwinState) -> np.ndarray:
        """Demand per pair now, without the sampling noise."""
        hour_of_week = (self.now - self.now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 3600
        hour_of_week += 24 * self.now.weekday()
        # The network file's demands are the busy-hour matrix (what operators plan for): the peak hour of the
        # weekly profile carries them in full, quieter hours a share.
        level = profile_at(self.profile, hour_of_week) / float(self.profile.max())
        factor = state.demand_factor
        volume = self.base_volume * level * factor[self.pairs[:, 0]] * factor[self.pairs[:, 1]]
        node_up = state.node_up
        return np.where(node_up[self.pairs[:, 0]] & node_up[self.pairs[:, 1]], volume, 0.0)

    def expected(self) -> Expected:
        """What the network carries now under the faults it knows of, without noise: the planner's view."""
        state = self.state()
        return Expected(self.volume(state), state.link_up, np.where(state.link_up, state.capacity, 0.0),
                        state.metric)

    def link_loads(self, volume: np.ndarray, metric: np.ndarray, link_up: np.ndarray, *, keep: bool = True
                   ) -> np.ndarray:
        """Per-link load of ``volume`` (per demand pair) under ``metric``, over the links that are up (``keep``:
        see ``routed_loads``)."""
        return self.routed_loads(volume, metric, link_up, keep=keep)[0]

    def routing_matrix(self, metric: np.ndarray, link_up: np.ndarray) -> sp.csr_matrix:
        """(links × pairs) share of each pair's traffic on each link under ``metric`` over the links that are up
        (shortest-path ECMP; pairs on explicit paths are routed by those instead)."""
        matrix = self._ecmp(metric, link_up).routing_matrix()
        if self._splits:
            split, covered = self._split_matrix(link_up)
            matrix = (matrix @ sp.diags((~covered).astype(float)) + split).tocsr()
        return matrix

    def igp_routing_matrix(self, metric: np.ndarray, link_up: np.ndarray) -> sp.csr_matrix:
        """(links × pairs) share of each pair's traffic on each link under ``metric`` over the links that are up,
        every pair on shortest-path ECMP whatever its explicit paths (what a pair falls back to)."""
        return self._ecmp(metric, link_up).routing_matrix()

    def replay(self, fault_sets: Sequence[Sequence[Fault]], *, scale: float = 1.0) -> list[KpiFrame]:
        """What the network would measure now, without noise, under each set of faults, with the demand times
        ``scale``, without advancing time or touching what ``step`` reports (a root-cause localiser compares
        measurements with these).

        Sets that only take links out of service relative to the first set (a link down, a metric so high no
        path takes the link) are routed together by the incremental single-failure what-if, exactly; the rest
        are routed one by one."""
        states = [self.state(list(faults)) for faults in fault_sets]
        volumes = [self.volume(state) * scale for state in states]
        loads: list[tuple[np.ndarray, float] | None] = [None] * len(states)
        if states:
            self._replay_failures(states, volumes, loads)
        results = []
        for state, volume, routed in zip(states, volumes, loads, strict=True):
            load, blackholed = routed if routed is not None else \
                self.routed_loads(volume, state.metric, state.link_up)
            results.append(self.measure(state, volume, load, blackholed, np.ones(len(self.cells))))
        return results

    def _replay_failures(self, states: list[TwinState], volumes: list[np.ndarray],
                         loads: list[tuple[np.ndarray, float] | None]) -> None:
        """Fill ``loads`` for the states that differ from the first by links out of service only (down, or
        raised above the way round them: the what-if, all at once) and for those whose raised links change no
        path (the first state's routing); the rest are left to be routed one by one."""
        base, volume = states[0], volumes[0]
        up, metric = base.link_up, base.metric
        scenarios: dict[bytes, tuple[np.ndarray, list[tuple[int, bool]]]] = {}  # links out -> (links, sets)
        for k, state in enumerate(states[1:], start=1):
            # Same demand only: a node down takes its demand away too (and the what-if is exact for a
            # failed link, not for every set of links that isolates a node with the cells behind it).
            if not np.array_equal(volumes[k], volume):
                continue
            down = up & ~state.link_up
            raised = (state.metric != metric) & state.link_up
            if not np.array_equal(state.link_up | down, up):
                continue
            if raised.any():
                around = self._ways_round(up & ~(down | raised), metric, raised)
                if not (state.metric[raised] > around).all():
                    # A shortest path may still take a raised link, unless it is the only way between its ends
                    # in both directions: then every path either crosses it or not, whatever its metric.
                    if not down.any() and np.isinf(around).all() and self._symmetric(up & ~raised):
                        loads[k] = self.routed_loads(volumes[k], metric, state.link_up)
                    continue
            out = np.flatnonzero(down | raised)
            if len(out):  # a link down and the same link at a high metric route alike: routed once
                scenarios.setdefault(out.tobytes(), (out, []))[1].append((k, bool(raised.any())))
        if not scenarios:
            return
        arrays = dataclasses.replace(self.arrays, up=up, metric=metric)
        covered = np.zeros(len(self.pairs), dtype=bool)
        if self._splits:
            covered = self._split_matrix(up)[1]
        igp_volume = np.where(covered, 0.0, volume)
        routing = ecmp_flows(arrays, metric, self.pairs, igp_volume, up)
        pending = list(scenarios.values())
        while pending:  # what_if takes disjoint scenarios: batch them greedily
            batch, rest, taken = [], [], np.zeros(arrays.n_links, dtype=bool)
            for item in pending:
                if taken[item[0]].any():
                    rest.append(item)
                else:
                    batch.append(item)
                    taken[item[0]] = True
            _, _, stranded, batch_loads = what_if(arrays, routing, igp_volume, [links for links, _ in batch])
            for (_, sets), load, cut in zip(batch, batch_loads, stranded, strict=True):
                for k, raised in sets:
                    routed, lost = load[None, :].copy(), np.array([float(cut)])
                    if self._splits:
                        # A raised metric moves IGP traffic only; a link down moves the explicit paths too.
                        steer_after_failures(arrays, self._splits, self.pairs, volume,
                                             (up if raised else states[k].link_up)[None, :], routed, lost)
                    loads[k] = (routed[0], float(lost[0]))
            pending = rest

    def _ways_round(self, usable: np.ndarray, metric: np.ndarray, raised: np.ndarray) -> np.ndarray:
        """For each ``raised`` link, the shortest way from its tail to its head over the ``usable`` links (inf:
        none). A raised link longer than its way round is on no shortest path (that way is shorter), so the
        network routes as if it had failed; nor is any node cut off that it connected."""
        graph = lightest_graph(self.arrays.src[usable], self.arrays.dst[usable], metric[usable].astype(float),
                               self.arrays.n_nodes)
        starts, row = np.unique(self.arrays.src[raised], return_inverse=True)
        return np.asarray(dijkstra(graph, indices=starts)[row, self.arrays.dst[raised]])

    def _symmetric(self, usable: np.ndarray) -> bool:
        """Whether every usable link's reverse is usable too."""
        n, src, dst = self.arrays.n_nodes, self.arrays.src[usable], self.arrays.dst[usable]
        return bool(np.isin(dst * n + src, src * n + dst).all())

    def measure(self, state: TwinState, volume: np.ndarray, loads: np.ndarray, blackholed: float,
                 user_noise: np.ndarray) -> KpiFrame:
        """Every KPI the network reports, from the routed loads."""
        arrays = self.arrays
        node_up = state.node_up
        link_up = state.link_up
        # A link that is down carries nothing: what an incremental routing leaves there is round-off (1e-13),
        # which would otherwise read as total loss on a link of no capacity.
        loads = np.where(link_up, np.maximum(loads, 0.0), 0.0)
        capacity = np.where(link_up, state.capacity, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            utilisation = np.where(capacity > 0, loads / capacity, 0.0)
            overload_loss = np.where(loads > capacity, 1.0 - capacity / np.maximum(loads, 1e-12), 0.0)
        loss = 1.0 - (1.0 - overload_loss) * (1.0 - state.extra_loss)
        rho = np.minimum(utilisation, 0.995)
        queue_ms = 0.05 * rho / (1.0 - rho) + np.where(utilisation > 1.0, 20.0, 0.0)
        latency = arrays.latency_ms + queue_ms
        overload = float(np.maximum(loads - capacity, 0.0)[link_up].sum())

        cell_traffic = np.zeros(len(self.cells))
        if len(self.cells):
            per_node = np.bincount(self.pairs[:, 0], weights=volume, minlength=arrays.n_nodes) + \
                np.bincount(self.pairs[:, 1], weights=volume, minlength=arrays.n_nodes)
            cell_traffic = per_node[self.cells]
        cell_up = node_up[self.cells]
        cell_prb = np.clip(cell_traffic / self.cell_capacity, 0.0, 1.0) if len(self.cells) else cell_traffic
        cell_users = np.round(cell_traffic / MBPS_PER_USER * user_noise)
        edge_up = node_up[self.edges]
        homed_count = self._edge_homed.sum(axis=1)
        mean_prb = np.where(homed_count > 0, self._edge_homed @ cell_prb / np.maximum(homed_count, 1), 0.0)
        edge_ran = 0.2 + 0.5 * mean_prb
        edge_gpu = np.minimum(1.0, edge_ran + 0.35 * (self._edge_touching @ volume) / self._edge_traffic_base)
        edge_gpu = np.where(edge_up, edge_gpu, 0.0)
        edge_ran = np.where(edge_up, edge_ran, 0.0)

        return KpiFrame(self.now, self.minute, loads, utilisation, loss, latency, link_up, node_up, cell_traffic,
                          cell_prb, cell_users, cell_up, edge_gpu, edge_ran, edge_up, overload=overload,
                          blackholed=blackholed)
