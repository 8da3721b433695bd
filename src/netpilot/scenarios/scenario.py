"""Scenarios: a network, a traffic profile, timed faults; replayed through the simulator with the autopilot acting
and again with static shortest-path routing, and scored (detection, root cause, overload, safety, latency)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from netpilot.analytics.rca import Snapshot, feature_layout, noise_floors
from netpilot.autopilot.loop import Autopilot, latency_summary, settle_heap
from netpilot.change.drivers import SimulatorDriver
from netpilot.change.intents import Intent, SetLinkState, apply_intents
from netpilot.change.verify import PER_FAILURE, VerificationSettings, verify_change
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.errors import InputError
from netpilot.model.faults import Fault, name_faults
from netpilot.model.network import Network, NetworkArrays
from netpilot.model.twin import DEFAULT_START, Twin
from netpilot.telemetry.sim.simulator import Simulator

#: Below this share of the static overload, what the oracle could cut is round-off: no share is given.
ACHIEVABLE_FLOOR_SHARE = 1e-3

#: Seconds after a fault's start within which an incident counts as its detection.
DETECTION_WINDOW_MINUTES = 15.0


class GeneratedFault(BaseModel):
    """What generation found about one fault: the share of the peak demand it leaves with no path at all."""

    model_config = ConfigDict(extra="forbid")

    id: str
    strands_share: float = Field(ge=0, le=1, description="Share of the peak demand no routing can carry.")
    helpable: bool = Field(description="False when the fault strands traffic (a router down strands its own).")


class GenerationInfo(BaseModel):
    """How `netpilot scenario generate` made a scenario (kept in the file so a report can say it)."""

    model_config = ConfigDict(extra="forbid")

    load: float = Field(description="The LP optimum's MLU at the peak hour that the demand was scaled to.")
    lp_method: str
    peak_hour_of_week: float
    static_peak_mlu: float = Field(description="Shortest-path routing's MLU at the peak hour, no faults.")
    faults: list[GeneratedFault] = Field(default_factory=list)


class Scenario(BaseModel):
    """What a scenario file holds. Paths are relative to the file."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    network: Path = Field(description="Network file (YAML/JSON, or any format `topo import` reads).")
    demands: Path | None = Field(default=None, description="Demand matrix replacing the network file's.")
    hours: float = Field(gt=0, le=24 * 7, description="Length of the run.")
    step_seconds: float = Field(default=60.0, ge=10, le=3600)
    seed: int = 0
    start: datetime = Field(default=DEFAULT_START, description="Simulated start time (UTC); sets the daily load.")
    congestion: float = Field(default=0.9, gt=0, description="Utilisation above which the autopilot acts.")
    faults: list[Fault] = Field(default_factory=list)
    demand_scale: float = Field(default=1.0, gt=0, description="Every demand of the network times this.")
    generated: GenerationInfo | None = None

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def load_scenario(path: str | Path) -> Scenario:
    """A scenario from YAML or JSON; errors name the file, line and field; paths resolve against the file."""
    from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

    path = Path(path)
    text = read_text(path)
    data = parse_document(text, path)
    if not isinstance(data, dict):
        raise InputError.at("a scenario is a mapping with network, hours, faults, ...", file=path, line=1)
    scenario = parse_model(Scenario, data, file=path, locator=LineLocator(text))
    updates = {"network": (path.parent / scenario.network).resolve()}
    if scenario.demands is not None:
        updates["demands"] = (path.parent / scenario.demands).resolve()
    for key in ("network", "demands"):
        if key in updates and not updates[key].exists():
            raise InputError.at(f"{updates[key]} does not exist", file=path, field=key)
    return scenario.model_copy(update=updates)


