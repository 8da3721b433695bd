"""Planners: each looks at the estimate of the network at this tick and returns a verified plan, or None. IGP
metrics, explicit paths for the pairs behind the hottest links, and the withdrawal of explicit paths once the
network is calm; a slicing or placement planner is one more class with a ``plan`` method. What they remember
between ticks (a search spread over ticks, the failures verification named, plans the network refuted) is
``PlanMemory``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol, TypeVar

import numpy as np

from netpilot.autopilot.budget import TickBudget
from netpilot.autopilot.estimate import Estimate, PlanState
from netpilot.autopilot.settings import PlanningSettings
from netpilot.change.intents import ApplyMetrics, Intent, SetPolicies, apply_intents
from netpilot.change.verify import (
    PER_FAILURE,
    Report,
    VerificationSettings,
    WhatIfCache,
    failure_allowance,
    proportional,
    verify_change,
)
from netpilot.model.faults import Fault
from netpilot.model.frame import KpiFrame
from netpilot.model.kernels import cores
from netpilot.model.network import Network
from netpilot.model.policies import compile_policies, to_policies
from netpilot.optimize.te.igp import MAX_METRIC, bound_excess, reverse_links, search_metrics
from netpilot.optimize.te.tactical import TacticalPlan, plan_tactical

#: The least MLU a plan must take off before it is worth a change: a smaller gain is within what the estimate
#: may be wrong by.
MIN_GAIN = 0.02


# Demand pairs from which the metric search routes its trials side by side (74 routers have about 5,400 pairs;
# 40 have 1,560, where a trial takes 0.2 ms and threads made the loop's p50 slower).
SIDE_BY_SIDE_PAIRS = 2_000


def gains_enough(planned: float, *now: float) -> bool:
    """Whether a plan's MLU is at least ``MIN_GAIN`` under every reading of the MLU now (the one measured, the
    estimate's): a plan judged only against the estimate can promise a gain the network does not have.

    >>> gains_enough(1.23, 1.26), gains_enough(1.23, 1.26, 1.24)  # estimated 1.26; measured 1.24
    (True, False)
    """
    return planned <= min(now) - MIN_GAIN


@dataclass
class PlanContext:
    """What a planner plans on at this tick: the frame and its MLU, the forecast peak, the seconds a search
    may take (None: a fixed amount of work), the estimate's plan state, the network as believed (``believed``,
    with ``beliefs`` the faults in it and ``beliefs_key`` their names), the tick's number (a search's seed) and
    its stage timings, which planners add to; the tick's number is the clock of ``PlanMemory.no_plan`` too."""

    frame: KpiFrame
    mlu: float
    forecast_peak: float
    search_seconds: float | None
    state: PlanState
    believed: Network
    beliefs: Mapping[str, Fault]
    beliefs_key: tuple[str, ...]
    tick: int
    stages: dict[str, float]
    memory: PlanMemory
    twin_utilisation: Callable[[np.ndarray, np.ndarray], np.ndarray]

    @cached_property
    def targets(self) -> PlanTargets:
        """The cases a congestion plan is made against (worked out once, for whichever planner asks)."""
        return PlanTargets.of(self)


@dataclass
class PlanTargets:
    """What a congestion plan must meet: the MLU today (``now``) and, for every failure verification refused an
    earlier plan for (``cases`` after the first, which is the network as it is), the allowance under
    verification's own rule (``bounds``). ``utilisation_of`` routes a metric vector once per case."""

    start: np.ndarray
    cases: list[np.ndarray]
    utilisation_of: Callable[[np.ndarray], np.ndarray]
    now: float
    bounds: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, context: PlanContext) -> PlanTargets:
        state, memory = context.state, context.memory
        start = state.metric.copy()
        arrays = memory.arrays
        for fault in context.beliefs.values():  # drain degraded links before anything else
            if fault.behaviour.drain_first:
                start[fault.behaviour.links(fault, arrays)] = MAX_METRIC
        start[state.held] = state.metric[state.held]  # not one a believed misconfiguration holds: frozen
        # Failures verification refused earlier plans for are planned against too, under verification's own
        # rule: the plan minimises today's MLU among plans that leave each of them within the limit or lower
        # than it is today by the tolerance (or exactly as it is).
        cases = [state.link_up] + [state.link_up & ~mask for mask in memory.critical.values()]
        routed: dict[bytes, np.ndarray] = {}  # metrics -> utilisation per case: each plan is routed once

        def utilisation_of(m: np.ndarray) -> np.ndarray:
            key = m.tobytes()
            if key not in routed:
                routed[key] = np.array([context.twin_utilisation(m, up) for up in cases])
            return routed[key]

        now = float(utilisation_of(state.metric)[0].max(initial=0.0))
        # Verification's demand carries the margin; the search's does not, so the limit comes down instead.
        today = utilisation_of(state.metric)[1:].max(axis=1, initial=0.0)
        verification = memory.verification
        bounds = (failure_allowance(today, verification.max_utilisation / (1.0 + memory.margin()),
                                    verification.failure_tolerance, verification.failure_share), today)
        return cls(start, cases, utilisation_of, now, bounds)


