"""The loop's estimate of the network at this tick: the twin under the believed faults at the telemetry's time,
running what the driver runs, its demand corrected to the measured link loads, the capacity the counters
report, and the margin verification adds for what the estimate may miss."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np

from netpilot.analytics.rca import Snapshot
from netpilot.analytics.tomography import tomogravity
from netpilot.autopilot.settings import EstimateSettings
from netpilot.model.faults import Fault
from netpilot.model.frame import KpiFrame, measured_capacity
from netpilot.model.network import Network, PathPolicy
from netpilot.model.twin import Expected, Twin


@dataclass
class PlanState:
    """What a plan is made on: the demand per pair (corrected, scaled to the measured total), the links up, their
    capacity (inf where none is known), the metrics running (a believed misconfiguration's held metric on its
    links), the links whose metric a believed fault holds (``held``: no plan changes them) and the metrics
    configured (``configured``: what the network's configuration says, held links included)."""

    volume: np.ndarray
    link_up: np.ndarray
    capacity: np.ndarray
    metric: np.ndarray
    held: np.ndarray
    configured: np.ndarray

    def refuted_key(self, metric: np.ndarray, policies: Iterable[PathPolicy]) -> bytes:
        """``plan_key`` of a plan whose routers run ``metric``, as the configuration would hold it (held links at
        their configured metric): how the actuator records a plan the network refuted."""
        return plan_key(np.where(self.held, self.configured, metric), policies)


def plan_key(metric: np.ndarray, policies: Iterable[PathPolicy]) -> bytes:
    """What a plan runs, to recognise one the network has already refuted."""
    return metric.tobytes() + "|".join(p.model_dump_json() for p in policies).encode()


class Estimate:
    """The twin as the loop sees the network. ``running`` gives the configuration the network runs now (the
    driver's)."""

    def __init__(self, network: Network, settings: EstimateSettings, running: Callable[[], Network]) -> None:
        self.network = network
        self.settings = settings
        self._running = running
        self.twin = Twin(network)  # the planner's view of the network, faults as believed
        self.arrays = network.arrays()
        self.margin = settings.demand_margin  # the demand margin verification uses now (grows when off)
        self.measured_up = np.ones(self.arrays.n_links, dtype=bool)  # links up in the latest sample
        self.measured_capacity = np.full(self.arrays.n_links, np.nan)  # what it reports they carry at most
        self._metric_of: tuple[Network, np.ndarray] | None = None  # the running network and its metrics
        self._correction: tuple[tuple[Any, ...], int, np.ndarray] | None = None  # (for what, fitted at, per pair)

    @property
    def running(self) -> Network:
        return self._running()

    def align_clocks(self, frame: KpiFrame, *twins: Twin) -> None:
        """The twins' minute 0 set to the telemetry's, so a minute is the same time of day to all: the twins'
        demand follows the day's profile, and a twin hours off the network's clock expects the night's load in
        the busy hour (a level the demand scaling cannot always make up, and a wrong one where it does not
        reach)."""
        start = frame.ts - timedelta(minutes=frame.minute)
        for twin in (self.twin, *twins):
            twin.start = start

    def measure(self, frame: KpiFrame) -> None:
        """Take what the latest frame says of the links: which are up, and the capacity their counters imply."""
        self.measured_up = frame.link_up
        self.measured_capacity = measured_capacity(frame)

    def running_metric(self) -> np.ndarray:
        """The IGP metrics the network runs, read once per running configuration (``arrays()`` is not free);
        the twin takes them and the explicit path policies at the same time."""
        running = self.running
        if self._metric_of is None or self._metric_of[0] is not running:
            self._metric_of = (running, running.arrays().metric)
            self.twin.set_metrics(self._metric_of[1])
            self.twin.set_policies(running.policies)
        return self._metric_of[1]

    def twin_at(self, minute: float, faults: list[Fault]) -> tuple[Expected, np.ndarray]:
        """The twin's noise-free state at ``minute`` under ``faults``, running what the network runs:
        (expected state, the metrics the routers run: the configured ones, with what a fault among ``faults``
        holds over them, as the routers compose them)."""
        configured = self.running_metric()
        self.twin.faults = list(faults)
        self.twin.minute = minute
        expected = self.twin.expected()
        # The configured array itself where no fault holds a metric: the routing caches key on its bytes anyway,
        # and a plan compares against it.
        return expected, configured if np.array_equal(expected.metric, configured) else expected.metric

    def held_links(self, faults: Iterable[Fault]) -> np.ndarray:
        """The links whose IGP metric one of ``faults`` holds whatever is configured (a misconfiguration)."""
        held = np.zeros(self.arrays.n_links, dtype=bool)
        for fault in faults:
            if fault.behaviour.holds_metric:
                held[fault.behaviour.links(fault, self.arrays)] = True
        return held

    def expected_values(self, frame: KpiFrame, beliefs: Mapping[str, Fault]) -> np.ndarray:
        """The snapshot the twin expects at this tick: believed faults, running metrics, its demand scaled to
        the load measured on the links both see up."""
        expected, metric = self.twin_at(frame.minute, list(beliefs.values()))
        predicted = self.twin.link_loads(expected.volume, metric, expected.link_up)
        scale = load_ratio(frame, predicted, frame.link_up & expected.link_up)
        replayed = self.twin.replay([self.twin.faults], scale=float(np.clip(scale, 0.25, 4.0)))[0]
        return Snapshot.from_step(replayed).values

    def plan_state(self, frame: KpiFrame, beliefs: Mapping[str, Fault], since: tuple[Any, ...], tick: int
                   ) -> PlanState:
        """The twin under the believed faults at this minute, its demand per pair corrected to what the measured
        link loads imply, and scaled to the measured total load; and the verification margin for it. ``since``
        says what the correction was fitted for (the correction is refitted when it changes); ``tick`` is the
        tick's number."""
        expected, metric = self.twin_at(frame.minute, list(beliefs.values()))
        expected.link_up = expected.link_up & frame.link_up  # a link measured down is down, believed or not
        expected.capacity = self.capacity_of(expected)
        expected.volume = expected.volume * self._demand_correction(frame, expected, metric, since, tick)
        predicted = self.twin.link_loads(expected.volume, metric, expected.link_up)
        measured = float(frame.link_load[frame.link_up].sum())
        scale = measured / max(float(predicted[expected.link_up].sum()), 1e-9)
        volume = expected.volume * float(np.clip(scale, 0.25, 4.0))
        capacity = np.where(expected.capacity > 0, expected.capacity, np.inf)
        # Where the estimate under-predicts a busy link's measured load, verification must not trust it more
        # than that: the margin grows to cover the worst under-prediction (a crowd the loop has not localised).
        estimate = predicted * (volume.sum() / max(expected.volume.sum(), 1e-9))
        busy = frame.link_up & (frame.link_utilisation > 0.5) & (estimate > 0)
        shortfall = float((frame.link_load[busy] / estimate[busy]).max(initial=1.0)) - 1.0
        self.margin = float(np.clip(shortfall, self.settings.demand_margin, 1.0))
        return PlanState(volume, expected.link_up, capacity, metric, self.held_links(beliefs.values()),
                         self.running_metric())

    def _demand_correction(self, frame: KpiFrame, expected: Expected, metric: np.ndarray, since: tuple[Any, ...],
                           tick: int) -> np.ndarray:
        """Per pair, the measured demand over the twin's (tomogravity on the measured link loads), refitted every
        ``refit_every`` ticks, and when the beliefs, the metrics or the policies change or an incident begins or
        is localised (``since``: the demand may have changed shape). Between fits only the level moves, so the
        verification's baseline stays valid (it scales)."""
        key = (*since, plan_key(metric, self.running.policies))
        if self._correction is not None and self._correction[0] == key and \
                tick - self._correction[1] < self.settings.refit_every:
            return self._correction[2]
        measured = frame.link_up & expected.link_up
        matrix = self.twin.routing_matrix(metric, expected.link_up)[measured]
        prior = expected.volume * float(frame.link_load[measured].sum()) / \
            max(float((matrix @ expected.volume).sum()), 1e-9)
        fitted = tomogravity(matrix, frame.link_load[measured], prior)
        correction = np.where(prior > 0, fitted / np.where(prior > 0, prior, 1.0), 1.0)
        self._correction = (key, tick, correction)
        return correction

    def capacity_of(self, expected: Expected) -> np.ndarray:
        """Each link's capacity as the latest sample reports it (load over utilisation: a LAG that lost
        members, a degraded line), else as the twin believes it."""
        measured = self.measured_capacity
        # Counters agree with the model to their rounding: the model's figure, so the network stays the same one
        # from tick to tick (verification's baseline is kept per network).
        differs = np.isfinite(measured) & (np.abs(measured - expected.capacity) > 0.01 * expected.capacity)
        return np.where(differs, np.round(measured, 1), expected.capacity)

    def believed_network(self, beliefs: Mapping[str, Fault]) -> Network:
        """The running network as the loop believes it is: the twin's own fault model applied to the believed
        faults (links down, a failed router's links down, a degraded link at the capacity it has left, a
        misconfigured link at the metric it holds), and every link the latest sample measured down."""
        expected, _ = self.twin_at(self.twin.minute, list(beliefs.values()))
        link_up = expected.link_up & self.measured_up  # a link measured down is down, believed or not
        expected.capacity = self.capacity_of(expected)
        running = self.running
        links = list(running.links)
        changed = False
        for e, (up, capacity) in enumerate(zip(link_up.tolist(), expected.capacity.tolist(), strict=True)):
            state = "up" if up else "down"
            if state != links[e].state or (up and capacity != links[e].capacity):
                links[e] = links[e].model_copy(update={"state": state, **({"capacity": capacity} if up else {})})
                changed = True
        return self.keep_held(running.model_copy(update={"links": links}) if changed else running, beliefs)

    def keep_held(self, network: Network, beliefs: Mapping[str, Fault]) -> Network:
        """``network`` (the running one, or a change applied to the believed one) with every link a believed fault
        holds at the metric it holds: whatever is configured there, the routers run the held one while it
        lasts."""
        held = self.held_links(beliefs.values())
        if not held.any():
            return network
        _, metric = self.twin_at(self.twin.minute, list(beliefs.values()))
        links = list(network.links)
        for e in np.flatnonzero(held).tolist():
            if links[e].metric != int(metric[e]):
                links[e] = links[e].model_copy(update={"metric": int(metric[e])})
        return network.model_copy(update={"links": links})

    def verification_volume(self, volume: np.ndarray, beliefs: Mapping[str, Fault]) -> np.ndarray:
        """The demand verification checks against: the estimate with the margin, and the pairs of a believed
        fault inferred from demand (a crowd) with ``crowd_margin`` more (its size is an estimate from a few
        samples, and where its traffic goes under a failure depends on it)."""
        volume = volume * (1.0 + self.margin)
        for fault in beliefs.values():
            region = fault.behaviour.demand_region(fault, self.network, self.arrays) \
                if fault.behaviour.inferred else None
            if region is not None:
                own = region[self.twin.pairs[:, 0]] | region[self.twin.pairs[:, 1]]
                volume = np.where(own, volume * (1.0 + self.settings.crowd_margin), volume)
        return volume


def load_ratio(frame: KpiFrame, predicted: np.ndarray, over: np.ndarray) -> float:
    """The load the network measures over the twin's prediction, summed over the links ``over``."""
    return float(frame.link_load[over].sum()) / max(float(predicted[over].sum()), 1e-9)
