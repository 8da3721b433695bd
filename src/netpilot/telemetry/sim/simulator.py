"""The network over time as a fluid model: demand follows real cell traffic's weekly shape, flows follow the
current forwarding (IGP ECMP, or explicit path splits), and link, cell and edge-site KPIs follow from load and
capacity. Faults change the state; the simulator keeps their ground truth and emits what an NMS would see."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from netpilot.model.network import Network, PathPolicy
from netpilot.model.policies import compile_policies, policy_matrix, steer_after_failures
from netpilot.model.routing import EcmpRouting, ecmp_flows, lightest_graph
from netpilot.model.whatif import what_if
from netpilot.telemetry.schema import Event, FaultRecord, cell_entity, edge_entity, link_entity, node_entity
from netpilot.telemetry.sim.faults import Fault, name_faults
from netpilot.telemetry.sim.profile import bundled_profile, profile_at

#: Radio throughput per physical resource block, Mbit/s (273 PRBs of 100 MHz NR give about 1 Gbit/s).
MBPS_PER_PRB = 3.7
#: Mean throughput of an active user, Mbit/s: turns cell traffic into a user count.
MBPS_PER_USER = 1.5
CONGESTED = 0.9
LOSSY = 0.01
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
RELEVANT_PARAMS = {"link_down": ("one_way",), "link_degrade": ("one_way", "loss", "capacity_factor"),
                   "link_flap": ("one_way", "period_minutes"), "flash_crowd": ("multiplier",),
                   "misconfig": ("one_way", "metric")}


@dataclass
class StepResult:
    """One step: every KPI as arrays over the simulator's entity lists, and the events raised."""

    ts: datetime
    minute: float
    link_load: np.ndarray
    link_utilisation: np.ndarray
    link_loss: np.ndarray
    link_latency: np.ndarray
    link_up: np.ndarray
    node_up: np.ndarray
    cell_traffic: np.ndarray
    cell_prb: np.ndarray
    cell_users: np.ndarray
    cell_up: np.ndarray
    edge_gpu: np.ndarray
    edge_ran_share: np.ndarray
    edge_up: np.ndarray
    events: list[Event] = field(default_factory=list)
    overload: float = 0.0  # Mbit/s offered above capacity, summed over links
    blackholed: float = 0.0  # Mbit/s of demand with no path


@dataclass
class Expected:
    """The simulator's noise-free state: demand per pair, which links are up, their capacity and metrics."""

    volume: np.ndarray
    link_up: np.ndarray
    capacity: np.ndarray
    metric: np.ndarray