@dataclass
class Plan:
    """A verified plan: the intent, the network after it, verification's report, the MLU planned from and
    predicted, what it does in words, and what else it brings as evidence."""

    intent: Intent
    after: Network
    report: Report
    now: float
    planned: float
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)


ContextT = TypeVar("ContextT", contravariant=True)


class Planner(Protocol[ContextT]):
    """Returns a verified plan for the network at this tick, or None (nothing better, or nothing to propose
    yet: a search goes on next tick). Routing planners read a ``PlanContext``; the RAN's planners
    (``autopilot.ran``) a ``RanContext``."""

    def plan(self, context: ContextT) -> Plan | None: ...


class PlanMemory:
    """What the planners keep between ticks: the single failures verification refused a plan for
    (``critical``, as masks of the links they take down), plans the network refuted (``refuted``), what the last
    decision that found nothing planned on (``no_plan``), the beliefs and metrics under which the metric search
    gave up (``paths_for``: explicit paths next), and a search's incumbent and its candidates awaiting
    verification on the next tick."""

    def __init__(self, arrays: Any, verification: VerificationSettings, margin: Callable[[], float]) -> None:
        self.arrays = arrays
        self.verification = verification
        self.margin = margin
        self.partner = reverse_links(arrays)
        self.critical: dict[str, np.ndarray] = {}
        self.refuted: set[bytes] = set()
        self.no_plan: tuple[tuple[str, ...], int, float, int] | None = None
        self.paths_for: tuple[tuple[str, ...], bytes] | None = None
        self.incumbent: tuple[tuple[Any, ...], np.ndarray] | None = None
        self.candidate: tuple[tuple[Any, ...], np.ndarray] | None = None
        self.paths_candidate: tuple[tuple[Any, ...], TacticalPlan | None] | None = None
        self.stale = 0  # evaluations the search has gone without improving
        self._directed = {f"{arrays.node_ids[a]}->{arrays.node_ids[b]}": e
                          for e, (a, b) in enumerate(zip(arrays.src, arrays.dst, strict=True))}

    def forget(self) -> None:
        """The beliefs changed: failures named and plans refuted were for the network as it was believed."""
        self.refuted.clear()
        self.critical.clear()

    def nothing_found(self, beliefs_key: tuple[str, ...], mlu: float, tick: int) -> None:
        """A decision at ``tick`` found nothing: what it planned on, so the loop waits until something moves."""
        self.no_plan = (beliefs_key, len(self.critical), mlu, tick)

    def worth_planning(self, beliefs_key: tuple[str, ...], mlu: float, replan: bool, replan_mlu: float,
                       tick: int, retry_steps: int) -> bool:
        """False while nothing the last fruitless decision planned on has changed, for at most ``retry_steps``
        ticks: a decision made on a moment that passed (the loads while routing converged after a cut) must
        not hold while an overload stays as it is."""
        if self.no_plan is None or replan:
            return True
        beliefs, critical, then, at = self.no_plan
        if tick - at >= retry_steps:
            # Made afresh: the metric search too, if it gave up on that moment and handed over to explicit paths.
            self.no_plan = self.paths_for = None
            return True
        if beliefs != beliefs_key or critical != len(self.critical) or abs(mlu - then) > replan_mlu:
            self.no_plan = None
            return True
        return False

    def remember_critical(self, report: Report) -> bool:
        """Keep the single failures a verification found the plan would overload; True when any is new."""
        new = False
        for failure in report.figures.overloading_failures:
            key = "|".join(sorted(failure))
            if key in self.critical:
                continue
            mask = np.zeros(self.arrays.n_links, dtype=bool)
            mask[[self._directed[name] for name in failure if name in self._directed]] = True
            mask |= np.isin(np.arange(len(mask)), self.partner[mask][self.partner[mask] >= 0])
            self.critical[key] = mask
            new = True
        return new


