"""The closed loop: each telemetry tick is scored, incidents are localised on the twin, and congestion (now or
forecast) becomes a verified change that policy or a person approves before it is applied and checked."""

from __future__ import annotations

import gc
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import numpy as np
import scipy.optimize

from netpilot.analytics.detect import DetectorBank
from netpilot.analytics.forecast import Forecaster, warm_up_forecasting
from netpilot.analytics.rca import NOISE_FLOOR, Cause, Ranking, RootCauseLocalizer, Snapshot, feature_layout
from netpilot.analytics.tomography import tomogravity
from netpilot.autopilot.budget import TickBudget
from netpilot.change.actuate import approved_intents, begin_apply, still_verified
from netpilot.change.apply import rollback_change
from netpilot.change.drivers import DriverError, NetworkDriver
from netpilot.change.intents import ApplyMetrics, SetPolicies, apply_intents
from netpilot.change.verify import WhatIfCache, failure_allowance, verify_change
from netpilot.change.workflow import ChangeStore, WorkflowError, twin_diff
from netpilot.errors import InputError
from netpilot.model.kernels import warm_up as warm_up_kernels
from netpilot.model.network import Network, PathPolicy
from netpilot.model.policies import compile_policies, to_policies
from netpilot.optimize.te.igp import MAX_METRIC, bound_excess, reverse_links, search_metrics
from netpilot.optimize.te.tactical import plan_tactical
from netpilot.telemetry.sim.faults import Fault
from netpilot.telemetry.sim.simulator import Simulator, StepResult

#: Fault kinds the planner acts on once localised, and how the twin should believe them.
ACTIONABLE = ("link_down", "link_degrade", "router_down", "flash_crowd")
#: A flash crowd is believed only when its node's links measure at least this many times its usual traffic.
MIN_CROWD = 1.2


@dataclass
class Incident:
    """Several KPIs jumped at once; ``causes`` holds the ranked root causes once localised."""

    id: str
    detected_at: str
    minute: float
    alarms: list[str]
    causes: list[dict] = field(default_factory=list)
    localised_at: str | None = None


@dataclass
class Tick:
    """What one tick did and how long each stage took: ``latency_ms`` is the decision latency (sample in,
    verified proposal out), ``total_ms`` the whole tick, applying and checking changes (stage ``act``)
    included."""

    ts: str
    minute: float
    latency_ms: float
    mlu: float
    alarms: int
    incident: str | None = None
    change: str | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    total_ms: float = 0.0


@dataclass
class Applied:
    """A change the loop applied: what it predicted and what was measured afterwards (outcome accounting)."""

    change_id: str
    minute: float
    metric_before: np.ndarray = field(repr=False)
    metric_after: np.ndarray = field(repr=False)
    mlu_before: float
    predicted_mlu: float
    measured_mlu: float | None = None
    state: str = "checking"
    policies_before: list[PathPolicy] = field(default_factory=list, repr=False)
    policies_after: list[PathPolicy] = field(default_factory=list, repr=False)