def scenario_network(scenario: Scenario) -> Network:
    from netpilot.model.formats import attach_demands, import_demands, import_network

    network = import_network(scenario.network)
    if scenario.demands is not None:
        network = attach_demands(network, import_demands(scenario.demands, network), source=scenario.demands)
    if scenario.demand_scale != 1.0:
        network = network.model_copy(update={"demands": [
            d.model_copy(update={"volume": d.volume * scenario.demand_scale}) for d in network.demands]})
    return network


@dataclass
class RunTrace:
    """What one replay did each tick, for the hindsight oracle: the overload (Mbit/s), and on ticks with
    overload the link loads and the true demand per pair; and the loop that ran it (``pilot``, None for static
    routing), for a program that looks into its ticks and changes afterwards."""

    overload: list[float] = field(default_factory=list)
    loads: dict[int, np.ndarray] = field(default_factory=dict)
    carried: dict[int, np.ndarray] = field(default_factory=dict)
    pilot: Autopilot | None = None
    loop_seconds: float = 0.0  # wall time of the replay's steps, the loop's ticks included

    def first_overloaded_minute(self, step_seconds: float) -> float | None:
        """The minute of the first tick with overload (None: none had any)."""
        overloaded = next((i for i, o in enumerate(self.overload) if o > 0), None)
        return None if overloaded is None else overloaded * step_seconds / 60.0


def run_scenario(scenario: Scenario, *, autopilot: bool = True, policy: Policy | None = None,
                 progress: Callable[[int, int], None] | None = None, network: Network | None = None,
                 settle: bool = False, trace: RunTrace | None = None,
                 options: Mapping[str, Any] | None = None) -> dict:
    """One replay. With ``autopilot`` the loop acts (changes auto-approved by ``policy``, by default every
    metric change); without it the network keeps its metrics (static shortest-path routing, reconverging
    around failures as OSPF does). ``settle`` is for a program that times the loop: the heap is settled
    (``settle_heap``) once the loop is set up. ``options``: the loop's settings by their flat names (say
    ``{"failure_rule": "each"}``); with a single-failure rule other than the per-failure one, the hindsight
    re-check also counts the applied changes the per-failure rule would refuse."""
    network = network or scenario_network(scenario)
    sim = Simulator(network, seed=scenario.seed, step_seconds=scenario.step_seconds, start=scenario.start,
                    faults=name_faults(list(scenario.faults)))
    steps = round(scenario.hours * 3600 / scenario.step_seconds)
    pilot = None
    if autopilot:
        store = ChangeStore(":memory:", policy or Policy(auto_approve=["apply_metrics", "set_policies"]))
        # A replay does a fixed amount of work per tick (no wall-clock budget), so the same scenario gives the
        # same decisions on any machine and under any load; the latency it measures is that work's.
        pilot = Autopilot(network, store, SimulatorDriver(network, sim), **{"congestion": scenario.congestion,
                          "tick_budget_ms": None, **(options or {})})
        if settle:
            settle_heap()
    if trace is not None:
        trace.pilot = pilot
    overload = blackholed = 0.0
    carried: dict[float, np.ndarray] = {}  # the true demand of each minute, for the hindsight check
    # The CPU time of each whole tick: on a shared machine the wall-clock latency measures the other tenants too.
    tick_cpu_ms: list[float] = []
    # Whether each fault shows in any measurement, judged at its onset beside the replay (scored with the faults).
    observer = Twin(network, seed=scenario.seed, start=scenario.start, faults=list(sim.faults)) if pilot else None
    observable: dict[str, bool] = {}
    started = time.perf_counter()
    for i in range(steps):
        if observer is not None:
            for fault in sim.faults:
                if str(fault.id) not in observable and fault.active(sim.minute):
                    observable[str(fault.id)] = shows(observer, sim, fault)
        result = sim.step()
        assert sim.carried is not None  # set by every step
        carried[result.minute] = sim.carried
        overload += result.overload * scenario.step_seconds
        if trace is not None:
            trace.overload.append(result.overload)
            if result.overload > 0:
                trace.loads[i] = result.link_load.copy()
                trace.carried[i] = sim.carried.copy()
        blackholed += result.blackholed * scenario.step_seconds
        if pilot is not None:
            cpu = time.process_time()
            pilot.observe(result)
            tick_cpu_ms.append((time.process_time() - cpu) * 1000.0)
        if progress is not None:
            progress(i + 1, steps)
    if trace is not None:
        trace.loop_seconds = time.perf_counter() - started
    out: dict[str, Any] = {"overload_traffic_gbit": overload / 1000.0, "blackholed_traffic_gbit": blackholed / 1000.0,
           "steps": steps}
    if pilot is None:
        return out
    changes = pilot.changes.list()
    out |= {
        "faults": [_score_fault(f, pilot, sim.start) | {"observable": observable.get(str(f.id), False)}
                   for f in sim.faults],
        "changes_proposed": len(changes),
        "changes_applied": len(pilot.applied),
        "changes_rolled_back": sum(a.state == "rolled_back" for a in pilot.applied),
        "changes_refused": sum(c.state == "rejected" for c in changes),
        "applied_minutes": [a.minute for a in pilot.applied],
        "false_incidents": _false_incidents(pilot, sim.faults),
        **_unsafe_applied(pilot, sim, network, scenario, carried),
        "decision_latency_ms": latency_summary(pilot.ticks) | {
            "tick_cpu_p50": float(np.percentile(tick_cpu_ms, 50)) if tick_cpu_ms else 0.0,
            "tick_cpu_p99": float(np.percentile(tick_cpu_ms, 99)) if tick_cpu_ms else 0.0},
        "incidents": [{"id": i.id, "minute": i.minute, "causes": i.causes[:3]} for i in pilot.incidents],
        "outcomes": [pilot.outcome(a) for a in pilot.applied],
        "changes": [{"id": c.id, "state": c.state, "intents": sorted({i["intent"] for i in c.intents}),
                     "why": c.why} for c in changes],
    }
    return out


