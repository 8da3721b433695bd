"""The tick's time budget: which heavy stage runs on this tick, how long the plan search may take, and whether a
plan found now can still be verified before the tick is over."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np


class TickBudget:
    """One tick's share of the work, tick after tick.

    With ``ms`` set, a tick aims to finish within ``ms`` of its sample arriving: a heavy stage runs when its
    measured cost (a moving average) fits in what is left, and one that did not fit runs on the next tick whatever
    the budget, so none waits more than a tick. The plan search gets what is left, between ``0.2 * plan_seconds``
    and ``plan_seconds``. With ``ms=None`` every stage runs when asked (a fixed amount of work per tick, chosen
    by the caller), so the same telemetry gives the same decisions on any machine. ``clock`` reads the time in
    seconds (``time.perf_counter``; a test passes its own, so what fits never depends on the machine's speed)."""

    def __init__(self, ms: float | None, plan_seconds: float,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.ms = ms
        self.clock = clock
        self.plan_seconds = plan_seconds
        self.deadline: float | None = None
        # Measured cost of each heavy stage (ms), to tell whether it fits in what is left of a tick.
        self._cost = {"forecast": 20.0, "baseline": 40.0}
        self._verify_ms: deque[float] = deque(maxlen=8)
        self._deferred: set[str] = set()  # stages that did not fit in the last tick: they run this one

    @property
    def fixed_work(self) -> bool:
        return self.ms is None

    def start(self, started: float) -> float | None:
        """A new tick whose sample arrived at ``started`` (``time.perf_counter``): its deadline, if it has one."""
        self.deadline = None if self.ms is None else started + self.ms / 1000.0
        return self.deadline

    def fits(self, stage: str) -> bool:
        """Whether ``stage`` fits in what is left of the tick; one that did not fit last tick runs now anyway."""
        if self.deadline is None or stage in self._deferred or \
                self.clock() + self._cost[stage] / 1000.0 <= self.deadline:
            self._deferred.discard(stage)
            return True
        self._deferred.add(stage)
        return False

    def spent(self, stage: str, since: float) -> float:
        """Milliseconds ``stage`` took since ``since``, kept in its measured cost."""
        spent = (self.clock() - since) * 1000.0
        self._cost[stage] = 0.7 * self._cost[stage] + 0.3 * spent
        return spent

    def search_seconds(self) -> float | None:
        """Seconds the plan search may take this tick, or None to wait a tick (too little left, and it did not
        wait last tick). Only with a deadline."""
        assert self.deadline is not None, "only a tick with a deadline has a search budget"
        left = self.deadline - self.clock() - 0.01
        if left < 0.2 * self.plan_seconds and "decide" not in self._deferred:
            self._deferred.add("decide")
            return None
        self._deferred.discard("decide")
        return float(np.clip(left, 0.2 * self.plan_seconds, self.plan_seconds))

    def verified(self, ms: float) -> None:
        """A verification took ``ms``."""
        self._verify_ms.append(ms)

    def room_to_verify(self) -> bool:
        """Whether a plan found now can be verified before the deadline (the slowest of the last verifications,
        and 5 ms to spare); with a fixed amount of work, never: the next tick verifies it, on its own sample."""
        return self.deadline is not None and \
            self.clock() + (max(self._verify_ms, default=50.0) + 5.0) / 1000.0 <= self.deadline