class Verifier:
    """Verification as the planners run it: on the estimate's demand with its margin (and, with a believed
    crowd, on the estimate itself too), at the forecast peak, keeping the baselines of single failures between
    calls, and telling the tick budget what it cost."""

    def __init__(self, settings: VerificationSettings, estimate: Estimate, budget: TickBudget) -> None:
        self.settings = settings
        self.estimate = estimate
        self.budget = budget
        self.cache = WhatIfCache()

    def demands(self, volume: np.ndarray, beliefs: Mapping[str, Fault]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every demand a change is verified on (``verify_on``): verification's (the estimate with its margin),
        and the estimate itself where that is not verification's scaled (a believed crowd's own margin)."""
        pairs, demand = self.estimate.twin.pairs, self.estimate.verification_volume(volume, beliefs)
        return [(pairs, demand)] + ([] if proportional(demand, volume) else [(pairs, volume)])

    def has_baseline(self, believed: Network, volume: np.ndarray, beliefs: Mapping[str, Fault]) -> bool:
        """Whether every single failure of ``believed`` is known on each demand a change is verified on."""
        return all(self.cache.has(believed, *demand) for demand in self.demands(volume, beliefs))

    def baseline(self, believed: Network, volume: np.ndarray, beliefs: Mapping[str, Fault]) -> None:
        """Every single failure of ``believed`` on each demand a change is verified on, kept for ``verify_on``."""
        for demand in self.demands(volume, beliefs):
            self.cache.baseline(believed, *demand)

    def verify(self, context: PlanContext, after: Network) -> Report:
        return self.verify_on(context.believed, after, context.state.volume, context.beliefs, context.mlu,
                              context.forecast_peak, context.stages)

    def verify_on(self, believed: Network, after: Network, volume: np.ndarray, beliefs: Mapping[str, Fault],
                  mlu: float, forecast_peak: float, stages: dict[str, float]) -> Report:
        """The change from ``believed`` to ``after`` verified on the demand ``volume`` (the estimate's, before
        the margin) with the margin, and where that is not ``volume`` scaled (a believed crowd) on ``volume`` as
        well, at the forecast peak; ``mlu`` is the MLU measured now. Its time goes into ``stages``. The report is
        the margin's, or the refusal at the estimate."""
        t = time.perf_counter()
        settings = self.settings
        if settings.failure_rule != PER_FAILURE:
            # Failures are traded against one another only while the estimate matches the measured loads (its
            # margin at the floor); while a busy link measures more than it predicts (a crowd not yet believed),
            # the demand's shape is off, and each failure is judged alone. So they are while the network
            # measures within the limit (``mlu``), whatever the estimate says: the rule trades failures only while
            # traffic is lost now (BENCHMARKS.md, issue 25, session 28). Routers' counters of traffic carried
            # read a full link at the limit, not over it: there each failure is judged alone, the stricter side.
            # The rule needs to know how far verification's demand is above the estimate.
            off = self.estimate.margin > self.estimate.settings.demand_margin + 1e-12 or \
                mlu <= settings.max_utilisation
            settings = replace(settings, failure_rule=PER_FAILURE) if off else \
                replace(settings, demand_margin=self.estimate.margin)
        (pairs, demand), *at_estimate_too = self.demands(volume, beliefs)
        peak_factor = max(1.0, forecast_peak / max(mlu, 1e-9))
        report = verify_change(believed, after, settings, demand=(pairs, demand), peak_factor=peak_factor,
                               cache=self.cache)
        if at_estimate_too and report.ok:
            # A believed crowd's pairs carry a margin of their own, so verification's demand is not the estimate
            # scaled: a failure that today's routing keeps within the limit with the crowd as estimated can be
            # over it today with the margin, and the change then pass as no worse. The single-failure rule
            # compares with today's routing, so it is not kept by more demand: the change must pass at the
            # estimate itself too (a refusal there is the report; a pass leaves the figures at the margin).
            at_estimate = verify_change(believed, after, replace(settings, demand_margin=0.0),
                                        demand=(pairs, volume), peak_factor=peak_factor, cache=self.cache)
            report = report if at_estimate.ok else at_estimate
        stages["decide.verify"] = _ms(t)
        self.budget.verified(stages["decide.verify"])
        return report