def compare(scenario: Scenario, *, progress: Callable[[str, int, int], None] | None = None,
            network: Network | None = None, settle: bool = False, options: Mapping[str, Any] | None = None) -> dict:
    """The scenario with the autopilot and with static routing, and the overload cut between them. ``network``
    replaces the scenario's file (a server runs scenarios on the network it serves)."""
    network = network or scenario_network(scenario)
    ours_trace, static_trace = RunTrace(), RunTrace()
    ours = run_scenario(scenario, network=network, settle=settle, trace=ours_trace, options=options,
                        progress=(lambda i, n: progress("autopilot", i, n)) if progress else None)
    static = run_scenario(scenario, autopilot=False, network=network, trace=static_trace,
                          progress=(lambda i, n: progress("static", i, n)) if progress else None)
    base = static["overload_traffic_gbit"]
    cut = 1.0 - ours["overload_traffic_gbit"] / base if base > 0 else None
    # Not reported through ``progress``: its callers count two runs (the API's progress is their share).
    oracle = hindsight_oracle(scenario, network, static_trace, ours_trace)
    share = share_of_achievable_cut(base, ours["overload_traffic_gbit"], oracle.overload_gbit)
    return {"scenario": scenario.name or scenario.network.stem, **{k: v for k, v in ours.items()
                                                                   if k != "overload_traffic_gbit"},
            "overload_traffic": {"autopilot_gbit": ours["overload_traffic_gbit"], "baseline_gbit": base,
                                 "cut": cut, "oracle_gbit": oracle.overload_gbit,
                                 "share_of_achievable_cut": share,
                                 "static_per_tick_mbps": [round(v, 3) for v in static_trace.overload],
                                 "autopilot_per_tick_mbps": [round(v, 3) for v in ours_trace.overload]},
            "oracle": oracle.model_dump(),
            "static_first_overloaded_minute": static_trace.first_overloaded_minute(scenario.step_seconds),
            "generated": scenario.generated.model_dump() if scenario.generated else None}


