"""The closed loop: each telemetry tick is scored, incidents are localised on the twin, and congestion (now or
forecast) becomes a verified change that policy or a person approves before it is applied and checked. The
parts each do one job (``Watch``, ``Beliefs``, ``Estimate``, the planners, ``Actuator``, ``Records``); this
module runs them in order, tick after tick, and decides which runs when."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from netpilot.analytics.forecast import warm_up_forecasting
from netpilot.analytics.rca import Cause, Snapshot
from netpilot.autopilot.actuator import Actuator
from netpilot.autopilot.beliefs import Beliefs
from netpilot.autopilot.budget import TickBudget
from netpilot.autopilot.estimate import Estimate
from netpilot.autopilot.forecasting import LinkForecast
from netpilot.autopilot.planners import (
    ExplicitPathPlanner,
    IgpMetricPlanner,
    Plan,
    PlanContext,
    PlanMemory,
    Verifier,
    WithdrawPathsPlanner,
)
from netpilot.autopilot.records import Applied, Incident, Records, Tick, latency_summary
from netpilot.autopilot.settings import AutopilotSettings
from netpilot.autopilot.watch import Watch
from netpilot.change.drivers import NetworkDriver
from netpilot.change.intents import Intent, apply_intents
from netpilot.change.workflow import ChangeStore
from netpilot.errors import InputError
from netpilot.model.frame import KpiFrame
from netpilot.model.kernels import warm_up as warm_up_kernels
from netpilot.model.network import Network
from netpilot.model.twin import Expected, Twin

__all__ = ["Applied", "Autopilot", "Incident", "Tick", "latency_summary", "settle_heap"]


class Autopilot:
    """The loop around one network. Feed it ``observe(frame)`` per telemetry tick.

    ``driver`` is where changes go (the simulator, the twin, FRR); ``changes`` holds the workflow, and its
    policy decides which changes need a person. ``settings`` tunes every part (see ``AutopilotSettings``);
    ``options`` change single settings by their flat names (``congestion=0.8``, ``tick_budget_ms=None``).

    Each tick: the snapshot is kept (``Records``) and scored against what the twin expects now (``Watch``); a
    change being checked is confirmed or rolled back, and changes a person approved are applied
    (``Actuator``); an incident opens when enough KPIs jump, and its localisation runs a chunk at a time until
    its top cause can be believed (``Beliefs``); believed faults whose KPIs look healthy again are dropped; the
    busiest links are forecast. When the network is congested (now or forecast), the beliefs changed, or
    explicit paths run on a calm network, and the loop is idle (nothing being checked, localised or waiting
    for a person, past the cooldown, and something it planned on moved since the last fruitless decision), the
    estimate of the network at this tick (``Estimate``) goes to a planner, whose verified plan becomes a change.

    Each tick aims to finish within ``tick_budget_ms`` of its sample arriving (the decision latency). The
    forecast, the verification's baseline (every single failure of the network as it runs) and a decision run
    when they fit by their measured cost; one that does not fit waits for the next tick's sample and runs then
    whatever the budget. With ``tick_budget_ms=None`` a tick does a fixed amount of work instead, so the same
    telemetry always gives the same decisions (scenario replays, audits)."""

    def __init__(self, network: Network, changes: ChangeStore, driver: NetworkDriver,
                 settings: AutopilotSettings | None = None, **options: Any) -> None:
        settings = (settings or AutopilotSettings()).with_options(**options)
        if settings.planning.explicit_paths and not driver.capabilities().accepts("set_policies"):
            # Explicit paths are planned only for a network that takes them.
            settings = replace(settings, planning=replace(settings.planning, explicit_paths=False))
        self.settings = settings
        self.network = network
        self.changes = changes
        self.driver = driver
        self.link_ids = [lk.id for lk in network.links]
        self.records = Records(settings.keep)
        self.budget = TickBudget(settings.tick_budget_ms, settings.planning.plan_seconds)
        self.estimate = Estimate(network, settings.estimate, driver.running)
        self.beliefs = Beliefs(self.estimate)
        self.watch = Watch(network, settings.detection, self.records)
        self.forecaster = LinkForecast(settings.forecast, self.link_ids, settings.planning.congestion)
        self.actuator = Actuator(changes, driver, settings.actuator, self.records, settings.planning.congestion)
        self.memory = PlanMemory(self.estimate.arrays, settings.verification, lambda: self.estimate.margin)
        self.verifier = Verifier(settings.verification, self.estimate, self.budget)
        self.igp_planner = IgpMetricPlanner(settings.planning, self.verifier, self.budget, self.link_ids)
        self.paths_planner = ExplicitPathPlanner(self.verifier, self.budget, self.estimate)
        self.withdraw_planner = WithdrawPathsPlanner(settings.planning, self.verifier, self.estimate)
        self._count = 0
        self._believed_from: dict[str, list[Incident]] = {}  # a belief's key: the incidents it was adopted from
        self._replan = False  # the network the loop plans on changed: plan again, withdraw stale proposals
        self._forecast_due = False
        warm_up_forecasting()  # its first use imports its libraries (over a second): not inside a tick

    # --- what callers read --------------------------------------------------------------------------------------

    @property
    def twin(self) -> Twin:
        """The planner's twin (its clock is the telemetry's)."""
        return self.estimate.twin

    @property
    def actor(self) -> str:
        """Who the loop is in the audit log."""
        return self.settings.actuator.actor

    @property
    def congestion(self) -> float:
        """The utilisation above which the loop acts."""
        return self.settings.planning.congestion

    @property
    def forecast(self) -> dict[str, dict[str, Any]]:
        return self.forecaster.links

    @property
    def incidents(self) -> list[Incident]:
        return self.records.incidents

    @property
    def ticks(self) -> list[Tick]:
        return self.records.ticks

    @property
    def applied(self) -> list[Applied]:
        return self.records.applied

    @staticmethod
    def outcome(applied: Applied) -> dict[str, Any]:
        """Predicted beside measured MLU of an applied change (measured is None until its check)."""
        return applied.outcome()

    def believed_network(self) -> Network:
        """The running network as the loop believes it is (see ``Estimate.believed_network``)."""
        return self.estimate.believed_network(self.beliefs)

    def expected(self, minute: float) -> Expected:
        """The twin's noise-free state at ``minute`` under the believed faults, running what the network runs."""
        return self.estimate.twin_at(minute, list(self.beliefs.values()))[0]

    # --- the loop ---------------------------------------------------------------------------------------------

    def observe(self, frame: KpiFrame) -> Tick:
        started = time.perf_counter()
        with _ONE_BLAS_THREAD:  # about 25 µs, inside the tick's latency
            return self._observe(frame, started)

    def _observe(self, frame: KpiFrame, started: float) -> Tick:
        stages: dict[str, float] = {}
        n = self._count
        self._count += 1
        self.actuator.tick = n
        self._take_refuted()
        if n == 0:
            self.estimate.align_clocks(frame, self.watch.localizer.twin)
        ts = frame.ts.isoformat()
        values = Snapshot.from_step(frame).values
        up = frame.link_up
        self.records.keep(ts, values, np.where(up, frame.link_utilisation, 0.0))
        self.estimate.measure(frame)
        mlu = float(frame.link_utilisation[up].max(initial=0.0))
        stages["store"] = _ms(started)

        t = time.perf_counter()
        # A believed misconfiguration the frame no longer bears out is dropped before the frame is scored: where
        # the traffic goes is all it shows, so once it is put right, scoring against it would open an incident
        # of its own. Other beliefs are judged after the scoring: dropping one rebases the detectors on this
        # frame, and a fault that starts as another ends would be taken for the new normal.
        if self._expire(frame, held_metrics=True):
            self._beliefs_changed()
        if self.actuator.routing_changed:
            self.watch.routing_changed = True
            self.actuator.routing_changed = False
        expected = self.estimate.expected_values(frame, self.beliefs)
        scores, alarmed = self.watch.score(values, expected, n)
        if len(alarmed) >= self.settings.detection.min_alarms:
            alarmed = self._not_ending(frame, values, expected, alarmed)
        stages["detect"] = _ms(t)
        tick = Tick(ts, frame.minute, 0.0, mlu, len(alarmed))

        t = time.perf_counter()  # acting on changes (applying, checking) is not deciding: timed apart
        if self.actuator.check_due():
            checked = self.actuator.post_check(mlu)
            self._take_refuted()
            if checked.state == "rolled_back" and self.beliefs.give_up_inferred():
                self._replan = True
        if self.actuator.apply_approved(frame, float(self.records.utilisation[-1].max(initial=0.0)),
                                        lambda intents: self._reverify(intents, frame, n)):
            self.memory.no_plan = None
        self.actuator.act_ms = _ms(t)

        incident = self.watch.open_incident(frame, scores, alarmed, n)
        if incident is not None:
            tick.incident = incident.id
        deadline = self.budget.start(started)
        self._localise(frame, n, deadline, stages)
        if self._expire(frame, held_metrics=False):
            self._beliefs_changed()

        self._forecast_due |= n % self.settings.forecast.every == 0
        if self._forecast_due and self.budget.fits("forecast"):
            t = time.perf_counter()
            self.forecaster.update(self.records.utilisation)
            self._forecast_due = False
            stages["forecast"] = self.budget.spent("forecast", t)

        tick.change = self._plan(frame, n, mlu, stages)
        act_ms = self.actuator.act_ms
        if act_ms > 0.0:
            stages["act"] = act_ms
        tick.total_ms = _ms(started)
        tick.latency_ms = tick.total_ms - act_ms
        tick.stages_ms = stages
        self.records.ticks.append(tick)
        return tick

    def _localise(self, frame: KpiFrame, n: int, deadline: float | None, stages: dict[str, float]) -> None:
        """Start localising an incident once it has waited ``localise_after`` ticks, and advance the one under
        way by what the tick has left (a chunk of hypotheses at least); once it is done, believe its top cause (or one
        below a crowd the loads do not bear out: ``Beliefs.adopt_ranked``).
        The loop decides once it knows what it is deciding about."""
        watch = self.watch
        if watch.ready_to_localise(n):
            t = time.perf_counter()
            before = watch.start_localising(self._count, frame.minute, self.estimate.measured_capacity,
                                            self.estimate.arrays.capacity, self.estimate.running_metric(),
                                            list(self.beliefs.values()), self.driver.running().policies)
            if before is not None:
                self.beliefs.before_incident = before
            stages["localise"] = _ms(t)
        if watch.localising is not None:
            t = time.perf_counter()
            incident = watch.localising[0]
            chunks = self.settings.detection.localise_chunks if self.budget.fixed_work else None
            causes = watch.advance(frame, deadline=deadline, chunks=chunks)
            if causes:
                self._adopt(causes, frame, incident)
            stages["localise"] = stages.get("localise", 0.0) + _ms(t)

    def _plan(self, frame: KpiFrame, n: int, mlu: float, stages: dict[str, float]) -> str | None:
        """When the loop plans, and with which planner; the change proposed, if any."""
        planning = self.settings.planning
        forecast_peak = self.forecaster.peak()
        congested = mlu > planning.congestion or forecast_peak > planning.congestion
        if self._replan:
            self.actuator.supersede("superseded: the network changed "
                                    f"({', '.join(sorted(self.beliefs)) or 'faults cleared'})")
        idle = self.actuator.checking is None and self.watch.localising is None and \
            not self.actuator.waiting_for_person()
        # Explicit paths are a remedy for congestion, not a standing configuration: once the network is calm,
        # the loop offers to hand their pairs back to the IGP.
        calm_with_paths = bool(self.driver.running().policies) and \
            mlu <= planning.congestion - planning.withdraw_margin
        cooled = n - self.actuator.last_change_tick >= planning.cooldown_steps
        if not ((congested or self._replan or calm_with_paths) and idle and cooled and
                self.memory.worth_planning(self.beliefs.key(), mlu, self._replan, planning.replan_mlu, self._count,
                                           planning.retry_steps)):
            return None
        t = time.perf_counter()
        state = self.estimate.plan_state(frame, self.beliefs, (self.beliefs.key(), self.watch.last_onset,
                                                               self.records.localised()), n)
        believed = self.believed_network()
        # Verification compares with every single failure of the network as it runs; that baseline holds while
        # only the demand's level changes, so it is computed once (once per demand verified on: two with a
        # believed crowd), and the search gets what is left of the tick
        # (or the next tick). With a fixed amount of work per tick, the baseline takes a tick of its own: not one
        # that localised.
        fixed = self.budget.fixed_work
        ready = self.verifier.has_baseline(believed, state.volume, self.beliefs)
        if not ready and self.budget.fits("baseline") and (not fixed or "localise" not in stages):
            self.verifier.baseline(believed, state.volume, self.beliefs)
            stages["baseline"] = self.budget.spent("baseline", t)
            ready = not fixed  # with a fixed amount of work per tick, it is this tick's work
        search = None if fixed or not ready else self.budget.search_seconds()
        if not ready or (not fixed and search is None):
            return None
        t = time.perf_counter()
        acted_before = self.actuator.act_ms
        capacity = state.capacity
        context = PlanContext(frame, mlu, forecast_peak, search, state, believed, self.beliefs,
                              self.beliefs.key(), self._count, stages, self.memory,
                              lambda m, up: self.twin.link_loads(state.volume, m, up, keep=False) / capacity)
        if congested or self._replan:
            explicit = planning.explicit_paths and self.paths_planner.wanted(context)
            plan = (self.paths_planner if explicit else self.igp_planner).plan(context)
            self._replan = False
        else:
            plan = self.withdraw_planner.plan(context)
        change = self._propose(plan, context) if plan is not None else None
        stages["decide"] = _ms(t) - (self.actuator.act_ms - acted_before)
        return change

    def _propose(self, plan: Plan, context: PlanContext) -> str:
        """A verified plan becomes a change carrying its evidence: the alarms' ranked causes, the forecast, the
        predicted utilisation, the outcomes of the last changes."""
        incidents, mlu = self.records.incidents, context.mlu
        causes = [c for i in incidents[-1:] for c in i.causes[:3]]
        forecast = f"{context.forecast_peak:.2f} forecast" if self.forecaster.links else "no forecast yet"
        why = (f"MLU {mlu:.2f} now, {forecast} (limit {self.settings.planning.congestion:g}); {plan.action} "
               f"predict {plan.planned:.2f}" + (f"; believed faults: {', '.join(self.beliefs)}" if self.beliefs
                                                else ""))
        evidence = {"mlu": mlu, "forecast_peak": context.forecast_peak, "predicted_mlu": plan.planned,
                    "verification_demand_margin": self.estimate.margin, "planned_from_mlu": plan.now,
                    **plan.evidence, "causes": causes, "incident": incidents[-1].id if incidents else None,
                    "outcomes": [a.outcome() for a in self.records.applied[-3:]]}
        return self.actuator.propose(plan.intent, why, evidence, context.believed, plan.after, plan.report,
                                     context.frame, mlu, plan.planned)

    def _reverify(self, intents: list[Intent], frame: KpiFrame, n: int) -> dict[str, Any]:
        """An approved change verified again, on the network and the demand as they are now."""
        believed = self.believed_network()
        try:
            # A metric configured where a believed misconfiguration holds another is not what the routers run.
            after = self.estimate.keep_held(apply_intents(believed, intents), self.beliefs)
        except InputError as exc:
            return {"ok": False, "checks": [{"name": "applies", "ok": False, "detail": str(exc)}]}
        state = self.estimate.plan_state(frame, self.beliefs, (self.beliefs.key(), self.watch.last_onset,
                                                               self.records.localised()), n)
        mlu = float(self.records.utilisation[-1].max(initial=0.0))
        return self.verifier.verify_on(believed, after, state.volume, self.beliefs, mlu, self.forecaster.peak(),
                                       {}).as_dict()

    def _adopt(self, causes: list[Cause], frame: KpiFrame, incident: Incident) -> None:
        """Believe what a localisation found (``Beliefs.adopt_ranked``), noting the incident each new or resized
        belief came from: its end closes it. A belief given up (a change built on it failed) or cleared (a
        person's word) closes nothing, its fault was not seen to end: forgotten here, before adopting, so one
        adopted again starts a list of its own."""
        self._believed_from = {key: found for key, found in self._believed_from.items() if key in self.beliefs}
        held = dict(self.beliefs)
        if self.beliefs.adopt_ranked(causes, frame):
            self._beliefs_changed()
            for key, fault in self.beliefs.items():
                if held.get(key) is not fault:
                    self._believed_from.setdefault(key, []).append(incident)

    def _not_ending(self, frame: KpiFrame, values: np.ndarray, expected: np.ndarray, alarmed: np.ndarray
                    ) -> np.ndarray:
        """The alarms (KPI positions) that no believed fault ending on this frame explains. A fault that ends
        shows as its KPIs going back to what the twin expects without it: those alarms are its end, not a new
        incident (its belief is dropped after the localisation, or, one that holds a metric, at the next tick's
        start)."""
        ending = self.beliefs.ending_together(frame)
        if not ending:
            return alarmed
        others = {key: fault for key, fault in self.beliefs.items() if key not in ending}
        return self.watch.not_explained(alarmed, values, expected, self.estimate.expected_values(frame, others))

    def _expire(self, frame: KpiFrame, *, held_metrics: bool) -> bool:
        """``Beliefs.expire``; the incidents a dropped belief was adopted from are closed: its fault ended."""
        dropped = self.beliefs.expire(frame, held_metrics=held_metrics)
        for key in dropped:
            for incident in self._believed_from.pop(key, []):
                incident.closed_at = incident.closed_at or frame.ts.isoformat()
        return bool(dropped)

    def _beliefs_changed(self) -> None:
        self._replan = True
        self.watch.beliefs_changed = True
        self.memory.forget()  # failures named and plans refuted were for the network as believed before

    def _take_refuted(self) -> None:
        self.memory.refuted.update(self.actuator.refuted)
        self.actuator.refuted.clear()

    # --- a person's word --------------------------------------------------------------------------------------

    def rollback_in_flight(self, actor: str, change_id: str | None = None) -> str | None:
        """A person rolls back the change being checked (before the loop confirms it), when it is
        ``change_id`` (if given). Returns its id, None when there is nothing to roll back."""
        return self.actuator.rollback_in_flight(actor, change_id)

    def revert(self, change_id: str, actor: str, why: str) -> str:
        """A person reverts a change the loop applied and confirmed (commit-confirmed, kept once the driver runs
        exactly the old metrics and paths). The loop will not propose the same plan again under the same
        beliefs. Returns the change's state."""
        state = self.actuator.revert(change_id, actor, why, self.link_ids)
        self._take_refuted()
        return state


