"""What the loop keeps of what it did: a record per tick (with its stage timings), incidents with their ranked
causes, the changes it applied with predicted and measured outcomes, and the recent KPI history."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netpilot.model.network import PathPolicy


@dataclass
class Incident:
    """Several KPIs jumped at once; ``causes`` holds the ranked root causes once localised; ``closed_at`` is set
    when the fault the loop believed from it ends (its KPIs look healthy again)."""

    id: str
    detected_at: str
    minute: float
    alarms: list[str]
    causes: list[dict[str, Any]] = field(default_factory=list)
    localised_at: str | None = None
    closed_at: str | None = None


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

    def outcome(self) -> dict[str, Any]:
        """Predicted beside measured MLU (measured is None until its check)."""
        return {"change": self.change_id, "mlu_before": self.mlu_before, "predicted_mlu": self.predicted_mlu,
                "measured_mlu": self.measured_mlu}


class Records:
    """The loop's history: the last ``keep`` snapshots (every compared KPI), their times and link
    utilisations; and every tick, incident and applied change."""

    def __init__(self, keep: int) -> None:
        self.snapshots: deque[np.ndarray] = deque(maxlen=keep)
        self.times: deque[str] = deque(maxlen=keep)
        self.utilisation: deque[np.ndarray] = deque(maxlen=keep)
        self.ticks: list[Tick] = []
        self.incidents: list[Incident] = []
        self.applied: list[Applied] = []

    def keep(self, ts: str, snapshot: np.ndarray, utilisation: np.ndarray) -> None:
        self.snapshots.append(snapshot)
        self.times.append(ts)
        self.utilisation.append(utilisation)

    def localised(self) -> int:
        """How many incidents have been localised."""
        return sum(i.localised_at is not None for i in self.incidents)


def latency_summary(ticks: list[Tick]) -> dict[str, Any]:
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
