"""Synthetic telemetry: the twin stepped through time with demand noise, the events an NMS would raise, and the
ground truth of the faults it injects. The network's behaviour itself (faults, routing, KPIs) is the twin's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from netpilot.model.faults import Fault, name_faults
from netpilot.model.frame import KpiFrame
from netpilot.model.network import Network
from netpilot.model.twin import DEFAULT_START, Twin
from netpilot.telemetry.schema import Event, FaultRecord

CONGESTED = 0.9
LOSSY = 0.01


@dataclass
class SimulatedFrame(KpiFrame):
    """A frame the simulator made, with the events an NMS would have raised during it."""

    events: list[Event] = field(default_factory=list)


class Simulator(Twin):
    """Deterministic for a given ``seed``. Call ``step()`` repeatedly; change routing between steps with
    ``set_metrics`` or ``set_path_splits``; inject faults at any time with ``inject``."""

    def __init__(self, network: Network, *, seed: int = 0, step_seconds: float = 60.0,
                 start: datetime = DEFAULT_START, faults: list[Fault] | None = None,
                 profile: np.ndarray | None = None, noise: float = 0.08) -> None:
        super().__init__(network, seed=seed, start=start, faults=name_faults(list(faults or [])), profile=profile)
        self.step_seconds = float(step_seconds)
        self.noise = noise
        self.truth: list[FaultRecord] = []
        self.carried: np.ndarray | None = None  # the demand per pair the last step carried, noise included
        self._ar = np.zeros(len(self.pairs))
        self._previous: dict[str, np.ndarray] = {}

    def inject(self, fault: Fault) -> Fault:
        """Schedule a fault (``at_minute`` counts from the start of the run, as in a fault file)."""
        named = fault if fault.id else fault.model_copy(update={"id": f"F{len(self.faults) + 1}-{fault.kind}"
                                                                      f"@{fault.at_minute:g}"})
        self.check(named)
        self.faults.append(named)
        return named

    def step(self) -> SimulatedFrame:
        """Advance one step and report what the network measured during it."""
        state = self.state()
        self._record_truth()
        phi = 0.9
        self._ar = phi * self._ar + np.sqrt(1 - phi * phi) * self.rng.standard_normal(len(self.pairs))
        noise = np.exp(self.noise * self._ar - self.noise ** 2 / 2)
        volume = self.volume(state) * noise
        self.carried = volume
        loads, blackholed = self.routed_loads(volume, state.metric, state.link_up)
        result = self.measure(state, volume, loads, blackholed,
                               self.rng.lognormal(0.0, 0.05, len(self.cells)))
        frame = SimulatedFrame(**vars(result), events=self._events(result))
        self.minute += self.step_seconds / 60.0
        return frame

    # --- what an operator sees --------------------------------------------------------------------------------

    def _events(self, r: KpiFrame) -> list[Event]:
        events: list[Event] = []
        checks = [
            ("link_up", r.link_up, self.link_ids, "link_down", "critical", "link down", True),
            ("node_up", r.node_up, self.node_ids, "node_down", "critical", "router unreachable", True),
            ("cell_up", r.cell_up, self.cell_ids, "cell_down", "critical", "cell out of service", True),
            ("edge_up", r.edge_up, self.edge_ids, "edge_site_down", "critical", "edge GPU site down", True),
            ("congested", (r.link_utilisation > CONGESTED) & r.link_up, self.link_ids, "congestion", "warning",
             f"utilisation above {CONGESTED:.0%}", False),
            ("lossy", (r.link_loss > LOSSY) & r.link_up, self.link_ids, "high_loss", "major",
             f"loss above {LOSSY:.0%}", False),
        ]
        for name, now, ids, kind, severity, text, alarm_when_false in checks:
            bad = ~now if alarm_when_false else now
            before = self._previous.get(name, np.zeros_like(bad))
            for i in np.flatnonzero(bad & ~before):
                events.append(Event(r.ts, ids[i], kind, severity, text))
            for i in np.flatnonzero(~bad & before):
                events.append(Event(r.ts, ids[i], kind, "cleared", f"{text}: cleared"))
            self._previous[name] = bad
        return events

    def _record_truth(self) -> None:
        known = {t.fault_id for t in self.truth}
        for fault in self.faults:
            if fault.id is not None and fault.id not in known and fault.active(self.minute):
                end = None if fault.duration_minutes is None else \
                    self.start + timedelta(minutes=fault.at_minute + fault.duration_minutes)
                params = {name: getattr(fault, name) for name in fault.behaviour.params}
                target = fault.behaviour.target(fault).record_name
                self.truth.append(FaultRecord(fault.id, fault.kind, target,
                                              self.start + timedelta(minutes=fault.at_minute), end, params))


# Compatibility only: the frame type and its codec moved to netpilot.model.frame (StepResult is KpiFrame); the
# FRR lab's test and code written against the old names still read them from here.
from netpilot.model.frame import (  # noqa: E402,F401
    METRIC_NAMES,
    entity_names,
    sample_codes,
    sample_columns,
    step_from_samples,
    steps_from_store,
)

StepResult = KpiFrame
