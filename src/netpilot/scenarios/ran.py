"""AI-RAN scenarios: the simulator with timed events, run with the RAN part of the loop acting and, on the same
demand, with a static slice split and a static placement; scored per slice (SLA met), per service (SLO met),
requests unserved, GPUs powered, decision time and unsafe changes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netpilot.autopilot.ran import RanLoop, RanSettings
from netpilot.change.ran import SimulatedRanDriver
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.model.network import Network
from netpilot.model.ran import RanConfig, RanTopology
from netpilot.optimize.ran.placement import PlacementProblem, place_fast
from netpilot.telemetry.sim.airan import AiRanSimulator, LlmTrace, RanEvent, RanTruth


@dataclass
class RanScore:
    """One policy's run: SLA met per slice (share of feasible cell-intervals), SLO met per service (share of
    requests), requests unserved, mean GPUs powered for AI."""

    sla_met: dict[str, float]
    slo_met: dict[str, float]
    unserved_requests: float
    offered_requests: float
    gpus_powered: float
    sla_all: float = 0.0
    slo_all: float = 0.0


@dataclass
class RanScenarioReport:
    name: str
    ticks: int
    loop: RanScore
    static: RanScore
    decide_ms: list[float] = field(default_factory=list)
    changes_applied: int = 0
    rolled_back: int = 0
    unsafe: int = 0
    reservation_misses: int = 0
    placement_ticks: int = 0  # ticks the placement planner ran (slicing runs every tick)


class _Scorer:
    def __init__(self, topology: RanTopology, step_seconds: float) -> None:
        self.topology = topology
        self.step_seconds = step_seconds
        n_slices, n_services = len(topology.slices), len(topology.services)
        self.met, self.feasible = np.zeros(n_slices), 0
        self.offered, self.unserved, self.slo = np.zeros(n_services), np.zeros(n_services), np.zeros(n_services)
        self.gpus, self.ticks = 0.0, 0

    def add(self, truth: RanTruth) -> None:
        self.met += truth.sla_met[truth.sla_feasible].sum(axis=0)
        self.feasible += int(truth.sla_feasible.sum())
        self.offered += truth.offered * self.step_seconds
        self.unserved += truth.unserved * self.step_seconds
        self.slo += truth.slo_met * self.step_seconds
        self.gpus += truth.gpus_powered
        self.ticks += 1

    def score(self) -> RanScore:
        topo = self.topology
        feasible = max(self.feasible, 1)
        return RanScore({s.name: float(self.met[i] / feasible) for i, s in enumerate(topo.slices)},
                        {s.name: float(self.slo[i] / max(self.offered[i], 1e-9)) for i, s in enumerate(topo.services)},
                        max(float(self.unserved.sum()), 0.0), float(self.offered.sum()), self.gpus / max(self.ticks, 1),
                        float(self.met.sum() / (feasible * len(topo.slices))),
                        float(self.slo.sum() / max(self.offered.sum(), 1e-9)))


def static_config(topology: RanTopology, simulator: AiRanSimulator) -> RanConfig:
    """What runs without the loop: every slice a third of each cell, and inference placed once (``place_fast``)
    on the first tick's demand with the RAN's need at its full PRBs reserved."""
    probe = AiRanSimulator.__new__(AiRanSimulator)
    probe.__dict__ = {**simulator.__dict__, "rng": np.random.default_rng(12345), "wobble": simulator.wobble.copy()}
    _, rate, _, _ = probe.demand_now()
    ran = topology.ran_gpus(topology.prbs.astype(float))
    problem = PlacementProblem(topology.cells, topology.sites, list(topology.services), rate * 1.15,
                               topology.latency_ms, topology.gpus.astype(float), topology.gpu_memory_gb.astype(float),
                               np.minimum(ran / topology.gpus, 1.0))
    placement = place_fast(problem)
    shares = np.full((len(topology.cells), len(topology.slices)), 1.0 / len(topology.slices))
    return RanConfig(shares, placement.share, placement.loaded, placement.gpus_on)


def run_ran_scenario(name: str, network: Network, topology: RanTopology, events: list[RanEvent], *, ticks: int,
                     seed: int = 0, trace: LlmTrace | None = None, settings: RanSettings | None = None,
                     start_hour: float = 8.0) -> RanScenarioReport:
    """Run the loop and the static baseline on the same demand (two simulators, one seed)."""
    loop_sim = AiRanSimulator(topology, seed=seed, events=events, trace=trace, start_hour=start_hour)
    static_sim = AiRanSimulator(topology, seed=seed, events=events, trace=trace, start_hour=start_hour)
    static = static_config(topology, loop_sim)
    driver = SimulatedRanDriver(topology, static.copy())
    driver.reserved = np.minimum(topology.ran_gpus(topology.prbs.astype(float)), topology.gpus)
    changes = ChangeStore(":memory:", Policy(auto_approve=["set_slices", "place_inference"]))
    loop = RanLoop(topology, network, driver, changes, settings)
    loop_score, static_score = _Scorer(topology, 60.0 * loop_sim.step_minutes), \
        _Scorer(topology, 60.0 * loop_sim.step_minutes)
    decide, applied, rolled, unsafe, misses, placements = [], 0, 0, 0, 0, 0
    for _ in range(ticks):
        frame, truth = loop_sim.step(driver.running)
        loop_score.add(truth)
        _, static_truth = static_sim.step(static)
        static_score.add(static_truth)
        # Unsafe: what runs breaks a hard limit on actual telemetry (PRBs over a cell, GPUs powered beyond what
        # the RAN's reservation leaves). A reservation miss: the RAN's actual need went past its reservation
        # where AI held the GPUs (the RAN takes them first; AI loses them): a forecast error, counted apart.
        running = driver.running
        over_prbs = (running.slice_shares.sum(axis=1) > 1.0 + 1e-6).any()
        over_gpus = (running.gpus_on > np.floor(np.maximum(topology.gpus - driver.reserved, 0.0) + 1e-9)).any()
        unsafe += int(over_prbs or over_gpus)
        misses += int(((frame.ran_gpus > driver.reserved + 1e-6) &
                       (running.gpus_on > np.floor(topology.gpus - frame.ran_gpus + 1e-9))).any())
        tick = loop.observe(frame)
        decide.append(tick.decide_ms)
        placements += int("ran.placement" in tick.stages_ms)
        applied += len(tick.applied)
        rolled += len(tick.rolled_back)
    changes.close()
    return RanScenarioReport(name, ticks, loop_score.score(), static_score.score(), decide, applied, rolled, unsafe,
                             misses, placements)


def shipped_scenarios(topology: RanTopology, minutes: int = 60) -> dict[str, list[RanEvent]]:
    """The four AI-RAN scenarios on any topology (events on its first sites and cells): a RAN surge shrinking
    the AI share of a quarter of the sites, an edge site failing, an LLM flash crowd, a tenth of the cells
    failing."""
    sites, cells = topology.sites, topology.cells
    quarter = sites[: max(1, len(sites) // 4)]
    start, end = minutes / 4, 3 * minutes / 4
    return {
        "ran-surge": [RanEvent(kind="ran_surge", start_minute=start, end_minute=end, sites=quarter, factor=1.8)],
        "edge-site-down": [RanEvent(kind="site_down", start_minute=start, end_minute=end, sites=[sites[0]])],
        "flash-crowd": [RanEvent(kind="flash_crowd", start_minute=start, end_minute=end, sites=quarter,
                                 service="llm-chat", factor=4.0)],
        "cells-down": [RanEvent(kind="cell_down", start_minute=start, end_minute=end,
                                cells=cells[: max(1, len(cells) // 10)])],
    }
