"""The AI-RAN part of the loop: a forecast of each cell's slice demand and of inference requests, the slicing
planner (every tick, every cell) and the placement planner (when the RAN's need at a site, inference demand or a
site's health moves), each returning a verified ``Plan``; changes go through the workflow (policy or a person
approves), the RAN driver commits them, and the next tick's telemetry confirms or rolls them back."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netpilot.autopilot.planners import Plan, Planner
from netpilot.change.drivers import DriverError
from netpilot.change.ran import (
    RanPlacementTarget,
    SimulatedRanDriver,
    placement_intent,
    ran_diff,
    slices_intent,
    verify_placement,
    verify_slices,
)
from netpilot.change.workflow import ChangeStore
from netpilot.model.network import Network
from netpilot.model.ran import RanConfig, RanFrame, RanTopology
from netpilot.optimize.ran.placement import PlacementProblem, place_cooler
from netpilot.optimize.ran.slicing import allocate_fast


@dataclass(frozen=True)
class RanSettings:
    """``slice_margin``: headroom on slice reservations over the forecast; ``rate_margin``, ``ran_margin``:
    headroom on inference requests and on the RAN's GPU need; ``replace_on``: the relative move of inference
    demand that re-places; ``ran_step``: GPUs of RAN need moved at a site that re-places; ``unserved_share``: the
    share of requests unserved that re-places; ``group_ms``: cells
    with the same home site and access latency within this are placed as one (the placement then takes
    their worst latency); ``max_utilisation``: the GPU utilisation cap the SLO bound assumes at every site;
    ``min_utilisation``: how cool the placement may run a site (a lower cap, a shorter response) so that it
    reaches requests no site serves at the cap (a failed site's cells, a crowd its own sites cannot hold);
    ``max_utilisation`` itself turns that off."""

    slice_margin: float = 0.2
    hysteresis: float = 0.01
    rate_margin: float = 0.15
    ran_margin: float = 0.15
    replace_on: float = 0.15
    ran_step: float = 0.5
    max_utilisation: float = 0.8
    min_utilisation: float = 0.5
    group_ms: float = 0.25
    unserved_share: float = 0.01
    # Its own name in the audit log: beside the routing loop in one workflow, each loop waits on, supersedes and
    # applies only its own proposals.
    actor: str = "autopilot-ran"

    def __post_init__(self) -> None:
        if not 0.0 < self.max_utilisation < 1.0:
            raise ValueError("max_utilisation must lie in (0, 1)")
        if not 0.0 < self.min_utilisation <= self.max_utilisation:
            raise ValueError("min_utilisation must lie in (0, max_utilisation]")


@dataclass
class RanContext:
    """What the RAN planners read at a tick."""

    frame: RanFrame
    network: Network
    running: RanConfig
    reserved: np.ndarray       # (K,) the RAN's GPU reservation that runs
    prb_forecast: np.ndarray   # (C, S)
    rate_forecast: np.ndarray  # (C, S)
    ran_need: np.ndarray       # (K,) GPUs the RAN will need (forecast, with margin)
    stages: dict[str, float] = field(default_factory=dict)


class RanForecast:
    """Per cell and slice (and per cell and service): the larger of the last value and an exponentially weighted
    mean, so a burst is planned for at once and a lull only slowly."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.prb: np.ndarray | None = None
        self.rate: np.ndarray | None = None
        self.last_prb: np.ndarray | None = None
        self.last_rate: np.ndarray | None = None

    def update(self, frame: RanFrame) -> None:
        a = self.alpha
        self.prb = frame.prb_demand.copy() if self.prb is None else (1 - a) * self.prb + a * frame.prb_demand
        self.rate = frame.cell_rate.copy() if self.rate is None else (1 - a) * self.rate + a * frame.cell_rate
        self.last_prb, self.last_rate = frame.prb_demand, frame.cell_rate

    def forecast(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.prb is not None and self.rate is not None
        return np.maximum(self.prb, self.last_prb), np.maximum(self.rate, self.last_rate)


class SlicingPlanner:
    """Every cell's slice split from the forecast (``optimize.ran.slicing.allocate_fast``, vectorised over
    cells); cells whose split moves by less than the hysteresis keep theirs."""

    def __init__(self, topology: RanTopology, settings: RanSettings) -> None:
        self.topology = topology
        self.settings = settings

    def plan(self, context: RanContext) -> Plan | None:
        topo, settings = self.topology, self.settings
        decision = allocate_fast(topo.prbs, context.prb_forecast, list(topo.slices), margin=settings.slice_margin)
        shares = decision.allocation / topo.prbs[:, None]
        moved = np.flatnonzero(np.abs(shares - context.running.slice_shares).max(axis=1) > settings.hysteresis)
        if not len(moved):
            return None
        intent = slices_intent(topo, moved, shares[moved], why="slice demand forecast moved")
        after = context.running.copy()
        after.slice_shares[moved] = intent.shares  # verified as sent
        report = verify_slices(topo, after, context.prb_forecast, settings.slice_margin)
        if not report.ok:
            return None
        return Plan(intent, context.network, report, 0.0, 0.0, f"new slice split on {len(moved)} cells",
                    {"cells": len(moved), "after": after})


class PlacementPlanner:
    """Inference placement (``optimize.ran.placement.place_cooler``: ``place_fast``, and again with some sites run
    cooler where that reaches requests no site serves at the cap) when the RAN's GPU need at a site moves by
    ``ran_step``, a service's forecast requests move by ``replace_on`` from what was planned for, a site's health
    changes, or more requests went unserved than it expected by ``unserved_share`` of them. Cells with the same
    home site and a like access latency are placed as one demand (their worst latency), which keeps the problem to
    a few hundred demands for thousands of cells."""

    def __init__(self, topology: RanTopology, settings: RanSettings) -> None:
        self.topology = topology
        self.settings = settings
        # What the last placement planned for: the RAN's need, requests per service, sites up, requests/s it
        # expected to leave unserved (none can serve them: re-placing would not help).
        self.planned_for: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        access = topology.latency_ms[np.arange(len(topology.cells)), topology.home]
        bucket = np.floor((access - access.min()) / settings.group_ms).astype(np.int64)
        keys = topology.home * (int(bucket.max()) + 1) + bucket
        _, self.group, counts = np.unique(keys, return_inverse=True, return_counts=True)
        n_groups = len(counts)
        worst = np.full((n_groups, len(topology.sites)), -np.inf)
        np.maximum.at(worst, self.group, topology.latency_ms)
        self.group_latency = worst

    def wanted(self, context: RanContext, waiting: bool = False) -> bool:
        """Whether to re-place now. While a placement ``waiting`` for a person is not yet running, the requests
        measured unserved are the running placement's (which the waiting one would change) and a move of
        inference demand alone would only supersede it under the person's eyes: then only the RAN's need and
        the sites' health re-place."""
        if self.planned_for is None:
            return True
        need, rate, up, unserved = self.planned_for
        frame = context.frame
        safety = bool((np.abs(context.ran_need - need) > self.settings.ran_step).any() or (frame.site_up != up).any())
        if waiting:
            return safety
        per_service = context.rate_forecast.sum(axis=0)
        return bool(safety or
                    (np.abs(per_service - rate) > self.settings.replace_on * np.maximum(rate, 1e-9)).any() or
                    frame.unserved.sum() > unserved + self.settings.unserved_share * frame.cell_rate.sum())

    def plan(self, context: RanContext) -> Plan | None:
        topo, settings = self.topology, self.settings
        frame = context.frame
        reserved = np.minimum(context.ran_need, topo.gpus)
        rate = context.rate_forecast * (1.0 + settings.rate_margin)
        group_rate = np.zeros((self.group_latency.shape[0], rate.shape[1]))
        np.add.at(group_rate, self.group, rate)
        latency = np.where(frame.site_up[None, :], self.group_latency, 1e6)
        previous = context.running.loaded if context.running.loaded.any() else None
        problem = PlacementProblem([str(g) for g in range(len(group_rate))], topo.sites, list(topo.services),
                                   group_rate, latency, np.where(frame.site_up, topo.gpus, 0.0),
                                   topo.gpu_memory_gb.astype(float),
                                   np.where(frame.site_up, reserved / np.maximum(topo.gpus, 1e-9), 0.0),
                                   max_utilisation=settings.max_utilisation, previous=previous)
        t = time.perf_counter()
        # Requests no site serves at the cap: where sites run cooler would reach them (a shorter response leaves
        # more of the SLO to the round trip), placed again with those caps; whichever serves better.
        problem, placement = place_cooler(problem, settings.min_utilisation)
        context.stages["ran.place"] = (time.perf_counter() - t) * 1000.0
        after = RanConfig(context.running.slice_shares, placement.share[self.group], placement.loaded.copy(),
                          placement.gpus_on.copy())
        target = RanPlacementTarget(rate, reserved, frame.site_up, settings.max_utilisation,
                                    problem.site_utilisation)
        report = verify_placement(topo, context.running, after, reserved, target)
        expected = float(placement.unserved(problem).sum()) / (1.0 + settings.rate_margin)
        self.planned_for = (context.ran_need, context.rate_forecast.sum(axis=0), frame.site_up.copy(), expected)
        if not report.ok:
            return None
        why = "RAN need, inference demand or site health moved"
        cooled = "" if problem.site_utilisation is None else ", ".join(
            f"{topo.sites[k]} {100 * problem.caps[k]:.0f} %"
            for k in np.flatnonzero(problem.caps < settings.max_utilisation - 1e-9))
        if cooled:
            why += f"; run cooler to reach requests no site serves at {100 * settings.max_utilisation:.0f} %: {cooled}"
        intent = placement_intent(topo, after, reserved, why=why)
        return Plan(intent, context.network, report, float(frame.unserved.sum()),
                    float(placement.unserved(problem).sum()),
                    f"inference placed on {int((placement.gpus_on > 0).sum())} sites, "
                    f"{int(placement.gpus_on.sum())} GPUs" + (f" ({cooled} utilisation cap)" if cooled else ""),
                    {"after": after, "reserved": reserved, "caps": problem.caps.copy()})


@dataclass
class RanTick:
    """What the RAN part did in a tick: decision time (ms), changes proposed, applied, rolled back."""

    minute: float
    decide_ms: float
    stages_ms: dict[str, float]
    proposed: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    refused: int = 0


class RanLoop:
    """The AI-RAN part of the loop over one topology, fed ``observe(frame)`` per tick."""

    def __init__(self, topology: RanTopology, network: Network, driver: SimulatedRanDriver, changes: ChangeStore,
                 settings: RanSettings | None = None) -> None:
        self.topology = topology
        self.network = network
        self.driver = driver
        self.changes = changes
        self.settings = settings = settings or RanSettings()
        self.forecast = RanForecast()
        self.slicing: Planner[RanContext] = SlicingPlanner(topology, settings)
        self.placement = PlacementPlanner(topology, settings)
        self.checking: list[tuple[str, str, dict[str, Any]]] = []  # (change id, intent kind, what it promised)
        self.waiting: dict[str, tuple[str, Plan]] = {}  # intent kind -> (change id, plan) a person may approve
        self.ticks: list[RanTick] = []

    def observe(self, frame: RanFrame) -> RanTick:
        tick = RanTick(frame.minute, 0.0, {})
        self._post_check(frame, tick)
        self._apply_approved(frame, tick)
        self.forecast.update(frame)
        started = time.perf_counter()
        prb, rate = self.forecast.forecast()
        # The RAN's need: every PRB the forecast asks for, within the cell, processed at its home site; a cell
        # that is down keeps its full PRBs reserved (it comes back at once, and its load with it).
        topo = self.topology
        scheduled = np.where(frame.cell_up, np.minimum(prb.sum(axis=1), topo.prbs), topo.prbs)
        need = topo.ran_gpus(scheduled) * (1.0 + self.settings.ran_margin)
        context = RanContext(frame, self.network, self.driver.running, self.driver.reserved, prb, rate, need,
                             tick.stages_ms)
        plans = []
        t = time.perf_counter()
        plan = self.slicing.plan(context)
        tick.stages_ms["ran.slicing"] = (time.perf_counter() - t) * 1000.0
        if plan is not None:
            plans.append(plan)
        if self.placement.wanted(context, waiting="place_inference" in self.waiting):
            t = time.perf_counter()
            plan = self.placement.plan(context)
            tick.stages_ms["ran.placement"] = (time.perf_counter() - t) * 1000.0
            if plan is not None:
                plans.append(plan)
            else:
                tick.refused += 1
        tick.decide_ms = (time.perf_counter() - started) * 1000.0
        for plan in plans:
            self._act(plan, frame, tick)
        self.ticks.append(tick)
        return tick

    def _act(self, plan: Plan, frame: RanFrame, tick: RanTick) -> None:
        """Propose, record verification; when policy approves, commit through the driver; else it waits for a
        person, superseding the proposal of its kind still waiting (a newer plan replaces it)."""
        intent = plan.intent
        earlier = self.waiting.pop(intent.intent, None)
        if earlier is not None and self.changes.get(earlier[0]).state == "verified":
            self.changes.reject(earlier[0], self.settings.actor, "superseded by a newer plan")
        running = self.driver.running
        reserved = plan.evidence.get("reserved")
        diff = ran_diff(self.topology, running, plan.evidence["after"], self.driver.reserved, reserved)
        change_id = self.changes.propose([intent.model_dump(mode="json")], self.settings.actor, plan.action, diff)
        tick.proposed.append(change_id)
        if self.changes.record_verification(change_id, plan.report.as_dict()) != "approved":
            self.waiting[intent.intent] = (change_id, plan)
            return
        self._commit(change_id, plan, frame, tick)

    def _apply_approved(self, frame: RanFrame, tick: RanTick) -> None:
        """Commit what a person approved since the last tick (the newest plan of its kind)."""
        for kind, (change_id, plan) in list(self.waiting.items()):
            state = self.changes.get(change_id).state
            if state == "approved":
                del self.waiting[kind]
                self._commit(change_id, plan, frame, tick)
            elif state != "verified":
                del self.waiting[kind]

    def _commit(self, change_id: str, plan: Plan, frame: RanFrame, tick: RanTick) -> None:
        intent = plan.intent
        self.changes.advance(change_id, "applying", self.settings.actor, {})
        try:
            self.driver.load_candidate(intent)
            self.driver.commit()
        except DriverError as exc:
            # Refused or failed on the way in (a serving engine's new replica failing its health check): the
            # driver kept what ran, so the change is rolled back as it stands.
            self.changes.advance(change_id, "rolled_back", self.settings.actor, {"apply": str(exc)})
            tick.rolled_back.append(change_id)
            return
        self.changes.advance(change_id, "checking", self.settings.actor, {})
        promise = {"unserved": plan.planned, "before_unserved": float(frame.unserved.sum())}
        self.checking.append((change_id, intent.intent, promise))
        tick.applied.append(change_id)

    def rollback_in_flight(self, actor: str, change_id: str, why: str = "") -> bool:
        """A person rolls back a RAN change committed but not yet post-checked (the driver still keeps what it
        replaced). False when ``change_id`` is not such a change."""
        for i, (checking_id, kind, _promise) in enumerate(self.checking):
            if checking_id == change_id and self.driver.pending(kind):
                self.driver.rollback(kind)
                del self.checking[i]
                self.changes.advance(change_id, "rolled_back", actor, {"why": why or "rolled back by a person",
                                                                       "how": "rollback"})
                return True
        return False

    def _post_check(self, frame: RanFrame, tick: RanTick) -> None:
        """Confirm what the last tick applied, or roll it back: a placement that left more requests unserved than
        before it and than it predicted (by 5 % of requests) or that the serving engine does not run as committed
        (``driver.check()``), or a slice split under which more than 1 % of cell-slices got less than their
        guarantee while the cell had the PRBs for it, and more than the split it replaced would have left so."""
        checking, self.checking = self.checking, []
        failed = False
        for change_id, kind, promise in checking:
            if not self.driver.pending(kind):  # the driver's confirm window passed: it put back what ran before
                self.changes.advance(change_id, "rolled_back", self.settings.actor,
                                     {"post_check": "reverted by the driver: its confirm window passed"})
                tick.rolled_back.append(change_id)
                continue
            if kind == "place_inference":
                offered = max(float(frame.cell_rate.sum()), 1e-9)
                unserved = float(frame.unserved.sum())
                failed = unserved > max(promise["unserved"], promise["before_unserved"]) + 0.05 * offered
                serving = self.driver.check()
                failed = failed or not serving.ok
                detail = (f"measured {unserved:.1f} req/s unserved (predicted {promise['unserved']:.1f}); "
                          f"{serving.detail}")
            else:
                topo = self.topology
                guaranteed = np.array([s.guaranteed_share for s in topo.slices])[None, :] * topo.prbs[:, None]
                need = np.minimum(frame.prb_demand, guaranteed)
                fits = frame.cell_up & (need.sum(axis=1) <= topo.prbs + 1e-9)
                starved = fits[:, None] & (frame.prb_grant < need - 1e-6) & \
                    (self.driver.running.slice_shares * topo.prbs[:, None] < need - 1e-6)
                # What the split it replaced would have left below the guarantee on the same demand: a burst
                # past both is the forecast's miss, not the change's doing, and rolling back would not help.
                replaced = self.driver.replaced(kind)
                before = starved if replaced is None else \
                    fits[:, None] & (replaced.slice_shares * topo.prbs[:, None] < need - 1e-6)
                failed = bool(starved.any() and starved.mean() > 0.01 and starved.sum() > before.sum())
                detail = (f"{int(starved.sum())} cell-slices below their guarantee "
                          f"(under the split it replaced: {int(before.sum())})")
            if failed:
                try:
                    self.driver.rollback(kind)
                except DriverError as exc:  # what it replaced did not come back: the change serves on; retry
                    self.checking.append((change_id, kind, promise))
                    self.changes.annotate(change_id, self.settings.actor, "rollback_failed", f"{detail}: {exc}")
                    continue
                self.changes.advance(change_id, "rolled_back", self.settings.actor, {"post_check": detail})
                tick.rolled_back.append(change_id)
            else:
                self.driver.confirm(kind)
                self.changes.advance(change_id, "done", self.settings.actor, {"post_check": detail})


class LiveRan(ABC):
    """The AI-RAN part of a live loop: a ``RanLoop`` over one topology, its changes in the live loop's
    ``ChangeStore`` (the same workflow, policy and audit as routing changes), fed each tick the RAN's telemetry
    (``next_frame``, from a subclass: the simulator in ``scenarios.live``). Keeps for the API the latest frame,
    the configuration and RAN reservation it ran under, the loop's tick and the wall time of each step (ms)."""

    def __init__(self, topology: RanTopology, network: Network, driver: SimulatedRanDriver, changes: ChangeStore,
                 settings: RanSettings | None = None, keep: int = 720) -> None:
        self.topology = topology
        self.driver = driver
        self.loop = RanLoop(topology, network, driver, changes, settings)
        self.latest: RanFrame | None = None
        self.ran_under: RanConfig | None = None
        self.reserved_under: np.ndarray | None = None
        self.latest_tick: RanTick | None = None
        self.step_ms: deque[float] = deque(maxlen=keep)

    @abstractmethod
    def next_frame(self, running: RanConfig) -> RanFrame:
        """The RAN's telemetry for this tick, under the configuration that runs."""

    def step(self) -> RanTick:
        """One tick: the RAN's telemetry, and the RAN loop observing it (post-check, approved changes, plans)."""
        began = time.perf_counter()
        running, reserved = self.driver.running, self.driver.reserved
        frame = self.next_frame(running)
        tick = self.loop.observe(frame)
        self.loop.ticks = self.loop.ticks[-1:]  # a live loop runs for days: the API reads the latest only
        self.latest, self.ran_under, self.reserved_under, self.latest_tick = frame, running, reserved, tick
        self.step_ms.append((time.perf_counter() - began) * 1000.0)
        return tick

    def rollback_in_flight(self, actor: str, change_id: str, why: str = "") -> bool:
        return self.loop.rollback_in_flight(actor, change_id, why)