def shows(observer: Twin, running: Twin, fault: Fault) -> bool:
    """Whether ``fault`` shows in any measurement of ``running`` now: without noise, under the routing it runs
    and the other faults active, some KPI differs with the fault and without it by at least its noise floor
    (the least change the localiser takes to mean anything). A fault that does not (a metric raised on a link
    nothing takes, a link of a router already down) can be detected by no one. ``observer``: a twin of the same
    network, seed and faults, run as ``running`` runs (its state is left as it was)."""
    observer.run_as(running)
    others = [f for f in observer.faults if f.id != fault.id]
    with_it, without = (Snapshot.from_step(frame).values for frame in observer.replay([observer.faults, others]))
    return bool(np.any(np.nan_to_num(np.abs(with_it - without)) >= noise_floors(feature_layout(observer)[1])))


def _score_fault(fault: Fault, pilot: Autopilot, start: datetime) -> dict:
    truth = fault.behaviour.target(fault).name
    match = next((i for i in pilot.incidents
                  if fault.at_minute <= i.minute <= fault.at_minute + DETECTION_WINDOW_MINUTES), None)
    rank = None
    if match is not None:
        targets = list(dict.fromkeys(c["target"] for c in match.causes))
        rank = targets.index(truth) + 1 if truth in targets else None
    return {"id": fault.id, "kind": fault.kind, "target": truth, "at_minute": fault.at_minute,
            "detected": match is not None,
            "seconds_to_detect": (match.minute - fault.at_minute) * 60.0 if match else None,
            "seconds_to_localise": ((datetime.fromisoformat(match.localised_at) - start).total_seconds()
                                    - fault.at_minute * 60.0) if match and match.localised_at else None,
            "incident": match.id if match else None, "root_cause_rank": rank}


def _unsafe_applied(pilot: Autopilot, sim: Simulator, network: Network, scenario: Scenario,
                    carried: dict[float, np.ndarray]) -> dict[str, Any]:
    """Applied changes that verification refuses when re-checked with hindsight: the true faults of that minute
    (links down, the capacity a degraded link has left, the metrics the routers truly ran) and the demand the
    network truly carried then (``unsafe_changes_applied``), or the simulator's noise-free profile demand
    (what the demand would have been without its per-pair variation: ``unsafe_at_profile_demand``), by the
    loop's own rule; and, when that rule is not the per-failure one, with the carried demand by the per-failure
    rule (``unsafe_by_the_per_failure_rule``). Each change's true network is built once for all of them. Also
    ``unsafe_changes``: for each change the first check refuses, its minute, the checks it failed and the faults
    active then (why it was unsafe, for a person reading the replay)."""
    exact = pilot.settings.verification.exact()
    checks: dict[str, tuple[bool, VerificationSettings]] = {  # name: (on the carried demand?, rule)
        "unsafe_changes_applied": (True, exact), "unsafe_at_profile_demand": (False, exact)}
    if exact.failure_rule != PER_FAILURE:
        checks["unsafe_by_the_per_failure_rule"] = (True, replace(exact, failure_rule=PER_FAILURE))
    unsafe: dict[str, Any] = dict.fromkeys(checks, 0)
    why: list[dict[str, Any]] = []
    truth = Twin(network, seed=scenario.seed, start=scenario.start, faults=list(sim.faults))
    for applied in pilot.applied:
        truth.minute = applied.minute
        expected = truth.expected()
        downs: list[Intent] = [SetLinkState(intent="set_link_state", source=network.links[e].source,
                              target=network.links[e].target, state="down")
                 for e in np.flatnonzero(~expected.link_up)]
        capacity = np.where(expected.link_up, expected.capacity, [lk.capacity for lk in network.links])
        before = apply_intents(_with_metrics(network, true_metrics(truth, applied.metric_before), capacity,
                                             applied.policies_before), downs)
        after = apply_intents(_with_metrics(network, true_metrics(truth, applied.metric_after), capacity,
                                            applied.policies_after), downs)
        for name, (on_carried, settings) in checks.items():
            volume = carried[applied.minute] if on_carried else expected.volume
            report = verify_change(before, after, settings, demand=(truth.pairs, volume))
            unsafe[name] += not report.ok
            if name == "unsafe_changes_applied" and not report.ok:
                why.append({"minute": applied.minute, "state": applied.state,
                            "failed": [c.name for c in report.checks if not c.ok],
                            "active": [f"{f.kind}@{f.at_minute:g}" for f in sim.faults if f.active(applied.minute)]})
    return unsafe | {"unsafe_changes": why}