class _OneBlasThread:
    """Ticks run their linear algebra on one BLAS thread: it is small (the tomogravity solve, a few hundred links),
    and a second thread gains nothing there and fights the loop's own threads for the cores (on 2 cores a 10 ms
    solve took 400-550 ms one tick in four, Deltacom). The setting is the process's, and a server runs a replay's
    loop beside the live one in another thread, so the first tick in limits it and the last one out restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._controller: ThreadpoolController | None = None
        self._limit: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                if self._controller is None:  # made at the first tick, once BLAS's libraries are loaded
                    self._controller = ThreadpoolController()
                self._limit = self._controller.limit(limits=1, user_api="blas")
            self._inside += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._limit.restore_original_limits()
                self._limit = None


# The process's one BLAS setting, as one object: see _OneBlasThread.
_ONE_BLAS_THREAD = _OneBlasThread()


def settle_heap() -> None:
    """For a process that runs the loop, once it is set up: import and compile what the loop's first use would,
    and move everything alive by then (the libraries' modules and functions, the twins) out of the garbage
    collector's way, so a full collection no longer stalls a tick (by 100 ms, measured). It changes the whole
    process, so the program calls it (the CLI, the server, a benchmark), not the library."""
    warm_up_forecasting()
    warm_up_kernels()
    gc.collect()  # what is garbage already is freed, not frozen with the rest
    gc.freeze()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
