"""Scenarios: a network, a traffic profile, timed faults; replayed through the simulator with the autopilot acting
and again with static shortest-path routing, and scored (detection, root cause, overload, safety, latency)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from netpilot.autopilot.loop import Autopilot, latency_summary, settle_heap
from netpilot.change.drivers import SimulatorDriver
from netpilot.change.intents import Intent, SetLinkState, apply_intents
from netpilot.change.verify import verify_change
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.errors import InputError
from netpilot.model.faults import Fault, name_faults
from netpilot.model.network import Network
from netpilot.model.twin import DEFAULT_START, Twin
from netpilot.telemetry.sim.simulator import Simulator

#: Seconds after a fault's start within which an incident counts as its detection.
DETECTION_WINDOW_MINUTES = 15.0


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
    return network


def run_scenario(scenario: Scenario, *, autopilot: bool = True, policy: Policy | None = None,
                 progress: Callable[[int, int], None] | None = None, network: Network | None = None,
                 settle: bool = False) -> dict:
    """One replay. With ``autopilot`` the loop acts (changes auto-approved by ``policy``, by default every
    metric change); without it the network keeps its metrics (static shortest-path routing, reconverging
    around failures as OSPF does). ``settle`` is for a program that times the loop: the heap is settled
    (``settle_heap``) once the loop is set up."""
    network = network or scenario_network(scenario)
    sim = Simulator(network, seed=scenario.seed, step_seconds=scenario.step_seconds, start=scenario.start,
                    faults=name_faults(list(scenario.faults)))
    steps = round(scenario.hours * 3600 / scenario.step_seconds)
    pilot = None
    if autopilot:
        store = ChangeStore(":memory:", policy or Policy(auto_approve=["apply_metrics", "set_policies"]))
        # A replay does a fixed amount of work per tick (no wall-clock budget), so the same scenario gives the
        # same decisions on any machine and under any load; the latency it measures is that work's.
        pilot = Autopilot(network, store, SimulatorDriver(network, sim), congestion=scenario.congestion,
                          tick_budget_ms=None)
        if settle:
            settle_heap()
    overload = blackholed = 0.0
    carried: dict[float, np.ndarray] = {}  # the true demand of each minute, for the hindsight check
    for i in range(steps):
        result = sim.step()
        assert sim.carried is not None  # set by every step
        carried[result.minute] = sim.carried
        overload += result.overload * scenario.step_seconds
        blackholed += result.blackholed * scenario.step_seconds
        if pilot is not None:
            pilot.observe(result)
        if progress is not None:
            progress(i + 1, steps)
    out: dict[str, Any] = {"overload_traffic_gbit": overload / 1000.0, "blackholed_traffic_gbit": blackholed / 1000.0,
           "steps": steps}
    if pilot is None:
        return out
    changes = pilot.changes.list()
    out |= {
        "faults": [_score_fault(f, pilot, sim.start) for f in sim.faults],
        "changes_proposed": len(changes),
        "changes_applied": len(pilot.applied),
        "changes_rolled_back": sum(a.state == "rolled_back" for a in pilot.applied),
        "changes_refused": sum(c.state == "rejected" for c in changes),
        "unsafe_changes_applied": _unsafe_applied(pilot, sim, network, scenario, carried),
        "unsafe_at_profile_demand": _unsafe_applied(pilot, sim, network, scenario, None),
        "decision_latency_ms": latency_summary(pilot.ticks),
        "incidents": [{"id": i.id, "minute": i.minute, "causes": i.causes[:3]} for i in pilot.incidents],
        "outcomes": [pilot.outcome(a) for a in pilot.applied],
        "changes": [{"id": c.id, "state": c.state, "intents": sorted({i["intent"] for i in c.intents}),
                     "why": c.why} for c in changes],
    }
    return out


def compare(scenario: Scenario, *, progress: Callable[[str, int, int], None] | None = None,
            network: Network | None = None, settle: bool = False) -> dict:
    """The scenario with the autopilot and with static routing, and the overload cut between them. ``network``
    replaces the scenario's file (a server runs scenarios on the network it serves)."""
    network = network or scenario_network(scenario)
    ours = run_scenario(scenario, network=network, settle=settle,
                        progress=(lambda i, n: progress("autopilot", i, n)) if progress else None)
    static = run_scenario(scenario, autopilot=False, network=network,
                          progress=(lambda i, n: progress("static", i, n)) if progress else None)
    base = static["overload_traffic_gbit"]
    cut = 1.0 - ours["overload_traffic_gbit"] / base if base > 0 else None
    return {"scenario": scenario.name or scenario.network.stem, **{k: v for k, v in ours.items()
                                                                   if k != "overload_traffic_gbit"},
            "overload_traffic": {"autopilot_gbit": ours["overload_traffic_gbit"], "baseline_gbit": base,
                                 "cut": cut}}


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
                    carried: dict[float, np.ndarray] | None) -> int:
    """Applied changes that verification refuses when re-checked with hindsight: the true faults of that minute
    (links down, the capacity a degraded link has left) and the demand the network truly carried then
    (``carried``), instead of what the loop believed. With ``carried`` None, the simulator's noise-free profile
    demand instead (what the demand would have been without its per-pair variation)."""
    unsafe = 0
    truth = Twin(network, seed=scenario.seed, start=scenario.start, faults=list(sim.faults))
    for applied in pilot.applied:
        truth.minute = applied.minute
        expected = truth.expected()
        downs: list[Intent] = [SetLinkState(intent="set_link_state", source=network.links[e].source,
                              target=network.links[e].target, state="down")
                 for e in np.flatnonzero(~expected.link_up)]
        capacity = np.where(expected.link_up, expected.capacity, [lk.capacity for lk in network.links])
        before = apply_intents(_with_metrics(network, applied.metric_before, capacity, applied.policies_before),
                               downs)
        after = apply_intents(_with_metrics(network, applied.metric_after, capacity, applied.policies_after), downs)
        volume = expected.volume if carried is None else carried[applied.minute]
        report = verify_change(before, after, pilot.settings.verification.exact(), demand=(truth.pairs, volume))
        unsafe += not report.ok
    return unsafe


def _with_metrics(network: Network, metric: np.ndarray, capacity: np.ndarray, policies: list) -> Network:
    """The network with these metrics and path policies, and the capacity each link truly had (a degraded link
    has less)."""
    data = network.model_dump(mode="json")
    data["policies"] = [p.model_dump(mode="json") for p in policies]
    for link, value, cap in zip(data["links"], metric.tolist(), capacity.tolist(), strict=True):
        link["metric"] = int(value)
        link["capacity"] = float(cap)
    return Network.model_validate(data)