def true_metrics(truth: Twin, metric: np.ndarray) -> np.ndarray:
    """The metrics the routers truly run at ``truth``'s minute when they are configured with ``metric``: what an
    active fault holds over them kept (a misconfigured link keeps its wrong metric whatever the loop sets), as the
    simulator composes them."""
    truth.set_metrics(metric)
    return truth.expected().metric


def _with_metrics(network: Network, metric: np.ndarray, capacity: np.ndarray, policies: list) -> Network:
    """The network with these metrics and path policies, and the capacity each link truly had (a degraded link
    has less)."""
    data = network.model_dump(mode="json")
    data["policies"] = [p.model_dump(mode="json") for p in policies]
    for link, value, cap in zip(data["links"], metric.tolist(), capacity.tolist(), strict=True):
        link["metric"] = int(value)
        link["capacity"] = float(cap)
    return Network.model_validate(data)


def share_of_achievable_cut(static: float, autopilot: float, oracle: float) -> float | None:
    """(static - autopilot) / (static - oracle): the part of what hindsight could have cut that the loop cut
    (1: as good as the oracle; 0: no better than static routing; below 0: worse). None when the oracle could
    cut nothing worth speaking of (no overload, or only what no routing avoids: the scenario cannot be helped)."""
    achievable = static - oracle
    if achievable <= 0 or achievable <= ACHIEVABLE_FLOOR_SHARE * static:
        return None
    return (static - autopilot) / achievable


def _false_incidents(pilot: Autopilot, faults: list[Fault]) -> int:
    """Incidents opened outside every fault's detection window: none of the injected faults explains them."""
    return sum(not any(f.at_minute <= i.minute <= f.at_minute + DETECTION_WINDOW_MINUTES for f in faults)
               for i in pilot.incidents)


class OracleReport(BaseModel):
    """The hindsight oracle: per tick, the least overload any routing over the k-path set (or either replay's
    own routing) could have had, knowing the true demand of that minute and the true faults."""

    model_config = ConfigDict(extra="forbid")

    overload_gbit: float = Field(description="Summed like the replays' overload: Mbit/s x seconds / 1000.")
    per_tick_mbps: list[float]
    ticks_solved: int = Field(description="Ticks where both replays had overload (else the oracle's is 0).")
    k: int


def hindsight_oracle(scenario: Scenario, network: Network, static: RunTrace, ours: RunTrace, *, k: int = 4,
                     progress: Callable[[int, int], None] | None = None) -> OracleReport:
    """The overload of the best routing that knew each minute's true demand and faults (no verification
    constraints, no limit on how much it changes). Its routings are any split over ``k`` link-disjoint
    shortest paths per pair, mixed with either replay's measured routing, so it is never worse than either:
    where one replay had no overload, the oracle has none either and no LP is solved."""
    steps = len(static.overload)
    truth = Simulator(network, seed=scenario.seed, step_seconds=scenario.step_seconds, start=scenario.start,
                      faults=name_faults(list(scenario.faults)), noise=0.0)
    arrays = network.arrays()
    pairs = truth.pairs
    per_tick = np.zeros(steps)
    paths_by_state: dict[bytes, object] = {}
    both = [i for i in range(steps) if static.overload[i] > 0 and i < len(ours.overload) and ours.overload[i] > 0]
    for done, i in enumerate(both):
        truth.minute = i * scenario.step_seconds / 60.0
        expected = truth.expected()
        volume = ours.carried[i]
        if not np.allclose(volume, static.carried[i], rtol=1e-9, atol=1e-9):
            raise RuntimeError(f"tick {i}: the two replays carried different demand; the oracle needs one")
        per_tick[i] = min_overload(arrays, pairs, volume, expected.link_up, expected.capacity,
                                   [static.loads[i], ours.loads[i]], k=k, cache=paths_by_state)
        if progress is not None:
            progress(done + 1, len(both))
    return OracleReport(overload_gbit=float(per_tick.sum() * scenario.step_seconds / 1000.0),
                        per_tick_mbps=[round(float(v), 6) for v in per_tick], ticks_solved=len(both), k=k)