class IgpMetricPlanner:
    """New IGP metrics: a local search from the running metrics (and from them with believed degraded links
    drained), spread over ticks, for the lowest MLU that keeps every failure planned against within its
    allowance. When it stops improving without a plan, it hands over to explicit paths (``paths_for``)."""

    def __init__(self, settings: PlanningSettings, verifier: Verifier, budget: TickBudget, link_ids: list[str]
                 ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.budget = budget
        self.link_ids = link_ids
        # Trials routed side by side, one a core: the search and its result are those of one at a time. Not on
        # a small network, where a trial's routing takes less than handing it to a thread.
        self.threads = cores() if len(verifier.estimate.twin.pairs) >= SIDE_BY_SIDE_PAIRS else 1

    def plan(self, context: PlanContext) -> Plan | None:
        memory, settings, targets = context.memory, self.settings, context.targets
        metric, link_up = context.state.metric, context.state.link_up
        planning_for = (context.beliefs_key, len(memory.critical), metric.tobytes())
        carried = [memory.incumbent[1]] if memory.incumbent is not None and memory.incumbent[0] == planning_for \
            else []
        candidate, memory.candidate = memory.candidate, None
        evaluations = 0
        if candidate is not None and candidate[0] == planning_for:
            # Found last tick with no time left to verify it: verified now, on this sample (the search's own best
            # beside it is the incumbent it was found with).
            best = candidate[1]
            searched = memory.incumbent[1] if memory.incumbent is not None else best
        else:
            t = time.perf_counter()
            # A fixed amount of work (``plan_routings`` routings) without a budget in time, else what the tick has.
            budget = settings.plan_evaluations if context.search_seconds is not None else \
                max(3, settings.plan_routings // len(targets.cases))
            search = search_metrics(targets.utilisation_of, [targets.start, metric, *carried],
                                    partner=memory.partner, frozen=~link_up | context.state.held,
                                    max_evaluations=budget, time_limit=context.search_seconds, seed=context.tick,
                                    bounds=targets.bounds, threads=self.threads)
            searched = best = search.best
            evaluations = search.evaluations
            if bound_excess(targets.utilisation_of(best), *targets.bounds).any() and \
                    search.within_bounds is not None:
                # The search's best pays a little excess under a named failure for much MLU, and would only be
                # refused; the best plan it saw that keeps every bound is proposed instead (if it gains enough),
                # while the search goes on from its own best.
                best = search.within_bounds
            context.stages["decide.search"] = _ms(t)
        planned = float(targets.utilisation_of(best)[0].max(initial=0.0))
        changed = np.flatnonzero(best != metric)
        # A plan that still breaks the rule under a failure verification has named would only be refused.
        failed_before = context.state.refuted_key(best, context.believed.policies) in memory.refuted
        if not len(changed) or not gains_enough(planned, targets.now, context.mlu) or failed_before or \
                bound_excess(targets.utilisation_of(best), *targets.bounds).any():
            progressed = not carried or not np.array_equal(searched, carried[0])
            memory.incumbent = (planning_for, searched)
            # A search spread over ticks gives up once it has gone a whole search's worth of evaluations
            # without improving, or ``paths_after`` when explicit paths for the pairs behind the hot links are
            # the next resort (a faster remedy than more of a search that has stalled).
            memory.stale = 0 if progressed else memory.stale + evaluations
            give_up = settings.paths_after if settings.explicit_paths else settings.plan_evaluations
            if memory.stale >= give_up or failed_before:
                if settings.explicit_paths:
                    memory.paths_for = (context.beliefs_key, metric.tobytes())
                else:
                    memory.nothing_found(context.beliefs_key, context.mlu, context.tick)
                memory.stale = 0
            return None  # nothing better, or a plan the network already showed to be wrong
        memory.incumbent = (planning_for, searched)
        if evaluations and not self.budget.room_to_verify():
            memory.candidate = (planning_for, best)
            return None
        intent = ApplyMetrics(intent="apply_metrics", metrics={self.link_ids[e]: int(best[e]) for e in changed})
        after = apply_intents(context.believed, [intent])
        report = self.verifier.verify(context, after)
        if not report.ok and memory.remember_critical(report):
            # Overloaded under failures the search did not plan for: the next tick plans against them. The
            # refused plan is not proposed (a person would only be asked to reject it).
            return None
        return Plan(intent, after, report, targets.now, planned, f"re-optimised IGP metrics on {len(changed)} links",
                    {"evaluations": evaluations})


class ExplicitPathPlanner:
    """Explicit paths for the pairs behind the hottest links (tactical TE), where no IGP metrics the search
    found would do: one LP, verified like any change (on the next tick's sample when the LP leaves too little
    of this one); failures verification names are planned against on the next tick. The plan replaces every
    policy the network runs (the LP routes all other pairs on the IGP)."""

    def __init__(self, verifier: Verifier, budget: TickBudget, estimate: Estimate) -> None:
        self.verifier = verifier
        self.budget = budget
        self.estimate = estimate

    def wanted(self, context: PlanContext) -> bool:
        """Whether the metric search has given up under these beliefs and metrics."""
        return context.memory.paths_for == (context.beliefs_key, context.state.metric.tobytes())

    def plan(self, context: PlanContext) -> Plan | None:
        memory, targets, state = context.memory, context.targets, context.state
        arrays, twin = self.estimate.arrays, self.estimate.twin
        metric = state.metric
        planning_for = (context.beliefs_key, len(memory.critical), metric.tobytes())
        pending, memory.paths_candidate = memory.paths_candidate, None
        if pending is not None and pending[0] == planning_for:
            plan = pending[1]
        else:
            t = time.perf_counter()
            plan = plan_tactical(arrays, twin.pairs, state.volume, metric, state.link_up, state.capacity,
                                 cases=targets.cases[1:], allowed=targets.bounds[0],
                                 current=compile_policies(arrays, context.believed.policies),
                                 igp_matrix=lambda up: twin.igp_routing_matrix(metric, up))
            context.stages["decide.paths"] = _ms(t)
            if plan is not None and not self.budget.room_to_verify():
                memory.paths_candidate = (planning_for, plan)
                return None
        policies = [] if plan is None else to_policies(
            arrays, {ends: [(links, round(share, 4)) for links, share in paths]
                     for ends, paths in plan.paths.items()})
        named = {(p.source, p.target) for p in policies}
        dropped = [(p.source, p.target) for p in context.believed.policies if (p.source, p.target) not in named]
        intent = SetPolicies(intent="set_policies", policies=policies, remove=dropped)
        after = apply_intents(context.believed, [intent]) if plan is not None else context.believed
        if plan is None or not gains_enough(plan.mlu, targets.now, context.mlu) or \
                state.refuted_key(metric, after.policies) in memory.refuted:
            memory.nothing_found(context.beliefs_key, context.mlu, context.tick)
            return None
        report = self.verifier.verify(context, after)
        if not report.ok:
            if not memory.remember_critical(report):
                memory.nothing_found(context.beliefs_key, context.mlu, context.tick)
            return None
        planned = report.figures.mlu_after / (1.0 + self.estimate.margin)
        if not gains_enough(planned, context.mlu, report.figures.mlu_before / (1.0 + self.estimate.margin)):
            # The LP's split, rounded to the policies' weights and verified on the whole network, can gain less
            # than the LP promised.
            memory.nothing_found(context.beliefs_key, context.mlu, context.tick)
            return None
        return Plan(intent, after, report, targets.now, planned,
                    f"explicit paths for the {len(policies)} pairs that load the hottest links",
                    {"policies": len(policies), "lp_mlu": plan.mlu, "lp_excess": plan.excess})


class WithdrawPathsPlanner:
    """Every explicit path withdrawn, when the IGP alone would keep the network ``withdraw_margin`` below the
    congestion threshold and verification passes the change; else not tried again until the beliefs or the
    MLU move."""

    def __init__(self, settings: PlanningSettings, verifier: Verifier, estimate: Estimate) -> None:
        self.settings = settings
        self.verifier = verifier
        self.estimate = estimate

    def plan(self, context: PlanContext) -> Plan | None:
        state, believed, memory = context.state, context.believed, context.memory
        loads = self.estimate.twin.igp_routing_matrix(state.metric, state.link_up) @ state.volume
        without = float((loads / state.capacity)[state.link_up].max(initial=0.0))
        intent = SetPolicies(intent="set_policies", remove=[(p.source, p.target) for p in believed.policies])
        after = apply_intents(believed, [intent])
        if without > self.settings.congestion - self.settings.withdraw_margin or \
                state.refuted_key(state.metric, after.policies) in memory.refuted:
            memory.nothing_found(context.beliefs_key, context.mlu, context.tick)
            return None
        report = self.verifier.verify(context, after)
        if not report.ok:
            memory.nothing_found(context.beliefs_key, context.mlu, context.tick)
            return None
        return Plan(intent, after, report, context.mlu, without,
                    f"the explicit paths of {len(believed.policies)} pairs withdrawn (the IGP carries them again)",
                    {"policies_withdrawn": len(believed.policies)})


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
