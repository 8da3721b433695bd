"""The faults the loop believes in: adopted from a localisation's ranked causes (the top one, or past a crowd the
measured loads do not bear out), sized from the measured loads (a flash crowd), and dropped once their own KPIs look
healthy again or a failed change refutes them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from netpilot.analytics.rca import Cause
from netpilot.autopilot.estimate import Estimate
from netpilot.model.faults import Fault
from netpilot.model.frame import KpiFrame

#: A flash crowd is believed only when its node's links measure at least this many times its usual traffic.
MIN_CROWD = 1.2
#: How much of a localisation a cause must explain to be believed.
MIN_SCORE = 0.5
#: A relative difference below this is a rounding error, which differs from machine to machine: two routings'
#: misfits to the measured loads (a metric that moves no path fits exactly as well), a crowd's levels.
ROUNDING = 1e-9


@dataclass(frozen=True)
class BeforeIncident:
    """The link loads and states before an incident (medians over the healthy window), and the minute they
    stand for: what a crowd is sized against."""

    loads: np.ndarray
    up: np.ndarray
    minute: float


class Beliefs(Mapping[str, Fault]):
    """Believed faults by ``kind:target``, in the order they were adopted (the twin applies them in it); it
    reads as a mapping of them."""

    def __init__(self, estimate: Estimate) -> None:
        self.estimate = estimate
        self.faults: dict[str, Fault] = {}
        self.before_incident: BeforeIncident | None = None
        self._usual: dict[str, float] = {}  # a believed crowd's region's level before it, in the same terms

    def __getitem__(self, name: str) -> Fault:
        return self.faults[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    def clear(self) -> None:
        """Forget every belief (as a person might, to have the loop localise afresh)."""
        self.faults.clear()

    def key(self) -> tuple[str, ...]:
        """What is believed, as plans and fits are keyed on it."""
        return tuple(sorted(self.faults))

    def adopt(self, cause: Cause, frame: KpiFrame) -> bool:
        """Believe a localisation's top cause when its kind is one the planner acts on and it explains enough;
        a fault inferred from demand is sized from the measured loads, and not believed where they do not bear
        it out. True when the beliefs changed."""
        fault = cause.fault
        if fault is None or not fault.behaviour.actionable or cause.score < MIN_SCORE:
            return False
        update: dict[str, float] = {"at_minute": frame.minute}  # believed from the minute it was localised
        name = f"{cause.kind}:{cause.target}"
        if fault.behaviour.inferred:
            # As large as the links measure it (the localiser's hypothesis is of a fixed size).
            now = self.crowd_multiplier(fault, frame.link_load, frame.link_up, frame.minute)
            before = self.before_incident
            usual = self.crowd_multiplier(fault, before.loads, before.up, before.minute) \
                if before is not None else 1.0
            update["multiplier"] = now / usual if usual > 0 else now
            if update["multiplier"] < MIN_CROWD:
                return False  # (a crowd believed already keeps the usual level it was sized against)
            self._usual[name] = usual
        else:
            # As the frame measures it, where it can (a degraded link's capacity left), not the hypothesis's size;
            # where it cannot (a drained link carries too little to tell), as it was believed before, if it was.
            previous = self.faults.get(name)
            if previous is not None:
                update |= {param: getattr(previous, param) for param in fault.behaviour.params}
            update |= fault.behaviour.measured(fault, frame, self.estimate.arrays)
        self.faults[name] = fault.model_copy(update=update)
        return True

    def adopt_ranked(self, causes: list[Cause], frame: KpiFrame) -> bool:
        """Believe the top cause (``adopt``); when it is a fault inferred from demand that the measured loads do
        not bear out (a crowd that is not there), go down the ranking past such faults to the first cause that
        explains enough, and believe it only if it is a crowd the loads bear out or a fault that holds a metric
        whose routing fits the measured loads better than the routing without it: a misconfiguration moves
        traffic, and the localiser can read the traffic it moved as a crowd at one end. True when the beliefs
        changed."""
        if not causes or self.adopt(causes[0], frame):
            return bool(causes)
        for cause in causes:
            fault = cause.fault
            if fault is None or cause.score < MIN_SCORE:
                return False
            if not fault.behaviour.inferred:  # the first cause below the crowds (or a top cause not believed)
                return cause is not causes[0] and fault.behaviour.holds_metric and \
                    self._adopt_if_routing_fits(cause, frame)
            if cause is not causes[0] and self.adopt(cause, frame):
                return True
        return False

    def _adopt_if_routing_fits(self, cause: Cause, frame: KpiFrame) -> bool:
        """Believe ``cause`` (a fault that holds a metric) only if the measured loads fit the routing with it
        strictly better than without it; a fault believed already is left as it is."""
        key = f"{cause.kind}:{cause.target}"
        if key in self.faults or not self.adopt(cause, frame):
            return False
        with_it, without = self._routing_misfit(key, frame)
        if with_it < without * (1.0 - ROUNDING):
            return True
        del self.faults[key]
        return False

    def expire(self, frame: KpiFrame, *, held_metrics: bool | None = None) -> list[str]:
        """Drop each believed fault that no longer shows in the frame, or, when inferred from demand or holding
        a metric, that the measured loads no longer bear out; ``held_metrics``: only the faults that hold a
        metric (True), only the others (False), all (None). The keys of those dropped."""
        ending = self.ending(frame, held_metrics=held_metrics)
        for key in ending:
            del self.faults[key]
        return ending

    def ending(self, frame: KpiFrame, *, held_metrics: bool | None = None) -> list[str]:
        """The believed faults ``expire`` would drop on this frame (``held_metrics`` as there), dropping none."""
        ending = []
        for key, fault in self.faults.items():
            kind = fault.behaviour
            if held_metrics is not None and kind.holds_metric != held_metrics:
                continue
            if not kind.shows_in(fault, frame, self.estimate.arrays) or \
                    (kind.inferred and not self._still_evident(key, fault, frame)) or \
                    (kind.holds_metric and not self._routing_fits(key, frame)):
                ending.append(key)
        return ending

    def ending_together(self, frame: KpiFrame) -> list[str]:
        """Every believed fault that ends on this frame, each judged against the beliefs left once those that end
        before it in the judging are dropped: a misconfiguration at a router that was down shows nothing until
        the router is back, and then ends with it. Drops none (``expire`` drops them one judgement at a time)."""
        believed, self.faults = self.faults, dict(self.faults)  # judged on a copy that loses them one by one
        gone: list[str] = []
        try:
            while ending := self.ending(frame):
                gone += ending
                for key in ending:
                    del self.faults[key]
        finally:
            self.faults = believed
        return gone

    def give_up_inferred(self) -> bool:
        """A change built on the twin failed its check: the measurement refuted the twin. A fault inferred from
        demand is not an observed state, so it is the first belief to give up. True when any was."""
        inferred = [key for key, fault in self.faults.items() if fault.behaviour.inferred]
        for key in inferred:
            del self.faults[key]
        return bool(inferred)

    def _routing_fits(self, key: str, frame: KpiFrame) -> bool:
        """Whether the measured link loads fit the routing with the believed fault ``key`` (a metric it holds)
        at least as well as the routing without it: a misconfiguration shows only in where the traffic goes, so
        it is believed while it explains that better than its absence (once the metric is put right, the loads
        go back to the configured routing). Each routing's loads are scaled to the measured ones by least
        squares, so the demand's level does not decide it."""
        with_it, without = self._routing_misfit(key, frame)
        return with_it <= without * (1.0 + ROUNDING)

    def _routing_misfit(self, key: str, frame: KpiFrame) -> tuple[float, float]:
        """How far the measured link loads are from the routing with the believed faults, and with them less
        ``key``: the sums of squares after each routing's loads are scaled to the measured ones."""
        twin = self.estimate.twin
        fits = []
        for faults in (list(self.faults.values()), [f for k, f in self.faults.items() if k != key]):
            expected, metric = self.estimate.twin_at(frame.minute, faults)
            up = expected.link_up & frame.link_up
            predicted = twin.link_loads(expected.volume, metric, up)[up]
            measured = frame.link_load[up]
            scale = float(predicted @ measured) / max(float(predicted @ predicted), 1e-12)
            fits.append(float(np.square(measured - scale * predicted).sum()))
        return fits[0], fits[1]

    def _still_evident(self, key: str, crowd: Fault, frame: KpiFrame) -> bool:
        """Whether the crowd is still there: at least half the surplus believed (a crowd is an inference about
        demand, kept only while the measurements bear it out; a busy hour's ramp can look like one for a few
        minutes)."""
        usual = self._usual.get(key, 1.0)
        now = self.crowd_multiplier(crowd, frame.link_load, frame.link_up, frame.minute)
        return now >= usual * (1.0 + 0.5 * (crowd.multiplier - 1.0))

    def crowd_multiplier(self, crowd: Fault, loads: np.ndarray, up: np.ndarray, minute: float) -> float:
        """How many times its usual traffic the crowd's region (as the twin models it) exchanges with the
        rest, from the link loads: loads are linear in demand, so they are fitted as the twin's loads of the
        pairs with one end in the region times one level, plus the rest's times another, and the multiplier
        is the ratio of the two levels."""
        estimate = self.estimate
        twin = estimate.twin
        region = crowd.behaviour.demand_region(crowd, estimate.network, estimate.arrays)
        assert region is not None
        others = [f for f in self.faults.values() if not f.behaviour.inferred]
        expected, metric = estimate.twin_at(minute, others)
        up = expected.link_up & up
        own = region[twin.pairs[:, 0]] ^ region[twin.pairs[:, 1]]
        inside = region[twin.pairs[:, 0]] & region[twin.pairs[:, 1]]
        basis = np.column_stack([twin.link_loads(np.where(own, expected.volume, 0.0), metric, up),
                                 twin.link_loads(np.where(own | inside, 0.0, expected.volume), metric, up)])[up]
        if not basis[:, 0].any() or not basis[:, 1].any():
            return 1.0
        levels, _ = scipy.optimize.nnls(basis, loads[up])
        return float(np.clip(levels[0] / levels[1], 0.0, 10.0)) if levels[1] > ROUNDING * levels.sum() else 1.0