def min_overload(arrays: NetworkArrays, pairs: np.ndarray, volume: np.ndarray, link_up: np.ndarray,
                 capacity: np.ndarray, realised: list[np.ndarray], *, k: int = 4, cache: dict | None = None) -> float:
    """The least total overload (Mbit/s above capacity, summed over links that are up) of routing ``volume``
    between ``pairs``: an LP whose routings are splits over ``k`` link-disjoint shortest paths per pair over the
    links that are up, mixed with the measured link loads ``realised`` (each a whole routing of the same demand,
    used for every pair at once). Pairs with no path at all are what no routing carries and are left out."""
    import dataclasses

    import scipy.sparse as sp

    from netpilot.optimize import highs
    from netpilot.optimize.te.paths import k_shortest_paths

    keep = volume > 0
    pairs, volume = pairs[keep], volume[keep]
    key = link_up.tobytes() + keep.tobytes()
    if cache is not None and key in cache:
        paths = cache[key]
    else:
        paths = k_shortest_paths(dataclasses.replace(arrays, up=link_up), pairs, k)
        if cache is not None:
            cache[key] = paths
    served = paths.paths_per_pair > 0
    links = np.flatnonzero(link_up)
    if not len(links):
        return 0.0
    scale = float(capacity[links].max())
    demand = volume / scale
    n_paths, n_pairs, n_links = paths.n_paths, paths.n_pairs, len(links)
    incidence = paths.incidence(arrays.n_links)[links]
    weighted = (incidence @ sp.diags(demand[paths.path_pair])).tocsr()
    loads = np.stack([np.asarray(r, dtype=float)[links] / scale for r in realised], axis=1) if realised \
        else np.zeros((n_links, 0))
    n_real = loads.shape[1]
    pair_rows = sp.csr_matrix((np.ones(n_paths), (paths.path_pair, np.arange(n_paths))), shape=(n_pairs, n_paths))
    # Columns: x (per path), lambda (per realised routing), s (overload per link). Rows: load - s <= c; per
    # served pair, its paths' fractions plus the realised routings' weights make one.
    matrix = sp.vstack([
        sp.hstack([weighted, sp.csr_matrix(loads), -sp.identity(n_links, format="csr")]),
        sp.hstack([pair_rows[served], sp.csr_matrix(np.ones((int(served.sum()), n_real))),
                   sp.csr_matrix((int(served.sum()), n_links))]),
    ]).tocsr()
    cost = np.concatenate([np.zeros(n_paths + n_real), np.ones(n_links)])
    rows = n_links + int(served.sum())
    lower = np.concatenate([np.full(n_links, -np.inf), np.ones(rows - n_links)])
    upper = np.concatenate([capacity[links] / scale, np.ones(rows - n_links)])
    result = highs.solve(cost, matrix, lower, upper, np.zeros(len(cost)), np.full(len(cost), np.inf))
    if not result.optimal:
        raise RuntimeError(f"the oracle's LP stopped with status {result.status}")
    return max(0.0, float(result.objective)) * scale
