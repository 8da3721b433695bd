"""The closed loop: each telemetry tick is scored, incidents are localised on the twin, and congestion (now or
forecast) becomes a verified change that policy or a person approves before it is applied and checked."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np

from netpilot.analytics.detect import StreamingDetector
from netpilot.analytics.forecast import Forecaster
from netpilot.analytics.rca import NOISE_FLOOR, Cause, RootCauseLocalizer, Snapshot, feature_layout
from netpilot.change.apply import rollback_change
from netpilot.change.drivers import Driver
from netpilot.change.intents import ApplyMetrics, IntentList, apply_intents
from netpilot.change.verify import verify_change
from netpilot.change.workflow import ChangeStore, WorkflowError, twin_diff
from netpilot.model.network import Network
from netpilot.optimize.te.igp import MAX_METRIC, reverse_links, search_metrics
from netpilot.telemetry.sim.faults import Fault
from netpilot.telemetry.sim.simulator import Simulator, StepResult

#: Fault kinds the planner acts on once localised, and how the twin should believe them.
ACTIONABLE = ("link_down", "link_degrade", "router_down", "flash_crowd")
#: Intents the simulator (the network under control in the demo and scenarios) can take: IGP metrics.
METRIC_INTENTS = ("apply_metrics", "set_metric", "drain_node")


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
    """What one tick did and how long each stage took (``latency_ms``: sample in, decision out)."""

    ts: str
    minute: float
    latency_ms: float
    mlu: float
    alarms: int
    incident: str | None = None
    change: str | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)


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


class Autopilot:
    """The loop around one network. Feed it ``observe(step_result)`` per telemetry tick.

    ``driver`` is where changes go (the simulator, the twin, FRR); ``changes`` holds the workflow, and its
    policy decides which changes need a person. ``congestion`` is the utilisation above which the loop
    re-optimises IGP metrics; ``verify_limit`` is the utilisation verification refuses to create, now or
    under any single link failure (capacity, by default), checked on the demand estimate raised by
    ``demand_margin`` because the estimate is scaled from measured totals, not measured per pair (more when a
    busy link measures more than the estimate predicts, up to double). A plan that
    verification would refuse for overloading under named single failures is re-planned against those failures,
    up to ``plan_attempts`` plans per decision, before one is proposed. Everything
    the loop decides carries its evidence (alarms, ranked causes, the forecast, predicted utilisation) into the
    change's ``why`` and the audit log."""

    def __init__(self, network: Network, changes: ChangeStore, driver: Driver, *, congestion: float = 0.9,
                 verify_limit: float = 1.0, demand_margin: float = 0.1,
                 alarm_threshold: float = 10.0, min_alarms: int = 2, localise_after: int = 3,
                 baseline_steps: int = 15, quiet_steps: int = 10, plan_evaluations: int = 60,
                 plan_seconds: float = 0.08, plan_attempts: int = 2, verify_failures: bool = True,
                 cooldown_steps: int = 5,
                 check_after: int = 2, forecast_every: int = 5, forecast_horizon: int = 15,
                 actor: str = "autopilot", keep: int = 720) -> None:
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
        self.plan_seconds = plan_seconds
        self.plan_attempts = plan_attempts
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
        self.noise_floor = np.array([NOISE_FLOOR[n] for n in names])
        self.detectors = [StreamingDetector(level_alpha=0.05, warmup=10, peak_window=60) for _ in names]
        self._load_kpis = [i for i, name in enumerate(names) if not name.endswith("_up")]
        self._rebase = False  # the next tick follows a routing change the loop made
        self.link_ids = [lk.id for lk in network.links]

        self.snapshots: deque[np.ndarray] = deque(maxlen=keep)
        self.times: deque[str] = deque(maxlen=keep)
        self.utilisation: deque[np.ndarray] = deque(maxlen=keep)
        self.ticks: list[Tick] = []
        self.incidents: list[Incident] = []
        self.applied: list[Applied] = []
        self.beliefs: dict[str, Fault] = {}
        self.forecast: dict[str, dict] = {}
        self._open: tuple[Incident, int] | None = None  # incident being localised, its onset tick
        self._last_onset = -10**9
        self._last_change_tick = -10**9
        self._checking: tuple[Applied, int] | None = None
        self._replan = False
        self._critical: dict[str, np.ndarray] = {}  # single failures verification refused a plan for
        self._margin = demand_margin  # the demand margin verification uses now (grows when the estimate is off)
        self._failed_plans: set[bytes] = set()  # metrics the post-check rolled back, under the current beliefs
        self._not_applicable: set[str] = set()  # approved changes this network cannot take
        self._count = 0

    # --- the loop ---------------------------------------------------------------------------------------------

    def observe(self, result: StepResult) -> Tick:
        started = time.perf_counter()
        stages: dict[str, float] = {}
        n = self._count
        self._count += 1
        ts = result.ts.isoformat()
        values = Snapshot.from_step(result).values
        self.snapshots.append(values)
        self.times.append(ts)
        up = result.link_up
        self.utilisation.append(np.where(up, result.link_utilisation, 0.0))
        mlu = float(result.link_utilisation[up].max(initial=0.0))
        stages["store"] = _ms(started)

        t = time.perf_counter()
        if self._rebase:
            # The routing changed because the loop changed it: loads move for a known reason, so the detectors of
            # load-driven KPIs start from the new level. State flips are still scored.
            for i in self._load_kpis:
                self.detectors[i].rebase(values[i])
            self._rebase = False
        scores = np.fromiter((d.update(v) for d, v in zip(self.detectors, values.tolist())), dtype=float,
                             count=len(values))
        alarmed = np.flatnonzero(scores >= self.alarm_threshold)
        stages["detect"] = _ms(t)
        tick = Tick(ts, result.minute, 0.0, mlu, len(alarmed))

        if self._checking is not None and n >= self._checking[1]:
            self._post_check(result, mlu)
        self._apply_approved(result)

        # A new incident waits out the quiet period after the last one, unless something changed state (a link
        # or router went down) that the last incident did not already show: a state flip is never noise, and
        # a fault must not hide behind the churn of an earlier one or of the loop's own change.
        recent = set(self.incidents[-1].alarms) if self.incidents else set()
        flipped = [i for i in alarmed if self.feature_names[i].endswith("_up") and self.feature_names[i] not in recent]
        # Until a baseline has been seen, a jump cannot be told from the day's ramp, nor localised.
        settled = n >= self.baseline_steps
        if settled and len(alarmed) >= self.min_alarms and (n - self._last_onset > self.quiet_steps or flipped):
            ranked = alarmed[np.argsort(-scores[alarmed])]
            shown = list(dict.fromkeys([self.feature_names[i] for i in flipped] +
                                       [self.feature_names[i] for i in ranked]))[:10]
            incident = Incident(f"I{len(self.incidents) + 1}", ts, result.minute, shown)
            self.incidents.append(incident)
            self._open = (incident, n)
            self._last_onset = n
            tick.incident = incident.id
        if self._open is not None and n - self._open[1] >= self.localise_after - 1:
            t = time.perf_counter()
            self._localise(*self._open, result)
            self._open = None
            stages["localise"] = _ms(t)
        self._expire_beliefs(result)

        if n % self.forecast_every == 0:
            t = time.perf_counter()
            self._forecast()
            stages["forecast"] = _ms(t)

        forecast_peak = max((f["peak"] for f in self.forecast.values()), default=0.0)
        congested = mlu > self.congestion or forecast_peak > self.congestion
        if self._replan:
            self._supersede(f"superseded: the network changed ({', '.join(sorted(self.beliefs)) or 'faults cleared'})")
        idle = self._checking is None and not self._waiting_for_person()
        if (congested or self._replan) and idle and n - self._last_change_tick >= self.cooldown_steps:
            t = time.perf_counter()
            tick.change = self._decide(result, mlu, forecast_peak)
            self._replan = False
            stages["decide"] = _ms(t)
        tick.latency_ms = _ms(started)
        tick.stages_ms = stages
        self.ticks.append(tick)
        return tick

    # --- localisation and beliefs -----------------------------------------------------------------------------

    def _localise(self, incident: Incident, onset: int, result: StepResult) -> None:
        history = np.array(self.snapshots)
        ahead = self._count - onset  # snapshots from the onset on
        before = history[-ahead - self.baseline_steps:-ahead]
        after = history[-ahead:]
        if len(before) < 3:
            return
        noise = np.maximum(np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2), self.noise_floor)
        causes = self.localizer.rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                     minute=result.minute, noise=noise, metrics=self.driver.running.arrays().metric,
                                     top=10)
        incident.causes = [asdict(c) for c in causes]
        incident.localised_at = result.ts.isoformat()
        if causes and causes[0].kind in ACTIONABLE and causes[0].score >= 0.5:
            self._believe(causes[0], result.minute)

    def _believe(self, cause: Cause, minute: float) -> None:
        target: str | list[str] = cause.target.split("--") if "--" in cause.target else cause.target
        params = {"multiplier": 3.0} if cause.kind == "flash_crowd" else {}
        params |= {"loss": 0.02, "capacity_factor": 0.5} if cause.kind == "link_degrade" else {}
        self.beliefs[f"{cause.kind}:{cause.target}"] = Fault(kind=cause.kind, target=target, at_minute=0,
                                                             **params)
        self._replan = True
        self._failed_plans.clear()

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
                healthy = result.minute - fault.at_minute > 60
            if healthy:
                del self.beliefs[key]
                self._replan = True
                self._failed_plans.clear()

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
        """The twin under the believed faults at this minute, scaled to the measured total load."""
        twin = self.twin
        twin.faults = list(self.beliefs.values())
        twin.minute = result.minute
        expected = twin.expected()
        metric = self.driver.running.arrays().metric
        predicted = twin.link_loads(expected.volume, metric, expected.link_up)
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

    def _decide(self, result: StepResult, mlu: float, forecast_peak: float) -> str | None:
        volume, link_up, capacity, metric = self._plan_state(result)

        start = metric.copy()
        for fault in self.beliefs.values():  # drain degraded links before anything else
            if fault.kind == "link_degrade":
                start[self.twin.links_of(fault)] = MAX_METRIC
        now = float((self.twin.link_loads(volume, metric, link_up) / capacity).max(initial=0.0))
        believed = self.believed_network()
        evaluations = 0
        # Plan, verify the plan (single failures included), and when verification names failures the plan would
        # overload, plan again against those too: only a plan that survived this, or the last try, is proposed.
        for _attempt in range(self.plan_attempts):
            # Failures verification refused plans for are planned against too: the plan minimises the worst
            # utilisation over now and each of them, so the next plan survives them.
            cases = [link_up] + [link_up & ~mask for mask in self._critical.values()]

            def utilisation_of(m: np.ndarray, cases=cases) -> np.ndarray:
                return np.max([self.twin.link_loads(volume, m, up) / capacity for up in cases], axis=0)

            best, used = search_metrics(utilisation_of, [start, metric], partner=self.partner, frozen=~link_up,
                                        max_evaluations=self.plan_evaluations, time_limit=self.plan_seconds)
            evaluations += used
            planned = float((self.twin.link_loads(volume, best, link_up) / capacity).max(initial=0.0))
            changed = np.flatnonzero(best != metric)
            if not len(changed) or planned > now - 0.02 or best.tobytes() in self._failed_plans:
                return None  # nothing better, or a plan the network already showed to be wrong
            intent = ApplyMetrics(intent="apply_metrics",
                                  metrics={self.link_ids[e]: int(best[e]) for e in changed})
            after = apply_intents(believed, [intent])
            report = verify_change(believed, after, max_utilisation=self.verify_limit,
                                   failures=self.verify_failures,
                                   demand=(self.twin.pairs, volume * (1.0 + self._margin)),
                                   peak_factor=max(1.0, forecast_peak / max(mlu, 1e-9)))
            if report.ok or not self._remember_critical(report):
                break
        causes = [c for i in self.incidents[-1:] for c in i.causes[:3]]
        why = (f"MLU {mlu:.2f} now, {forecast_peak:.2f} forecast (limit {self.congestion:g}); re-optimised IGP "
               f"metrics on {len(changed)} links predict {planned:.2f}"
               + (f"; believed faults: {', '.join(self.beliefs)}" if self.beliefs else ""))
        evidence = {"mlu": mlu, "forecast_peak": forecast_peak, "predicted_mlu": planned,
                    "verification_demand_margin": self._margin,
                    "planned_from_mlu": now, "evaluations": evaluations, "causes": causes,
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

    def believed_network(self) -> Network:
        """The running network as the loop believes it is: the twin's own fault model applied to the believed
        faults (links down, a failed router's links down, a degraded link at the capacity it has left)."""
        self.twin.faults = list(self.beliefs.values())
        expected = self.twin.expected()
        running = self.driver.running
        links = list(running.links)
        changed = False
        for e, (up, capacity) in enumerate(zip(expected.link_up.tolist(), expected.capacity.tolist())):
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
            intents = IntentList.model_validate(change.intents).root
            if any(i.intent not in METRIC_INTENTS for i in intents):
                self._not_applicable.add(change.id)
                self.changes.annotate(change.id, self.actor, "not_applied",
                                      "this network takes IGP metric changes only (set_metric, drain_node, "
                                      "apply_metrics); apply it with a device driver")
                continue
            evidence = self.changes.annotations(change.id).get("evidence", {})
            predicted = evidence.get("predicted_mlu", (change.verification or {}).get("figures", {}).get("mlu_after"))
            self._apply(change.id, intents, result, float(self.utilisation[-1].max(initial=0.0)),
                        float(predicted or 0.0))
            return

    def _apply(self, change_id: str, intents: list, result: StepResult, mlu: float, predicted: float) -> None:
        before = self.driver.running.arrays().metric.copy()
        self.changes.advance(change_id, "applying", self.actor, {"confirm": f"after {self.check_after} ticks"})
        self.driver.load_candidate(apply_intents(self.driver.running, intents))
        self._rebase = True
        diff = self.driver.compare()
        self.driver.commit(confirm_seconds=None)  # the post-check on measured telemetry confirms or reverts
        self.changes.advance(change_id, "checking", self.actor, {"diff": diff, "predicted_mlu": predicted})
        applied = Applied(change_id, result.minute, before, self.driver.running.arrays().metric.copy(), mlu,
                          predicted)
        self.applied.append(applied)
        self._checking = (applied, self._count + self.check_after - 1)
        self._last_change_tick = self._count - 1

    def _post_check(self, result: StepResult, mlu: float) -> None:
        applied, _ = self._checking
        self._checking = None
        applied.measured_mlu = mlu
        # Worse than before and above the limit: the twin was wrong about this change, so it goes back.
        failed = mlu > self.congestion and mlu > applied.mlu_before + 0.05
        outcome = self.outcome(applied)
        if failed:
            self.driver.rollback()
            self._rebase = True
            self._failed_plans.add(applied.metric_after.tobytes())
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
                                                f"{applied.mlu_before:.3f} before", "outcome": outcome})
        else:
            self.driver.confirm()
            applied.state = "done"
            self.changes.advance(applied.change_id, "done", self.actor,
                                 {"post_check": f"measured MLU {mlu:.3f} (predicted {applied.predicted_mlu:.3f})",
                                  "outcome": outcome})

    def rollback_in_flight(self, actor: str) -> str | None:
        """A person rolls back the change being checked (before the loop confirms it). Returns its id."""
        if self._checking is None:
            return None
        applied, _ = self._checking
        self._checking = None
        self.driver.rollback()
        self._rebase = True
        applied.state = "rolled_back"
        self.changes.advance(applied.change_id, "rolled_back", actor, {"post_check": "rolled back by hand"})
        return applied.change_id

    def revert(self, change_id: str, actor: str, why: str) -> str:
        """A person reverts a change the loop applied and confirmed: its metrics go back through the driver,
        commit-confirmed, kept once the driver runs exactly the old metrics. The loop will not propose the same
        plan again under the same beliefs. Returns the change's state."""
        applied = next((a for a in self.applied if a.change_id == change_id and a.state == "done"), None)
        if applied is None:
            raise WorkflowError(f"change {change_id} is not a change this loop applied and confirmed")
        old = ApplyMetrics(intent="apply_metrics", metrics={name: int(m) for name, m in
                                                            zip(self.link_ids, applied.metric_before.tolist())})
        previous = apply_intents(self.driver.running, [old])

        def runs_old_metrics() -> tuple[bool, str]:
            same = np.array_equal(self.driver.running.arrays().metric, applied.metric_before)
            return same, "the network runs the metrics from before the change" if same else \
                "the driver did not take the old metrics"

        state = rollback_change(self.changes, change_id, self.driver, previous, runs_old_metrics, actor=actor,
                                why=why, confirm_seconds=None)
        if state == "rolled_back":
            applied.state = "rolled_back"
            self._rebase = True
            self._failed_plans.add(applied.metric_after.tobytes())
            self._last_change_tick = self._count - 1  # a cooldown before the next plan
        return state

    @staticmethod
    def outcome(applied: Applied) -> dict:
        """Predicted beside measured MLU of an applied change (measured is None until its check)."""
        return {"change": applied.change_id, "mlu_before": applied.mlu_before,
                "predicted_mlu": applied.predicted_mlu, "measured_mlu": applied.measured_mlu}


def _directed_names(arrays) -> list[str]:
    return [f"{arrays.node_ids[a]}->{arrays.node_ids[b]}" for a, b in zip(arrays.src, arrays.dst, strict=True)]


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def latency_summary(ticks: list[Tick]) -> dict[str, float]:
    """Decision latency per tick: p50, p99, max (ms)."""
    latency = np.array([t.latency_ms for t in ticks]) if ticks else np.zeros(1)
    return {"p50": float(np.percentile(latency, 50)), "p99": float(np.percentile(latency, 99)),
            "max": float(latency.max()), "ticks": len(ticks)}