class Autopilot:
    """The loop around one network. Feed it ``observe(step_result)`` per telemetry tick.

    ``driver`` is where changes go (the simulator, the twin, FRR); the loop plans and applies only the intent
    kinds its ``capabilities()`` take, commits with a ``commit_confirm`` window (None: no timer), and keeps a
    change once the measured MLU and the driver's forwarding ``check()`` agree with it. ``changes`` holds the
    workflow, and its policy decides which changes need a person. ``congestion`` is the utilisation above which the loop
    re-optimises IGP metrics; ``verify_limit`` is the utilisation verification refuses to create, now or
    under any single link failure (capacity, by default). Verification runs on the loop's demand estimate (the
    twin's profile corrected to the measured link loads by tomogravity every ``refit_every`` ticks) raised by
    ``demand_margin`` (more when a busy link measures more than the estimate predicts, up to double); and since
    link counts do not pin down every pair, a single failure that a plan moves and that stays over the limit
    must come out lower than today's by ``failure_tolerance`` (MLU) plus ``failure_share`` of today's. A plan
    that verification would refuse for overloading under named single failures is not proposed; the next tick
    plans against those failures too. When the metric search goes ``paths_after`` evaluations without a plan
    to propose, the loop turns to explicit paths (``explicit_paths``): an LP moves the pairs behind the
    hottest links onto paths of their own (SR-TE policies), on top of those the network already runs (at most
    64 pairs in all), verified the same way; once the MLU is ``withdraw_margin`` below ``congestion`` and would
    stay so on the IGP alone, it proposes withdrawing them. The twin keeps the telemetry's clock (the day's
    demand profile), takes each link's capacity as its counters report it (load over utilisation), and sizes a
    believed flash crowd from the measured loads; a crowd's pairs are verified with ``crowd_margin`` more.
    Everything the loop decides carries its evidence (alarms, ranked causes, the forecast, predicted
    utilisation) into the change's ``why`` and the audit log.

    Each tick aims to finish within ``tick_budget_ms`` of its sample arriving (the decision latency). A
    localisation replays its hypotheses a chunk at a time in what each tick leaves, over as many ticks as it
    needs, and the loop decides once it has finished. The forecast, the verification's baseline (every single
    failure of the network as it runs) and a decision run when they fit by their measured cost; one that does
    not fit waits for the next tick's sample and runs then whatever the budget, so none waits more than a tick.
    The plan search gets what the tick has left and goes on from its best so far on the next tick
    (``plan_evaluations`` and ``plan_seconds`` bound one tick's share); a plan found with too little of the tick
    left to verify it is verified on the next tick's sample. When a
    search stops improving without a plan to propose, the loop does not search again until something it plans
    on changes: its beliefs, the failures verification named, or the MLU by more than ``replan_mlu``.

    With ``tick_budget_ms=None`` a tick does a fixed amount of work instead, so the same telemetry always gives
    the same decisions (scenario replays, audits): ``localise_chunks`` chunks of hypotheses, a search of
    ``plan_routings`` routings on one tick and its verification on the next, and the verification's baseline
    on a tick of its own."""

    def __init__(self, network: Network, changes: ChangeStore, driver: NetworkDriver, *, congestion: float = 0.9,
                 verify_limit: float = 1.0, demand_margin: float = 0.1,
                 alarm_threshold: float = 10.0, min_alarms: int = 2, localise_after: int = 3,
                 baseline_steps: int = 15, quiet_steps: int = 10, plan_evaluations: int = 60,
                 plan_seconds: float = 0.08, verify_failures: bool = True, cooldown_steps: int = 5,
                 tick_budget_ms: float | None = 100.0, plan_routings: int = 20, paths_after: int = 5,
                 localise_chunks: int = 2,
                 replan_mlu: float = 0.03, refit_every: int = 15, failure_tolerance: float = 0.005,
                 failure_share: float = 0.01,
                 explicit_paths: bool = True, withdraw_margin: float = 0.15, crowd_margin: float = 0.2,
                 check_after: int = 2, forecast_every: int = 5, forecast_horizon: int = 15,
                 actor: str = "autopilot", keep: int = 720, commit_confirm: float | None = None) -> None:
        self.network = network
        self.changes = changes
        self.driver = driver
        self.congestion = congestion
        self.verify_limit = verify_limit
        self.demand_margin = demand_margin
        self.alarm_threshold = alarm_threshold
        self.min_alarms = min_alarms
        self.localise_after = localise_after
        self.baseline_steps = baseline_steps
        self.quiet_steps = quiet_steps
        self.plan_evaluations = plan_evaluations
        self.replan_mlu = replan_mlu
        self.refit_every = refit_every
        self.failure_tolerance = failure_tolerance
        self.failure_share = failure_share
        # Explicit paths are planned only for a network that takes them.
        self.explicit_paths = explicit_paths and driver.capabilities().accepts("set_policies")
        self.commit_confirm = commit_confirm
        self.withdraw_margin = withdraw_margin
        self.crowd_margin = crowd_margin
        self.plan_routings = plan_routings
        self.paths_after = paths_after
        self.localise_chunks = localise_chunks
        self.verify_failures = verify_failures
        self.cooldown_steps = cooldown_steps
        self.check_after = check_after
        self.forecast_every = forecast_every
        self.forecast_horizon = forecast_horizon
        self.actor = actor

        self.localizer = RootCauseLocalizer(network)
        self.twin = Simulator(network, noise=0.0)  # the planner's view of the network, faults as believed
        self.arrays = network.arrays()
        self.partner = reverse_links(self.arrays)
        entities, names = feature_layout(self.localizer.simulator)
        self.feature_names = [f"{e}|{n}" for e, n in zip(entities, names, strict=True)]
        self._link_states = np.flatnonzero(np.array(names) == "link_up")  # snapshot positions, in link order
        self.noise_floor = np.array([NOISE_FLOOR[n] for n in names])
        self.detectors = DetectorBank(len(names), level_alpha=0.05, warmup=10, peak_window=60)
        self._load_kpis = np.array([i for i, name in enumerate(names) if not name.endswith("_up")], dtype=np.int64)
        self._rebase = False  # the next tick follows a routing change the loop made
        self._rebase_detectors = False  # the next tick follows a change of beliefs
        self.link_ids = [lk.id for lk in network.links]

        self.snapshots: deque[np.ndarray] = deque(maxlen=keep)
        self.times: deque[str] = deque(maxlen=keep)
        self.utilisation: deque[np.ndarray] = deque(maxlen=keep)
        self.ticks: list[Tick] = []
        self.incidents: list[Incident] = []
        self.applied: list[Applied] = []
        self.beliefs: dict[str, Fault] = {}
        self.forecast: dict[str, dict] = {}
        self._open: tuple[Incident, int] | None = None  # incident waiting to be localised, its onset tick
        self._localising: tuple[Incident, Ranking | None] | None = None  # the localisation under way
        self._last_onset = -10**9
        self._last_change_tick = -10**9
        self._checking: tuple[Applied, int] | None = None
        self._replan = False
        self._critical: dict[str, np.ndarray] = {}  # single failures verification refused a plan for
        self._margin = demand_margin  # the demand margin verification uses now (grows when the estimate is off)
        self._failed_plans: set[bytes] = set()  # metrics the post-check rolled back, under the current beliefs
        self._not_applicable: set[str] = set()  # approved changes this network cannot take
        self._no_plan: tuple | None = None  # what the last decision that found nothing planned on
        self._paths_for: tuple | None = None  # the beliefs and metrics under which the search found no metrics
        # The best metrics found so far under the current beliefs and named failures, and what they were for:
        # the search goes on from them on the next tick, so it is spread over ticks, not done again.
        self._incumbent: tuple[tuple, np.ndarray] | None = None
        self._candidate: tuple[tuple, np.ndarray] | None = None  # a plan to verify on the next tick
        self._paths_candidate: tuple | None = None  # the same, for explicit paths
        self._stale = 0  # evaluations the search has gone without improving
        self.budget = TickBudget(tick_budget_ms, plan_seconds)
        self._forecast_due = False
        self._whatif_cache = WhatIfCache()
        self._before_incident: tuple | None = None  # link loads, links up, minute: before the incident localised
        self._crowd_usual: dict[str, float] = {}  # a believed crowd's node's level before it, in the same terms
        self._correction: tuple[tuple, int, np.ndarray] | None = None  # (for what, fitted at tick, per pair)
        self._count = 0
        self._act_ms = 0.0  # this tick's time spent applying and checking changes
        self._routing_since = 0  # the first tick measured under the routing running now
        self._measured_up = np.ones(self.arrays.n_links, dtype=bool)  # links up in the latest sample
        self._measured_capacity = np.full(self.arrays.n_links, np.nan)  # what it reports they carry at most
        self._metric_of: tuple[Network, np.ndarray] | None = None  # the running network and its metrics
        warm_up_forecasting()  # its first use imports its libraries (over a second): not inside a tick

    # --- the loop ---------------------------------------------------------------------------------------------

    def observe(self, result: StepResult) -> Tick:
        started = time.perf_counter()
        stages: dict[str, float] = {}
        n = self._count
        self._count += 1
        if n == 0:
            self._align_clocks(result)
        ts = result.ts.isoformat()
        values = Snapshot.from_step(result).values
        self.snapshots.append(values)
        self.times.append(ts)
        up = result.link_up
        self._measured_up = up
        self._measured_capacity = _measured_capacity(result)
        self.utilisation.append(np.where(up, result.link_utilisation, 0.0))
        mlu = float(result.link_utilisation[up].max(initial=0.0))
        stages["store"] = _ms(started)

        t = time.perf_counter()
        # Load-driven KPIs are scored against what the twin expects now (the day's ramp, the faults the loop
        # knows of, the routing it runs), so a busy hour coming on is not read as a fault; states are scored
        # as measured.
        scored = values.copy()
        scored[self._load_kpis] -= self._expected_values(result)[self._load_kpis]
        if self._rebase or self._rebase_detectors:
            # The routing or the beliefs changed because of the loop: what the twin expects moves for a known
            # reason, so the detectors of load-driven KPIs start from the new level. State flips are still scored.
            self.detectors.rebase(self._load_kpis, scored[self._load_kpis])
            if self._rebase:
                self._routing_since = n
            self._rebase = self._rebase_detectors = False
        scores = self.detectors.update(scored)
        alarmed = np.flatnonzero(scores >= self.alarm_threshold)
        stages["detect"] = _ms(t)
        tick = Tick(ts, result.minute, 0.0, mlu, len(alarmed))

        t = time.perf_counter()  # acting on changes (applying, checking) is not deciding: timed apart
        if self._checking is not None and n >= self._checking[1]:
            self._post_check(result, mlu)
        self._apply_approved(result)
        self._act_ms = _ms(t)

        # A new incident waits out the quiet period after the last one, unless something changed state (a link
        # or router went down) that the last incident did not already show: a state flip is never noise, and
        # a fault must not hide behind the churn of an earlier one or of the loop's own change.
        recent = set(self.incidents[-1].alarms) if self.incidents else set()
        flipped = [i for i in alarmed if self.feature_names[i].endswith("_up") and self.feature_names[i] not in recent]
        # Until a baseline has been seen, a jump cannot be told from the day's ramp, nor localised.
        settled = n >= self.baseline_steps
        # Nor must a fault hide behind a small incident just before it (a couple of KPIs over the threshold):
        # many more KPIs alarming, and other ones, is a new incident; the small one, if not yet localised, is
        # localised as part of it.
        fresh = sum(self.feature_names[i] not in recent for i in alarmed)
        escalated = len(recent) <= self.min_alarms + 1 and fresh >= 3 * max(len(recent), 1) and \
            n - self._last_onset > 1
        if settled and len(alarmed) >= self.min_alarms and \
                (n - self._last_onset > self.quiet_steps or flipped or escalated):
            ranked = alarmed[np.argsort(-scores[alarmed])]
            shown = list(dict.fromkeys([self.feature_names[i] for i in flipped] +
                                       [self.feature_names[i] for i in ranked]))[:10]
            incident = Incident(f"I{len(self.incidents) + 1}", ts, result.minute, shown)
            self.incidents.append(incident)
            self._open = (incident, n)
            self._last_onset = n
            tick.incident = incident.id
        deadline = self.budget.start(started)
        # One localisation at a time: a new incident waits for the one under way (its onset is kept, so its
        # before and after are still measured around it), rather than a tick finishing the other at once.
        if self._open is not None and n - self._open[1] >= self.localise_after - 1 and self._localising is None:
            t = time.perf_counter()
            self._localising = (self._open[0], self._start_localising(*self._open, result.minute))
            self._open = None
            stages["localise"] = _ms(t)
        if self._localising is not None:
            # The localisation takes what the tick has left, a chunk of hypotheses at least; the rest waits for
            # the next tick. The loop decides once it knows what it is deciding about.
            t = time.perf_counter()
            self._conclude(*self._localising, result, deadline=deadline,
                           chunks=self.localise_chunks if self.budget.fixed_work else None)
            stages["localise"] = stages.get("localise", 0.0) + _ms(t)
        self._expire_beliefs(result)

        self._forecast_due |= n % self.forecast_every == 0
        if self._forecast_due and self.budget.fits("forecast"):
            t = time.perf_counter()
            self._forecast()
            self._forecast_due = False
            stages["forecast"] = self.budget.spent("forecast", t)

        forecast_peak = max((f["peak"] for f in self.forecast.values()), default=0.0)
        congested = mlu > self.congestion or forecast_peak > self.congestion
        if self._replan:
            self._supersede(f"superseded: the network changed ({', '.join(sorted(self.beliefs)) or 'faults cleared'})")
        idle = self._checking is None and self._localising is None and not self._waiting_for_person()
        # Explicit paths are a remedy for congestion, not a standing configuration: once the network is calm,
        # the loop offers to hand their pairs back to the IGP.
        calm_with_paths = bool(self.driver.running().policies) and mlu <= self.congestion - self.withdraw_margin
        if (congested or self._replan or calm_with_paths) and idle and \
                n - self._last_change_tick >= self.cooldown_steps and self._worth_planning(mlu):
            t = time.perf_counter()
            plan_state = self._plan_state(result)
            believed = self.believed_network()
            demand = (self.twin.pairs, self._verification_volume(plan_state[0]))
            # Verification compares with every single failure of the network as it runs; that baseline holds
            # while only the demand's level changes, so it is computed once, and the search gets what is left
            # of the tick (or the next tick).
            ready = self._whatif_cache.has(believed, *demand)
            # With a fixed amount of work per tick, the baseline takes a tick of its own: not one that localised.
            if not ready and self.budget.fits("baseline") and (not self.budget.fixed_work or "localise" not in stages):
                self._whatif_cache.baseline(believed, *demand)
                stages["baseline"] = self.budget.spent("baseline", t)
                ready = not self.budget.fixed_work  # with a fixed amount of work per tick, it is this tick's work
            search = None if self.budget.fixed_work or not ready else self.budget.search_seconds()
            if ready and (self.budget.fixed_work or search is not None):
                t = time.perf_counter()
                acted_before = self._act_ms
                if congested or self._replan:
                    tick.change = self._decide(result, mlu, forecast_peak, search, plan_state, believed, stages)
                    self._replan = False
                else:
                    tick.change = self._withdraw_paths(result, mlu, forecast_peak, plan_state, believed, stages)
                stages["decide"] = _ms(t) - (self._act_ms - acted_before)
        if self._act_ms > 0.0:
            stages["act"] = self._act_ms
        tick.total_ms = _ms(started)
        tick.latency_ms = tick.total_ms - self._act_ms
        tick.stages_ms = stages
        self.ticks.append(tick)
        return tick

    def _align_clocks(self, result: StepResult) -> None:
        """The twins' minute 0 set to the telemetry's, so a minute is the same time of day to both: the
        twins' demand follows the day's profile, and a twin hours off the network's clock expects the night's
        load in the busy hour (a level the demand scaling cannot always make up, and a wrong one where it does
        not reach)."""
        start = result.ts - timedelta(minutes=result.minute)
        self.twin.start = start
        self.localizer.simulator.start = start

    def _expected_values(self, result: StepResult) -> np.ndarray:
        """The snapshot the twin expects at this tick: believed faults, running metrics, its demand scaled to
        the load measured on the links both see up."""
        expected, metric = self._twin_at(result.minute)
        predicted = self.twin.link_loads(expected.volume, metric, expected.link_up)
        scale = _load_ratio(result, predicted, result.link_up & expected.link_up)
        replayed = self.twin.replay([self.twin.faults], scale=float(np.clip(scale, 0.25, 4.0)))[0]
        return Snapshot.from_step(replayed).values

    def _twin_at(self, minute: float, faults: list[Fault] | None = None) -> tuple:
        """The twin's noise-free state at ``minute`` under ``faults`` (the believed ones by default), running
        what the network runs: (expected state, running metrics)."""
        metric = self._running_metric()
        self.twin.faults = list(self.beliefs.values()) if faults is None else faults
        self.twin.minute = minute
        return self.twin.expected(), metric

    def _running_metric(self) -> np.ndarray:
        """The IGP metrics the network runs, read once per running configuration (``arrays()`` is not free);
        the twin takes them and the explicit path policies at the same time."""
        running = self.driver.running()
        if self._metric_of is None or self._metric_of[0] is not running:
            self._metric_of = (running, running.arrays().metric)
            self.twin.set_metrics(self._metric_of[1])
            self.twin.set_policies(running.policies)
        return self._metric_of[1]

    def _worth_planning(self, mlu: float) -> bool:
        """False while nothing the last fruitless decision planned on has changed."""
        if self._no_plan is None or self._replan:
            return True
        beliefs, critical, then = self._no_plan
        if beliefs != sorted(self.beliefs) or critical != len(self._critical) or abs(mlu - then) > self.replan_mlu:
            self._no_plan = None
            return True
        return False

    # --- localisation and beliefs -----------------------------------------------------------------------------

    def _start_localising(self, incident: Incident, onset: int, minute: float) -> Ranking | None:
        history = np.array(self.snapshots)
        ahead = self._count - onset  # snapshots from the onset on
        # The healthy state is measured under the routing running now where there is enough of it: loads that
        # moved because the loop changed the routing are not the incident's doing.
        settled = onset - self._routing_since
        steps = min(self.baseline_steps, settled) if settled >= 3 else self.baseline_steps
        before = history[-ahead - steps:-ahead]
        after = history[-ahead:]
        if len(before) < 3:
            return None
        noise = np.maximum(np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2), self.noise_floor)
        # The link loads before the incident, for sizing a crowd against them rather than against the twin's
        # demand alone (whose error at one node is of the size of a small crowd).
        utilisation = np.median(np.array(self.utilisation)[-ahead - steps:-ahead], axis=0)
        capacity = np.where(np.isfinite(self._measured_capacity), self._measured_capacity, self.arrays.capacity)
        up = np.median(before[:, self._link_states], axis=0) > 0.5
        elapsed = (datetime.fromisoformat(self.times[-1]) -
                   datetime.fromisoformat(self.times[-ahead - steps // 2 - 1])).total_seconds() / 60.0
        self._before_incident = (utilisation * capacity, up, minute - elapsed)
        return self.localizer.start(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                    minute=minute, noise=noise,
                                    metrics=self._running_metric(), known=list(self.beliefs.values()),
                                    policies=self.driver.running().policies)

    def _conclude(self, incident: Incident, ranking: Ranking | None, result: StepResult, *,
                  deadline: float | None, chunks: int | None) -> None:
        """Advance the localisation until ``deadline`` or by ``chunks``; once every hypothesis is scored, rank and
        believe."""
        if ranking is not None and not ranking.advance(deadline, max_chunks=chunks):
            return
        self._localising = None
        causes = ranking.result(10) if ranking is not None else []
        incident.causes = [asdict(c) for c in causes]
        incident.localised_at = result.ts.isoformat()
        if causes and causes[0].kind in ACTIONABLE and causes[0].score >= 0.5:
            self._believe(causes[0], result)

    def _believe(self, cause: Cause, result: StepResult) -> None:
        target: str | list[str] = cause.target.split("--") if "--" in cause.target else cause.target
        params: dict[str, float] = {}
        if cause.kind == "flash_crowd":
            # As large as the links measure it (the localiser's hypothesis is of a fixed size); not at all
            # where they do not bear it out.
            now = self._crowd_multiplier(cause.target, result.link_load, result.link_up, result.minute)
            usual = self._crowd_multiplier(cause.target, *self._before_incident) \
                if self._before_incident is not None else 1.0
            params["multiplier"] = now / usual if usual > 0 else now
            self._crowd_usual[f"{cause.kind}:{cause.target}"] = usual
            if params["multiplier"] < MIN_CROWD:
                return
        params |= {"loss": 0.02, "capacity_factor": 0.5} if cause.kind == "link_degrade" else {}
        # Believed from the minute it was localised: a crowd's hour counts from then.
        self.beliefs[f"{cause.kind}:{cause.target}"] = Fault(kind=cause.kind, target=target, at_minute=result.minute,
                                                             **params)
        self._replan = True
        self._rebase_detectors = True
        self._failed_plans.clear()
        self._critical.clear()  # named for the network as it was believed before

    def _expire_beliefs(self, result: StepResult) -> None:
        """A believed fault is dropped once its own KPIs look healthy again (a flash crowd after its hour)."""
        index = self.arrays.index
        for key, fault in list(self.beliefs.items()):
            healthy = False
            if fault.kind in ("link_down", "link_degrade"):
                links = self.twin.links_of(fault)
                healthy = bool(result.link_up[links].all()) if fault.kind == "link_down" else \
                    bool((result.link_loss[links] < 0.005).all())
            elif fault.kind == "router_down":
                healthy = bool(result.node_up[index[fault.target]])
            elif fault.kind == "flash_crowd":
                healthy = result.minute - fault.at_minute > 60 or not self._crowd_evident(fault, result)
            if healthy:
                del self.beliefs[key]
                self._replan = True
                self._rebase_detectors = True
                self._failed_plans.clear()
                self._critical.clear()

    def _crowd_evident(self, crowd: Fault, result: StepResult) -> bool:
        """Whether the crowd is still there: at least half the surplus believed (a crowd is an inference about
        demand, kept only while the measurements bear it out; a busy hour's ramp can look like one for a few
        minutes)."""
        usual = self._crowd_usual.get(f"flash_crowd:{crowd.target}", 1.0)
        now = self._crowd_multiplier(crowd.target, result.link_load, result.link_up, result.minute)
        return now >= usual * (1.0 + 0.5 * (crowd.multiplier - 1.0))

    def _region(self, target: str) -> np.ndarray:
        """The nodes a crowd at ``target`` covers, as the twin models one: the node, and a router's cell sites."""
        index = self.arrays.index[target]
        region = np.zeros(self.arrays.n_nodes, dtype=bool)
        region[index] = True
        if self.network.nodes[index].kind == "router":
            cells = np.array([n.kind == "cell_site" for n in self.network.nodes])
            region[self.arrays.dst[(self.arrays.src == index) & cells[self.arrays.dst]]] = True
        return region

    def _crowd_multiplier(self, target: str, loads: np.ndarray, up: np.ndarray, minute: float) -> float:
        """How many times its usual traffic the region at ``target`` (a node, and a router's cell sites, as
        the twin models a crowd) exchanges with the rest, from the measured link loads: loads are linear in
        demand, so they are fitted as the twin's loads of the pairs with one end in the region times one level,
        plus the rest's times another, and the multiplier is the ratio of the two levels."""
        region = self._region(target)
        expected, metric = self._twin_at(minute, [f for f in self.beliefs.values() if f.kind != "flash_crowd"])
        up = expected.link_up & up
        own = region[self.twin.pairs[:, 0]] ^ region[self.twin.pairs[:, 1]]
        inside = region[self.twin.pairs[:, 0]] & region[self.twin.pairs[:, 1]]
        basis = np.column_stack([self.twin.link_loads(np.where(own, expected.volume, 0.0), metric, up),
                                 self.twin.link_loads(np.where(own | inside, 0.0, expected.volume), metric, up)])[up]
        if not basis[:, 0].any() or not basis[:, 1].any():
            return 1.0
        levels, _ = scipy.optimize.nnls(basis, loads[up])
        return float(np.clip(levels[0] / levels[1], 0.0, 10.0)) if levels[1] > 0 else 1.0

    # --- forecast ---------------------------------------------------------------------------------------------

    def _forecast(self) -> None:
        """Utilisation of the busiest links, ``forecast_horizon`` steps ahead, with 80 % intervals."""
        if len(self.utilisation) < 30:
            return
        history = np.array(self.utilisation)[-240:]
        busiest = np.argsort(-history[-1])[:5]
        forecaster = Forecaster(self.forecast_horizon, models=("naive", "window_average"), levels=(80,),
                                backtest_windows=2)
        series = [history[:, e] for e in busiest]
        try:
            result = forecaster.fit(series).predict(series)
        except Exception:  # too little history for the backtest: no forecast this time
            return
        self.forecast = {self.link_ids[e]: {"mean": result.mean[i].tolist(), "lower": result.lower[80][i].tolist(),
                                            "upper": result.upper[80][i].tolist(), "model": result.model[i],
                                            "peak": float(result.mean[i].max()),
                                            "p_congested": float(result.exceedance_probability(self.congestion)[i]
                                                                 .max())}
                         for i, e in enumerate(busiest)}

    # --- decide, verify, apply, check --------------------------------------------------------------------------

    def _plan_state(self, result: StepResult):
        """The twin under the believed faults at this minute, its demand per pair corrected to what the measured
        link loads imply, and scaled to the measured total load."""
        expected, metric = self._twin_at(result.minute)
        expected.link_up = expected.link_up & result.link_up  # a link measured down is down, believed or not
        expected.capacity = self._capacity_of(expected)
        expected.volume = expected.volume * self._demand_correction(result, expected, metric)
        predicted = self.twin.link_loads(expected.volume, metric, expected.link_up)
        measured = float(result.link_load[result.link_up].sum())
        scale = measured / max(float(predicted[expected.link_up].sum()), 1e-9)
        volume = expected.volume * float(np.clip(scale, 0.25, 4.0))
        capacity = np.where(expected.capacity > 0, expected.capacity, np.inf)
        # Where the estimate under-predicts a busy link's measured load, verification must not trust it more
        # than that: the margin grows to cover the worst under-prediction (a crowd the loop has not localised).
        estimate = predicted * (volume.sum() / max(expected.volume.sum(), 1e-9))
        busy = result.link_up & (result.link_utilisation > 0.5) & (estimate > 0)
        shortfall = float((result.link_load[busy] / estimate[busy]).max(initial=1.0)) - 1.0
        self._margin = float(np.clip(shortfall, self.demand_margin, 1.0))
        return volume, expected.link_up, capacity, metric

    def _demand_correction(self, result: StepResult, expected, metric: np.ndarray) -> np.ndarray:
        """Per pair, the measured demand over the twin's (tomogravity on the measured link loads), refitted every
        ``refit_every`` ticks, and when the beliefs, the metrics or the policies change or an incident begins or
        is localised (the demand may have changed shape). Between fits only the level moves, so the verification's
        baseline stays valid (it scales)."""
        localised = sum(i.localised_at is not None for i in self.incidents)
        key = (tuple(sorted(self.beliefs)), _plan_key(metric, self.driver.running().policies), self._last_onset,
               localised)
        n = self._count - 1
        if self._correction is not None and self._correction[0] == key and \
                n - self._correction[1] < self.refit_every:
            return self._correction[2]
        measured = result.link_up & expected.link_up
        matrix = self.twin.routing_matrix(metric, expected.link_up)[measured]
        prior = expected.volume * float(result.link_load[measured].sum()) / \
            max(float((matrix @ expected.volume).sum()), 1e-9)
        fitted = tomogravity(matrix, result.link_load[measured], prior)
        correction = np.where(prior > 0, fitted / np.where(prior > 0, prior, 1.0), 1.0)
        self._correction = (key, n, correction)
        return correction

    def _decide(self, result: StepResult, mlu: float, forecast_peak: float, search_seconds: float | None,
                plan_state, believed: Network, stages: dict[str, float]) -> str | None:
        volume, link_up, capacity, metric = plan_state

        start = metric.copy()
        for fault in self.beliefs.values():  # drain degraded links before anything else
            if fault.kind == "link_degrade":
                start[self.twin.links_of(fault)] = MAX_METRIC
        # Failures verification refused earlier plans for are planned against too, under verification's own
        # rule: the plan minimises today's MLU among plans that leave each of them within the limit or lower
        # than it is today by the tolerance (or exactly as it is).
        cases = [link_up] + [link_up & ~mask for mask in self._critical.values()]
        routed: dict[bytes, np.ndarray] = {}  # metrics -> utilisation per case: each plan is routed once

        def utilisation_of(m: np.ndarray) -> np.ndarray:
            key = m.tobytes()
            if key not in routed:
                routed[key] = np.array([self.twin.link_loads(volume, m, up) / capacity for up in cases])
            return routed[key]

        now = float(utilisation_of(metric)[0].max(initial=0.0))
        # Verification's demand carries the margin; the search's does not, so the limit comes down instead.
        today = utilisation_of(metric)[1:].max(axis=1, initial=0.0)
        bounds = (failure_allowance(today, self.verify_limit / (1.0 + self._margin), self.failure_tolerance,
                                    self.failure_share), today)

        if self.explicit_paths and self._paths_for == (tuple(sorted(self.beliefs)), metric.tobytes()):
            return self._decide_paths(result, mlu, forecast_peak, plan_state, believed, stages, now, cases, bounds)
        planning_for = (tuple(sorted(self.beliefs)), len(self._critical), metric.tobytes())
        carried = [self._incumbent[1]] if self._incumbent is not None and self._incumbent[0] == planning_for else []
        candidate, self._candidate = self._candidate, None
        evaluations = 0
        if candidate is not None and candidate[0] == planning_for:
            best = candidate[1]  # found last tick with no time left to verify it: verified now, on this sample
        else:
            t = time.perf_counter()
            # A fixed amount of work (``plan_routings`` routings) without a budget in time, else what the tick has.
            budget = self.plan_evaluations if search_seconds is not None else \
                max(3, self.plan_routings // len(cases))
            best, evaluations = search_metrics(utilisation_of, [start, metric, *carried], partner=self.partner,
                                               frozen=~link_up, max_evaluations=budget,
                                               time_limit=search_seconds, seed=self._count, bounds=bounds)
            stages["decide.search"] = _ms(t)
        planned = float(utilisation_of(best)[0].max(initial=0.0))
        changed = np.flatnonzero(best != metric)
        # A plan that still breaks the rule under a failure verification has named would only be refused.
        failed_before = _plan_key(best, believed.policies) in self._failed_plans
        if not len(changed) or planned > now - 0.02 or failed_before or \
                bound_excess(utilisation_of(best), *bounds).any():
            progressed = not carried or not np.array_equal(best, carried[0])
            self._incumbent = (planning_for, best)
            # A search spread over ticks gives up once it has gone a whole search's worth of evaluations
            # without improving, or ``paths_after`` when explicit paths for the pairs behind the hot links are
            # the next resort (a faster remedy than more of a search that has stalled).
            self._stale = 0 if progressed else self._stale + evaluations
            give_up = self.paths_after if self.explicit_paths else self.plan_evaluations
            if self._stale >= give_up or failed_before:
                if self.explicit_paths:
                    self._paths_for = (tuple(sorted(self.beliefs)), metric.tobytes())
                else:
                    self._no_plan = (sorted(self.beliefs), len(self._critical), mlu)
                self._stale = 0
            return None  # nothing better, or a plan the network already showed to be wrong
        self._incumbent = (planning_for, best)
        if evaluations and not self.budget.room_to_verify():
            self._candidate = (planning_for, best)
            return None
        intent = ApplyMetrics(intent="apply_metrics", metrics={self.link_ids[e]: int(best[e]) for e in changed})
        after = apply_intents(believed, [intent])
        report = self._verify(believed, after, volume, mlu, forecast_peak, stages)
        if not report.ok and self._remember_critical(report):
            # Overloaded under failures the search did not plan for: the next tick plans against them. The
            # refused plan is not proposed (a person would only be asked to reject it).
            return None
        return self._propose(intent, believed, after, report, result, mlu, forecast_peak, now, planned,
                             f"re-optimised IGP metrics on {len(changed)} links", {"evaluations": evaluations})

    def _decide_paths(self, result: StepResult, mlu: float, forecast_peak: float, plan_state, believed: Network,
                      stages: dict[str, float], now: float, cases: list[np.ndarray], bounds) -> str | None:
        """Explicit paths for the pairs behind the hottest links (tactical TE), where no IGP metrics the search
        found would do: one LP, verified like any change (on the next tick's sample when the LP leaves too
        little of this one); failures verification names are planned against on the next tick. The plan
        replaces every policy the network runs (the LP routes all other pairs on the IGP)."""
        volume, link_up, capacity, metric = plan_state
        planning_for = (tuple(sorted(self.beliefs)), len(self._critical), metric.tobytes())
        pending, self._paths_candidate = self._paths_candidate, None
        if pending is not None and pending[0] == planning_for:
            plan = pending[1]
        else:
            t = time.perf_counter()
            plan = plan_tactical(self.arrays, self.twin.pairs, volume, metric, link_up, capacity, cases=cases[1:],
                                 allowed=bounds[0], current=compile_policies(self.arrays, believed.policies),
                                 igp_matrix=lambda up: self.twin.igp_routing_matrix(metric, up))
            stages["decide.paths"] = _ms(t)
            if plan is not None and not self.budget.room_to_verify():
                self._paths_candidate = (planning_for, plan)
                return None
        policies = [] if plan is None else to_policies(
            self.arrays, {ends: [(links, round(share, 4)) for links, share in paths]
                          for ends, paths in plan.paths.items()})
        named = {(p.source, p.target) for p in policies}
        dropped = [(p.source, p.target) for p in believed.policies if (p.source, p.target) not in named]
        intent = SetPolicies(intent="set_policies", policies=policies, remove=dropped)
        after = apply_intents(believed, [intent]) if plan is not None else believed
        if plan is None or plan.mlu > now - 0.02 or _plan_key(metric, after.policies) in self._failed_plans:
            self._no_plan = (sorted(self.beliefs), len(self._critical), mlu)
            return None
        report = self._verify(believed, after, volume, mlu, forecast_peak, stages)
        if not report.ok:
            if not self._remember_critical(report):
                self._no_plan = (sorted(self.beliefs), len(self._critical), mlu)
            return None
        planned = report.figures["mlu_after"] / (1.0 + self._margin)
        return self._propose(intent, believed, after, report, result, mlu, forecast_peak, now, planned,
                             f"explicit paths for the {len(policies)} pairs that load the hottest links",
                             {"policies": len(policies), "lp_mlu": plan.mlu, "lp_excess": plan.excess})

    def _withdraw_paths(self, result: StepResult, mlu: float, forecast_peak: float, plan_state, believed: Network,
                        stages: dict[str, float]) -> str | None:
        """Every explicit path withdrawn, when the IGP alone would keep the network ``withdraw_margin`` below
        the congestion threshold and verification passes the change; else not tried again until the beliefs
        or the MLU move."""
        volume, link_up, capacity, metric = plan_state
        loads = self.twin.igp_routing_matrix(metric, link_up) @ volume  # the twin has this routing already
        without = float((loads / capacity)[link_up].max(initial=0.0))
        intent = SetPolicies(intent="set_policies", remove=[(p.source, p.target) for p in believed.policies])
        after = apply_intents(believed, [intent])
        if without > self.congestion - self.withdraw_margin or \
                _plan_key(metric, after.policies) in self._failed_plans:
            self._no_plan = (sorted(self.beliefs), len(self._critical), mlu)
            return None
        report = self._verify(believed, after, volume, mlu, forecast_peak, stages)
        if not report.ok:
            self._no_plan = (sorted(self.beliefs), len(self._critical), mlu)
            return None
        return self._propose(intent, believed, after, report, result, mlu, forecast_peak, mlu, without,
                             f"the explicit paths of {len(believed.policies)} pairs withdrawn (the IGP carries "
                             "them again)", {"policies_withdrawn": len(believed.policies)})

    def _verification_volume(self, volume: np.ndarray) -> np.ndarray:
        """The demand verification checks against: the estimate with the margin, and a believed crowd's pairs
        with ``crowd_margin`` more (its size is an estimate from a few samples, and where its traffic goes under
        a failure depends on it)."""
        volume = volume * (1.0 + self._margin)
        for fault in self.beliefs.values():
            if fault.kind == "flash_crowd":
                region = self._region(fault.target)
                own = region[self.twin.pairs[:, 0]] | region[self.twin.pairs[:, 1]]
                volume = np.where(own, volume * (1.0 + self.crowd_margin), volume)
        return volume

    def _verify(self, believed: Network, after: Network, volume: np.ndarray, mlu: float, forecast_peak: float,
                stages: dict[str, float]):
        t = time.perf_counter()
        report = verify_change(believed, after, max_utilisation=self.verify_limit, failures=self.verify_failures,
                               demand=(self.twin.pairs, self._verification_volume(volume)),
                               peak_factor=max(1.0, forecast_peak / max(mlu, 1e-9)), cache=self._whatif_cache,
                               failure_tolerance=self.failure_tolerance, failure_share=self.failure_share)
        stages["decide.verify"] = _ms(t)
        self.budget.verified(stages["decide.verify"])
        return report

    def _propose(self, intent, believed: Network, after: Network, report, result: StepResult, mlu: float,
                 forecast_peak: float, now: float, planned: float, action: str, extra: dict) -> str:
        """A verified plan becomes a change with its evidence; policy may approve it, and then it is applied."""
        causes = [c for i in self.incidents[-1:] for c in i.causes[:3]]
        forecast = f"{forecast_peak:.2f} forecast" if self.forecast else "no forecast yet"
        why = (f"MLU {mlu:.2f} now, {forecast} (limit {self.congestion:g}); {action} predict {planned:.2f}"
               + (f"; believed faults: {', '.join(self.beliefs)}" if self.beliefs else ""))
        evidence = {"mlu": mlu, "forecast_peak": forecast_peak, "predicted_mlu": planned,
                    "verification_demand_margin": self._margin,
                    "planned_from_mlu": now, **extra, "causes": causes,
                    "incident": self.incidents[-1].id if self.incidents else None,
                    "outcomes": [self.outcome(a) for a in self.applied[-3:]]}
        change_id = self.changes.propose([intent.model_dump()], self.actor, why, twin_diff(believed, after))
        self.changes.annotate(change_id, self.actor, "evidence", evidence)
        state = self.changes.record_verification(change_id, report.as_dict())
        self._last_change_tick = self._count - 1
        if state == "approved":
            self._apply(change_id, [intent], result, mlu, planned)
        return change_id

    def _remember_critical(self, report) -> bool:
        """Keep the single failures a verification found the plan would overload; True when any is new."""
        index = {name: e for e, name in enumerate(_directed_names(self.arrays))}
        new = False
        for failure in report.figures.get("overloading_failures", []):
            key = "|".join(sorted(failure))
            if key in self._critical:
                continue
            mask = np.zeros(self.arrays.n_links, dtype=bool)
            mask[[index[name] for name in failure if name in index]] = True
            mask |= np.isin(np.arange(len(mask)), self.partner[mask][self.partner[mask] >= 0])
            self._critical[key] = mask
            new = True
        return new

    def _capacity_of(self, expected) -> np.ndarray:
        """Each link's capacity as the latest sample reports it (load over utilisation: a LAG that lost
        members, a degraded line), else as the twin believes it."""
        measured = self._measured_capacity
        # Counters agree with the model to their rounding: the model's figure, so the network stays the same one
        # from tick to tick (verification's baseline is kept per network).
        differs = np.isfinite(measured) & (np.abs(measured - expected.capacity) > 0.01 * expected.capacity)
        return np.where(differs, np.round(measured, 1), expected.capacity)

    def believed_network(self) -> Network:
        """The running network as the loop believes it is: the twin's own fault model applied to the believed
        faults (links down, a failed router's links down, a degraded link at the capacity it has left), and
        every link the latest sample measured down."""
        expected, _ = self._twin_at(self.twin.minute)
        link_up = expected.link_up & self._measured_up  # a link measured down is down, believed or not
        expected.capacity = self._capacity_of(expected)
        running = self.driver.running()
        links = list(running.links)
        changed = False
        for e, (up, capacity) in enumerate(zip(link_up.tolist(), expected.capacity.tolist())):
            state = "up" if up else "down"
            if state != links[e].state or (up and capacity != links[e].capacity):
                links[e] = links[e].model_copy(update={"state": state, **({"capacity": capacity} if up else {})})
                changed = True
        return running.model_copy(update={"links": links}) if changed else running

    def _supersede(self, why: str) -> None:
        """A proposal still waiting for a person was planned for a network that no longer exists: withdraw it."""
        for change in self.changes.list("verified"):
            if change.proposer == self.actor:
                self.changes.reject(change.id, self.actor, why)
                self._last_change_tick = -10**9  # re-plan at once

    def _waiting_for_person(self) -> bool:
        return any(c.proposer == self.actor for c in self.changes.list("verified"))

    def _apply_approved(self, result: StepResult) -> None:
        """Changes a person approved since the last tick are applied now: the loop's own, and those people
        proposed, when the network under control takes them (the simulator takes IGP metrics)."""
        if self._checking is not None:
            return
        for change in self.changes.list("approved"):
            if change.id in self._not_applicable:
                continue
            intents = approved_intents(self.changes, change.id, self.actor)  # from the audit chain, not the row
            refusal = None if intents is None else self.driver.capabilities().refusal(i.intent for i in intents)
            if intents is None or refusal is not None:
                self._not_applicable.add(change.id)
                if refusal is not None:
                    self.changes.annotate(change.id, self.actor, "not_applied",
                                          f"the network under control does not take it ({refusal})")
                continue
            if not still_verified(self.changes, change.id, self._reverify(intents, result), self.actor):
                self._last_change_tick, self._no_plan = -10**9, None  # the network moved on: plan again at once
                continue
            evidence = self.changes.annotations(change.id).get("evidence", {})
            predicted = evidence.get("predicted_mlu", (change.verification or {}).get("figures", {}).get("mlu_after"))
            self._apply(change.id, intents, result, float(self.utilisation[-1].max(initial=0.0)),
                        float(predicted or 0.0))
            return

    def _reverify(self, intents: list, result: StepResult) -> dict:
        """An approved change verified again, on the network and the demand as they are now."""
        believed = self.believed_network()
        try:
            after = apply_intents(believed, intents)
        except InputError as exc:
            return {"ok": False, "checks": [{"name": "applies", "ok": False, "detail": str(exc)}]}
        forecast_peak = max((f["peak"] for f in self.forecast.values()), default=0.0)
        return self._verify(believed, after, self._plan_state(result)[0], float(self.utilisation[-1].max(initial=0.0)),
                            forecast_peak, {}).as_dict()

    def _apply(self, change_id: str, intents: list, result: StepResult, mlu: float, predicted: float) -> None:
        started = time.perf_counter()
        try:
            self._commit(change_id, intents, result, mlu, predicted)
        finally:
            self._act_ms += _ms(started)

    def _commit(self, change_id: str, intents: list, result: StepResult, mlu: float, predicted: float) -> None:
        before = self.driver.running().arrays().metric.copy()
        policies_before = list(self.driver.running().policies)
        begin_apply(self.changes, change_id, self.driver, self.actor, {"confirm": f"after {self.check_after} ticks"})
        committing = False
        try:
            self.driver.load_candidate(apply_intents(self.driver.running(), intents))
            diff = self.driver.compare()
            # The post-check on measured telemetry confirms or reverts; ``commit_confirm`` reverts by itself if
            # the loop is gone before then.
            committing = True
            self.driver.commit(confirm=self.commit_confirm)
        except DriverError as exc:  # the devices refused it: whatever reached them goes back
            if committing:
                self.driver.rollback()
            self._not_applicable.add(change_id)
            self.changes.advance(change_id, "rolled_back", self.actor, {"why": f"the driver refused it: {exc}"})
            return
        self._rebase = True
        self.changes.advance(change_id, "checking", self.actor, {"diff": diff.as_dict(), "predicted_mlu": predicted})
        applied = Applied(change_id, result.minute, before, self.driver.running().arrays().metric.copy(), mlu,
                          predicted, policies_before=policies_before,
                          policies_after=list(self.driver.running().policies))
        self.applied.append(applied)
        self._checking = (applied, self._count + self.check_after - 1)
        self._last_change_tick = self._count - 1

    def _post_check(self, result: StepResult, mlu: float) -> None:
        applied, _ = self._checking
        self._checking = None
        applied.measured_mlu = mlu
        # Worse than before and above the limit: the twin was wrong about this change, so it goes back.
        failed = mlu > self.congestion and mlu > applied.mlu_before + 0.05
        # And the devices must forward as the twin of what was committed predicts.
        forwarding = self.driver.check()
        outcome = self.outcome(applied)
        if failed or not forwarding.ok:
            self.driver.rollback()
            self._rebase = True
            self._failed_plans.add(_plan_key(applied.metric_after, applied.policies_after))
            # The measurement refuted the twin the plan was made on. A believed crowd is an inference about
            # demand, not an observed state, so it is the first belief to give up.
            crowds = [key for key, fault in self.beliefs.items() if fault.kind == "flash_crowd"]
            for key in crowds:
                del self.beliefs[key]
            if crowds:
                self._replan = True
            applied.state = "rolled_back"
            self.changes.advance(applied.change_id, "rolled_back", self.actor,
                                 {"post_check": f"measured MLU {mlu:.3f} is above the limit and worse than "
                                                f"{applied.mlu_before:.3f} before" if failed else
                                  f"the devices do not forward as the twin predicted: {forwarding.detail}",
                                  "outcome": outcome})
        else:
            self.driver.confirm()
            applied.state = "done"
            self.changes.advance(applied.change_id, "done", self.actor,
                                 {"post_check": f"measured MLU {mlu:.3f} (predicted {applied.predicted_mlu:.3f}); "
                                                f"{forwarding.detail}", "outcome": outcome})

    def rollback_in_flight(self, actor: str, change_id: str | None = None) -> str | None:
        """A person rolls back the change being checked (before the loop confirms it), when it is
        ``change_id`` (if given). Returns its id, None when there is nothing to roll back."""
        if self._checking is None or (change_id is not None and self._checking[0].change_id != change_id):
            return None
        applied, _ = self._checking
        self._checking = None
        self.driver.rollback()
        self._rebase = True
        applied.state = "rolled_back"
        self.changes.advance(applied.change_id, "rolled_back", actor, {"post_check": "rolled back by hand"})
        return applied.change_id

    def revert(self, change_id: str, actor: str, why: str) -> str:
        """A person reverts a change the loop applied and confirmed: its metrics and path policies go back
        through the driver, commit-confirmed, kept once the driver runs exactly the old ones. The loop will not
        propose the same plan again under the same beliefs. Returns the change's state."""
        applied = next((a for a in self.applied if a.change_id == change_id and a.state == "done"), None)
        if applied is None:
            raise WorkflowError(f"change {change_id} is not a change this loop applied and confirmed")
        old = ApplyMetrics(intent="apply_metrics", metrics={name: int(m) for name, m in
                                                            zip(self.link_ids, applied.metric_before.tolist())})
        previous = apply_intents(self.driver.running(), [old]).model_copy(update={"policies": applied.policies_before})

        def runs_old_metrics() -> tuple[bool, str]:
            running = self.driver.running()
            same = np.array_equal(running.arrays().metric, applied.metric_before) and \
                running.policies == applied.policies_before
            return same, "the network runs the metrics and paths from before the change" if same else \
                "the driver did not take the old metrics and paths"

        state = rollback_change(self.changes, change_id, self.driver, previous, runs_old_metrics, actor=actor,
                                why=why, confirm_seconds=None)
        if state == "rolled_back":
            applied.state = "rolled_back"
            self._rebase = True
            self._failed_plans.add(_plan_key(applied.metric_after, applied.policies_after))
            self._last_change_tick = self._count - 1  # a cooldown before the next plan
        return state

    @staticmethod
    def outcome(applied: Applied) -> dict:
        """Predicted beside measured MLU of an applied change (measured is None until its check)."""
        return {"change": applied.change_id, "mlu_before": applied.mlu_before,
                "predicted_mlu": applied.predicted_mlu, "measured_mlu": applied.measured_mlu}


def settle_heap() -> None:
    """For a process that runs the loop, once it is set up: import and compile what the loop's first use would,
    and move everything alive by then (the libraries' modules and functions, the twins) out of the garbage
    collector's way, so a full collection no longer stalls a tick (by 100 ms, measured). It changes the whole
    process, so the program calls it (the CLI, the server, a benchmark), not the library."""
    warm_up_forecasting()
    warm_up_kernels()
    gc.collect()  # what is garbage already is freed, not frozen with the rest
    gc.freeze()


def _plan_key(metric: np.ndarray, policies: list[PathPolicy]) -> bytes:
    """What a plan runs, to recognise one the network has already refuted."""
    return metric.tobytes() + "|".join(p.model_dump_json() for p in policies).encode()


def _measured_capacity(result: StepResult) -> np.ndarray:
    """Per link, the capacity its counters imply (load over utilisation) where it is up and carries enough to
    tell; NaN elsewhere."""
    telling = result.link_up & (result.link_utilisation > 0.01) & (result.link_load > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(telling, result.link_load / result.link_utilisation, np.nan)


def _load_ratio(result: StepResult, predicted: np.ndarray, over: np.ndarray) -> float:
    """The load the network measures over the twin's prediction, summed over the links ``over``."""
    return float(result.link_load[over].sum()) / max(float(predicted[over].sum()), 1e-9)


def _directed_names(arrays) -> list[str]:
    return [f"{arrays.node_ids[a]}->{arrays.node_ids[b]}" for a, b in zip(arrays.src, arrays.dst, strict=True)]


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def latency_summary(ticks: list[Tick]) -> dict[str, float]:
    """Decision latency per tick: p50, p99, max (ms); the whole tick's p99 and max (applying and checking
    changes included); and the p99 of each stage over the ticks that ran it."""
    latency = np.array([t.latency_ms for t in ticks]) if ticks else np.zeros(1)
    total = np.array([t.total_ms for t in ticks]) if ticks else np.zeros(1)
    stages: dict[str, list[float]] = {}
    for t in ticks:
        for name, ms in t.stages_ms.items():
            stages.setdefault(name, []).append(ms)
    return {"p50": float(np.percentile(latency, 50)), "p99": float(np.percentile(latency, 99)),
            "max": float(latency.max()), "ticks": len(ticks), "tick_p99": float(np.percentile(total, 99)),
            "tick_max": float(total.max()),
            "stages_p99": {name: float(np.percentile(ms, 99)) for name, ms in sorted(stages.items())}}