class Simulator:
    """Deterministic for a given ``seed``. Call ``step()`` repeatedly; change routing between steps with
    ``set_metrics`` or ``set_path_splits``; inject faults at any time with ``inject``."""

    def __init__(self, network: Network, *, seed: int = 0, step_seconds: float = 60.0,
                 start: datetime = DEFAULT_START, faults: list[Fault] | None = None,
                 profile: np.ndarray | None = None, noise: float = 0.08) -> None:
        self.network = network
        self.arrays = arrays = network.arrays()
        self.rng = np.random.default_rng(seed)
        self.step_seconds = float(step_seconds)
        self.start = start.astimezone(UTC)
        self.profile = bundled_profile() if profile is None else np.asarray(profile, dtype=float)
        self.noise = noise
        self.faults: list[Fault] = []
        self.truth: list[FaultRecord] = []
        self.carried: np.ndarray | None = None  # the demand per pair the last step carried, noise included
        self.minute = 0.0
        self.metric = arrays.metric.astype(np.int64).copy()
        self._splits: dict[tuple[int, int], list[tuple[np.ndarray, float]]] | None = None
        self._splits_version = 0
        self._routing_cache: OrderedDict[bytes, object] = OrderedDict()

        ids = arrays.node_ids
        n = arrays.n_nodes
        self.pairs, self.base_volume = arrays.demand_pairs()
        node_scale = self.rng.lognormal(0.0, 0.15, n)
        self.base_volume = self.base_volume * np.sqrt(node_scale[self.pairs[:, 0]] * node_scale[self.pairs[:, 1]])
        self._ar = np.zeros(len(self.pairs))

        kinds = [node.kind for node in network.nodes]
        self.cells = np.array([i for i, k in enumerate(kinds) if k == "cell_site"], dtype=np.int64)
        self.edges = np.array([i for i, k in enumerate(kinds) if k == "edge_site"], dtype=np.int64)
        self.cell_capacity = np.array([network.nodes[i].prbs * MBPS_PER_PRB for i in self.cells])
        self.link_ids = [link_entity(lk.source, lk.target, lk.key) for lk in network.links]
        self.node_ids = [node_entity(i) for i in ids]
        self.cell_ids = [cell_entity(ids[i]) for i in self.cells]
        self.edge_ids = [edge_entity(ids[i]) for i in self.edges]
        # Each cell's traffic to and from edge sites decides the RAN share of that site's GPUs.
        # Per edge site: which demands touch it and which cells it serves (fixed by the demand matrix).
        self._edge_touching = np.array([(self.pairs == e).any(axis=1) for e in self.edges]).reshape(
            len(self.edges), len(self.pairs)).astype(float)
        self._edge_homed = np.array([np.isin(self.cells, self.pairs[t > 0].ravel()) for t in self._edge_touching]
                                    ).reshape(len(self.edges), len(self.cells)).astype(float)
        self._edge_traffic_base = np.maximum(self._edge_touching @ self.base_volume, 1e-9)
        self._previous: dict[str, np.ndarray] = {}
        for fault in name_faults(list(faults or [])):
            self._check_target(fault)
            self.faults.append(fault)

    # --- control -------------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.start + timedelta(minutes=self.minute)

    def inject(self, fault: Fault) -> Fault:
        """Schedule a fault (``at_minute`` counts from the start of the run, as in a fault file)."""
        named = fault if fault.id else fault.model_copy(update={"id": f"F{len(self.faults) + 1}-{fault.kind}"
                                                                      f"@{fault.at_minute:g}"})
        self._check_target(named)
        self.faults.append(named)
        return named

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

    def steered_pairs(self) -> int:
        """How many demand pairs run on explicit paths."""
        return len(self._splits or {})

    # --- the model ------------------------------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        arrays = self.arrays
        link_up = arrays.up.copy()
        capacity = arrays.capacity.copy()
        extra_loss = np.zeros(arrays.n_links)
        node_up = np.ones(arrays.n_nodes, dtype=bool)
        demand_factor = np.ones(arrays.n_nodes)
        metric = self.metric.copy()
        index = arrays.index
        for fault in self.faults:
            if not fault.active(self.minute):
                continue
            if fault.kind in ("link_down", "link_degrade", "link_flap", "misconfig"):
                links = self.links_of(fault)
                if fault.kind == "link_down":
                    link_up[links] = False
                elif fault.kind == "link_flap":
                    phase = ((self.minute - fault.at_minute) % fault.period_minutes) / fault.period_minutes
                    if phase < 0.5:
                        link_up[links] = False
                elif fault.kind == "link_degrade":
                    capacity[links] *= fault.capacity_factor
                    extra_loss[links] = np.maximum(extra_loss[links], fault.loss)
                else:
                    metric[links] = fault.metric
            elif fault.kind in ("router_down", "cell_outage", "edge_failure"):
                node_up[index[fault.target]] = False
            elif fault.kind == "flash_crowd":
                node = index[fault.target]
                demand_factor[node] *= fault.multiplier
                if self.network.nodes[node].kind == "router":
                    # A region: the router and the cells attached to it.
                    for e in np.flatnonzero(arrays.src == node):
                        if self.network.nodes[arrays.dst[e]].kind == "cell_site":
                            demand_factor[arrays.dst[e]] *= fault.multiplier
        dead_node = ~node_up
        link_up &= ~(dead_node[arrays.src] | dead_node[arrays.dst])
        return {"link_up": link_up, "capacity": capacity, "extra_loss": extra_loss, "node_up": node_up,
                "demand_factor": demand_factor, "metric": metric}

    def links_of(self, fault: Fault) -> np.ndarray:
        """The link indices a link fault acts on (both directions unless it is one-way)."""
        a, b = fault.link_ends()
        ia, ib = self.arrays.index[a], self.arrays.index[b]
        src, dst = self.arrays.src, self.arrays.dst
        forward = (src == ia) & (dst == ib)
        backward = (src == ib) & (dst == ia)
        return np.flatnonzero(forward if fault.one_way else forward | backward)

    def _check_target(self, fault: Fault) -> None:
        index = self.arrays.index
        if fault.kind in ("link_down", "link_degrade", "link_flap", "misconfig"):
            a, b = fault.link_ends()
            if a not in index or b not in index or len(self.links_of(fault)) == 0:
                raise ValueError(f"fault {fault.id}: no link between {a} and {b}")
        elif not isinstance(fault.target, str) or fault.target not in index:
            raise ValueError(f"fault {fault.id}: unknown node {fault.target!r}")

    def _cached(self, key: bytes, make):
        """The routing cache: the 64 routings used last are kept (a planner asks for the running metrics under
        each failure it plans against tick after tick, among many trial metrics asked once)."""
        cache = self._routing_cache
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = cache[key] = make()
        if len(cache) > 64:
            cache.popitem(last=False)
        return value

    def _ecmp(self, metric: np.ndarray, link_up: np.ndarray) -> EcmpRouting:
        return self._cached(metric.tobytes() + link_up.tobytes(),
                            lambda: ecmp_flows(self.arrays, metric, self.pairs, self.base_volume, link_up))

    def _link_loads(self, volume: np.ndarray, metric: np.ndarray, link_up: np.ndarray) -> tuple[np.ndarray, float]:
        """(loads per link, traffic with no path)."""
        igp_volume = volume.copy()
        loads = np.zeros(self.arrays.n_links)
        if self._splits:
            matrix, covered = self._split_matrix(link_up)
            loads += matrix @ np.where(covered, volume, 0.0)
            igp_volume = np.where(covered, 0.0, volume)
        routing = self._ecmp(metric, link_up)
        loads += routing.link_loads(igp_volume)
        return loads, float(igp_volume[routing.unreachable].sum())

    def _split_matrix(self, link_up: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        # Keyed by a version, not the dict's id: a freed dict's id can come back with other paths.
        key = b"splits" + link_up.tobytes() + str(self._splits_version).encode()
        return self._cached(key, lambda: policy_matrix(self._splits, self.pairs, link_up, self.arrays.n_links))

    def _volume(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """Demand per pair now, without the sampling noise."""
        hour_of_week = (self.now - self.now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 3600
        hour_of_week += 24 * self.now.weekday()
        # The network file's demands are the busy-hour matrix (what operators plan for): the peak hour of the
        # weekly profile carries them in full, quieter hours a share.
        level = profile_at(self.profile, hour_of_week) / float(self.profile.max())
        factor = state["demand_factor"]
        volume = self.base_volume * level * factor[self.pairs[:, 0]] * factor[self.pairs[:, 1]]
        node_up = state["node_up"]
        return np.where(node_up[self.pairs[:, 0]] & node_up[self.pairs[:, 1]], volume, 0.0)

    def expected(self) -> Expected:
        """What the network carries now under the faults it knows of, without noise: the planner's view."""
        state = self._state()
        return Expected(self._volume(state), state["link_up"], np.where(state["link_up"], state["capacity"], 0.0),
                        state["metric"])

    def link_loads(self, volume: np.ndarray, metric: np.ndarray, link_up: np.ndarray) -> np.ndarray:
        """Per-link load of ``volume`` (per demand pair) under ``metric``, over the links that are up."""
        return self._link_loads(volume, metric, link_up)[0]

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

    def step(self) -> StepResult:
        """Advance one step and report what the network measured during it."""
        state = self._state()
        self._record_truth()
        phi = 0.9
        self._ar = phi * self._ar + np.sqrt(1 - phi * phi) * self.rng.standard_normal(len(self.pairs))
        noise = np.exp(self.noise * self._ar - self.noise ** 2 / 2)
        volume = self._volume(state) * noise
        self.carried = volume
        loads, blackholed = self._link_loads(volume, state["metric"], state["link_up"])
        result = self._measure(state, volume, loads, blackholed,
                               self.rng.lognormal(0.0, 0.05, len(self.cells)))
        result.events = self._events(result)
        self.minute += self.step_seconds / 60.0
        return result

    def replay(self, fault_sets: Sequence[Sequence[Fault]], *, scale: float = 1.0) -> list[StepResult]:
        """What the network would measure now, without noise, under each set of faults, with the demand times
        ``scale``, without advancing time or touching what ``step`` reports (a root-cause localiser compares
        measurements with these).

        Sets that only take links out of service relative to the first set (a link down, a metric so high no
        path takes the link) are routed together by the incremental single-failure what-if, exactly; the rest
        are routed one by one."""
        saved = self.faults
        try:
            states = []
            for faults in fault_sets:
                self.faults = list(faults)
                states.append(self._state())
        finally:
            self.faults = saved
        volumes = [self._volume(state) * scale for state in states]
        loads: list[tuple[np.ndarray, float] | None] = [None] * len(states)
        if states:
            self._replay_failures(states, volumes, loads)
        results = []
        for state, volume, routed in zip(states, volumes, loads, strict=True):
            load, blackholed = routed if routed is not None else \
                self._link_loads(volume, state["metric"], state["link_up"])
            results.append(self._measure(state, volume, load, blackholed, np.ones(len(self.cells))))
        return results

    def _replay_failures(self, states: list[dict], volumes: list[np.ndarray],
                         loads: list[tuple[np.ndarray, float] | None]) -> None:
        """Fill ``loads`` for the states that differ from the first by links out of service only (down, or
        raised above the way round them: the what-if, all at once) and for those whose raised links change no
        path (the first state's routing); the rest are left to be routed one by one."""
        base, volume = states[0], volumes[0]
        up, metric = base["link_up"], base["metric"]
        scenarios: dict[bytes, tuple[np.ndarray, list[tuple[int, bool]]]] = {}  # links out -> (links, sets)
        for k, state in enumerate(states[1:], start=1):
            # Same demand only: a node down takes its demand away too (and the what-if is exact for a
            # failed link, not for every set of links that isolates a node with the cells behind it).
            if not np.array_equal(volumes[k], volume):
                continue
            down = up & ~state["link_up"]
            raised = (state["metric"] != metric) & state["link_up"]
            if not np.array_equal(state["link_up"] | down, up):
                continue
            if raised.any():
                around = self._ways_round(up & ~(down | raised), metric, raised)
                if not (state["metric"][raised] > around).all():
                    # A shortest path may still take a raised link, unless it is the only way between its ends
                    # in both directions: then every path either crosses it or not, whatever its metric.
                    if not down.any() and np.isinf(around).all() and self._symmetric(up & ~raised):
                        loads[k] = self._link_loads(volumes[k], metric, state["link_up"])
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
                                             (up if raised else states[k]["link_up"])[None, :], routed, lost)
                    loads[k] = (routed[0], float(lost[0]))
            pending = rest

    def _ways_round(self, usable: np.ndarray, metric: np.ndarray, raised: np.ndarray) -> np.ndarray:
        """For each ``raised`` link, the shortest way from its tail to its head over the ``usable`` links (inf:
        none). A raised link longer than its way round is on no shortest path (that way is shorter), so the
        network routes as if it had failed; nor is any node cut off that it connected."""
        graph = lightest_graph(self.arrays.src[usable], self.arrays.dst[usable], metric[usable].astype(float),
                               self.arrays.n_nodes)
        starts, row = np.unique(self.arrays.src[raised], return_inverse=True)
        return dijkstra(graph, indices=starts)[row, self.arrays.dst[raised]]

    def _symmetric(self, usable: np.ndarray) -> bool:
        """Whether every usable link's reverse is usable too."""
        n, src, dst = self.arrays.n_nodes, self.arrays.src[usable], self.arrays.dst[usable]
        return bool(np.isin(dst * n + src, src * n + dst).all())

    def _measure(self, state: dict[str, np.ndarray], volume: np.ndarray, loads: np.ndarray, blackholed: float,
                 user_noise: np.ndarray) -> StepResult:
        """Every KPI the network reports, from the routed loads."""
        arrays = self.arrays
        node_up = state["node_up"]
        link_up = state["link_up"]
        # A link that is down carries nothing: what an incremental routing leaves there is round-off (1e-13),
        # which would otherwise read as total loss on a link of no capacity.
        loads = np.where(link_up, np.maximum(loads, 0.0), 0.0)
        capacity = np.where(link_up, state["capacity"], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            utilisation = np.where(capacity > 0, loads / capacity, 0.0)
            overload_loss = np.where(loads > capacity, 1.0 - capacity / np.maximum(loads, 1e-12), 0.0)
        loss = 1.0 - (1.0 - overload_loss) * (1.0 - state["extra_loss"])
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

        return StepResult(self.now, self.minute, loads, utilisation, loss, latency, link_up, node_up, cell_traffic,
                          cell_prb, cell_users, cell_up, edge_gpu, edge_ran, edge_up, overload=overload,
                          blackholed=blackholed)

    # --- what an operator sees --------------------------------------------------------------------------------

    def _events(self, r: StepResult) -> list[Event]:
        events: list[Event] = []
        checks = [
            ("link_up", r.link_up, self.link_ids, "link_down", "critical", "link down", True),
            ("node_up", r.node_up, self.node_ids, "node_down", "critical", "router unreachable", True),
            ("cell_up", r.cell_up, self.cell_ids, "cell_down", "critical", "cell out of service", True),
            ("edge_up", r.edge_up, self.edge_ids, "edge_site_down", "critical", "edge GPU site down", True),
            ("congested", (r.link_utilisation > CONGESTED) & r.link_up, self.link_ids, "congestion", "warning",
             f"utilisation above {CONGESTED:.0%}", False),
            ("lossy", (r.link_loss > LOSSY) & r.link_up, self.link_ids, "high_loss", "major",
             f"loss above {LOSSY:.0%}", False),
        ]
        for name, now, ids, kind, severity, text, alarm_when_false in checks:
            bad = ~now if alarm_when_false else now
            before = self._previous.get(name, np.zeros_like(bad))
            for i in np.flatnonzero(bad & ~before):
                events.append(Event(r.ts, ids[i], kind, severity, text))
            for i in np.flatnonzero(~bad & before):
                events.append(Event(r.ts, ids[i], kind, "cleared", f"{text}: cleared"))
            self._previous[name] = bad
        return events

    def _record_truth(self) -> None:
        known = {t.fault_id for t in self.truth}
        for fault in self.faults:
            if fault.id not in known and fault.active(self.minute):
                end = None if fault.duration_minutes is None else \
                    self.start + timedelta(minutes=fault.at_minute + fault.duration_minutes)
                params = {name: getattr(fault, name) for name in RELEVANT_PARAMS.get(fault.kind, ())}
                target = "->".join(fault.target) if isinstance(fault.target, list) else fault.target
                self.truth.append(FaultRecord(fault.id, fault.kind, target,
                                              self.start + timedelta(minutes=fault.at_minute), end, params))


METRIC_NAMES = ("up", "load", "utilisation", "loss", "latency", "traffic", "prb_utilisation", "users",
                "gpu_utilisation", "gpu_ran_share")


def entity_names(sim: Simulator) -> list[str]:
    """Every entity of the simulator, in the order ``sample_codes`` numbers them."""
    return [*sim.link_ids, *sim.node_ids, *sim.cell_ids, *sim.edge_ids]


def sample_codes(sim: Simulator, result: StepResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entity index into ``entity_names``, metric index into ``METRIC_NAMES``, value) of every sample of a
    step. A link, cell or site that is down reports only ``up = 0``: its counters are not there to read."""
    n_links, n_nodes, n_cells = len(sim.link_ids), len(sim.node_ids), len(sim.cell_ids)
    offsets = {"link": 0, "node": n_links, "cell": n_links + n_nodes, "edge": n_links + n_nodes + n_cells}
    entities, metrics, values = [], [], []

    def add(group: str, mask: np.ndarray, name: str, data: np.ndarray) -> None:
        chosen = np.flatnonzero(mask)
        entities.append(chosen + offsets[group])
        metrics.append(np.full(len(chosen), METRIC_NAMES.index(name), dtype=np.int8))
        values.append(np.asarray(data, dtype=float)[chosen])

    up = result.link_up
    add("link", np.ones(n_links, dtype=bool), "up", up.astype(float))
    for name, data in (("load", result.link_load), ("utilisation", result.link_utilisation),
                       ("loss", result.link_loss), ("latency", result.link_latency)):
        add("link", up, name, data)
    add("node", np.ones(n_nodes, dtype=bool), "up", result.node_up.astype(float))
    add("cell", np.ones(n_cells, dtype=bool), "up", result.cell_up.astype(float))
    for name, data in (("traffic", result.cell_traffic), ("prb_utilisation", result.cell_prb),
                       ("users", result.cell_users)):
        add("cell", result.cell_up, name, data)
    add("edge", np.ones(len(sim.edge_ids), dtype=bool), "up", result.edge_up.astype(float))
    for name, data in (("gpu_utilisation", result.edge_gpu), ("gpu_ran_share", result.edge_ran_share)):
        add("edge", result.edge_up, name, data)
    return np.concatenate(entities).astype(np.int32), np.concatenate(metrics), np.concatenate(values)


def sample_columns(sim: Simulator, result: StepResult) -> tuple[list[str], list[str], np.ndarray]:
    """``sample_codes`` with the entity and metric names spelled out."""
    names = entity_names(sim)
    entities, metrics, values = sample_codes(sim, result)
    return [names[i] for i in entities], [METRIC_NAMES[m] for m in metrics], values


#: StepResult array -> (sample metric, which entity list, the value when nothing was reported).
_MEASURED = {"link_load": ("load", "link", 0.0), "link_utilisation": ("utilisation", "link", 0.0),
             "link_loss": ("loss", "link", 0.0), "link_latency": ("latency", "link", 0.0),
             "link_up": ("up", "link", 1.0), "node_up": ("up", "node", 1.0),
             "cell_traffic": ("traffic", "cell", 0.0), "cell_prb": ("prb_utilisation", "cell", 0.0),
             "cell_users": ("users", "cell", 0.0), "cell_up": ("up", "cell", 1.0),
             "edge_gpu": ("gpu_utilisation", "edge", 0.0), "edge_ran_share": ("gpu_ran_share", "edge", 0.0),
             "edge_up": ("up", "edge", 1.0)}


def step_from_samples(layout: Simulator, samples, ts: datetime, minute: float) -> StepResult:
    """Measured samples (a lab's poll, a broker's batch) as one step in ``layout``'s entity order, so whatever
    consumes simulator steps (the autopilot) runs on real telemetry too. What was not reported reads as healthy
    and idle: up, no load (the absence of a report is not an outage). Samples of unknown entities are ignored."""
    lists = {"link": layout.link_ids, "node": layout.node_ids, "cell": layout.cell_ids, "edge": layout.edge_ids}
    position = {kind: {entity: i for i, entity in enumerate(ids)} for kind, ids in lists.items()}
    arrays = {name: np.full(len(lists[kind]), default) for name, (_, kind, default) in _MEASURED.items()}
    field_of = {(metric, kind): name for name, (metric, kind, _) in _MEASURED.items()}
    for sample in samples:
        kind = sample.entity.partition(":")[0]
        name = field_of.get((sample.metric, kind))
        i = position.get(kind, {}).get(sample.entity)
        if name is not None and i is not None:
            arrays[name][i] = sample.value
    for name in ("link_up", "node_up", "cell_up", "edge_up"):
        arrays[name] = arrays[name] > 0.5
    capacity = np.array([link.capacity for link in layout.network.links])
    load = arrays["link_load"]
    overload = float(np.maximum(load - capacity, 0.0)[arrays["link_up"]].sum())
    return StepResult(ts=ts, minute=minute, overload=overload, **arrays)


def steps_from_store(store, layout: Simulator, start: datetime, step_seconds: float, count: int):
    """``count`` steps read back from a telemetry store, one window of ``step_seconds`` each from ``start``,
    whatever filled the store (a file replay, a NATS consumer, the lab's poller): the loop's input when the
    network is not the simulator."""
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    for i in range(count):
        ts = start + timedelta(seconds=i * step_seconds)
        samples = store.between(ts, ts + timedelta(seconds=step_seconds))
        yield step_from_samples(layout, samples, ts, i * step_seconds / 60.0)
