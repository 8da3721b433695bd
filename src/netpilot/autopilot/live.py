"""A live autopilot: the loop ticking in a background thread over a network that runs in real time (an FRR lab
polled for its counters and OSPF state here; the simulator in ``netpilot.scenarios.live``), and the state the API
and dashboard read (latest utilisation, series, incidents, forecasts)."""

from __future__ import annotations

import bisect
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from netpilot.autopilot.loop import Autopilot, Tick
from netpilot.autopilot.ran import LiveRan
from netpilot.change.actuate import reconcile
from netpilot.change.drivers import NetworkDriver
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.model.frame import FrameLayout, KpiFrame, step_from_samples
from netpilot.model.network import Network


class LiveLoop(ABC):
    """``Autopilot`` over a network that moves in real time: each tick takes the network's next telemetry step
    (``next_step``, from a subclass) and the loop observes it, at most once every ``tick_seconds``."""

    def __init__(self, network: Network, driver: NetworkDriver, *, tick_seconds: float, policy: Policy | None,
                 changes_db: str | Path, congestion: float, keep: int, **autopilot_options: Any) -> None:
        self.network = network
        self.tick_seconds = tick_seconds
        self.changes = ChangeStore(changes_db, policy or Policy())
        self.autopilot = Autopilot(network, self.changes, driver, congestion=congestion, keep=keep,
                                   **autopilot_options)
        # Changes a crash left half applied end confirmed or rolled back before the loop acts again.
        self.recovered = reconcile(self.changes, self.autopilot.driver, self.autopilot.actor)
        self.lock = threading.RLock()
        self.latest: KpiFrame | None = None
        self.latest_tick: Tick | None = None
        self.ticks = 0
        self.load_history: deque[np.ndarray] = deque(maxlen=keep)
        self.times: deque[str] = deque(maxlen=keep)
        self.errors: list[str] = []
        # The AI-RAN beside the IP network (a subclass sets it): stepped with every tick, its changes in
        # ``changes`` beside the routing changes.
        self.ran: LiveRan | None = None
        # When each tick began on the wall clock (ISO, UTC), beside its simulated time: the audit log is written
        # in wall time, and the dashboard shows one clock, the simulated one.
        self.wall_times: deque[str] = deque(maxlen=keep)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def next_step(self) -> KpiFrame:
        """The network's telemetry for this tick (the simulator's next step, a poll of the lab)."""

    def step(self) -> Tick:
        """One tick: the network's next telemetry and the loop observing it."""
        with self.lock:
            began = datetime.now(UTC).isoformat(timespec="microseconds")
            result = self.next_step()
            tick = self.autopilot.observe(result)
            if self.ran is not None:
                self.ran.step()
            self.latest, self.latest_tick = result, tick
            self.load_history.append(np.where(result.link_up, result.link_utilisation, 0.0))
            self.times.append(result.ts.isoformat())
            self.wall_times.append(began)
            self.ticks += 1
            return tick

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="netpilot-autopilot", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                self.step()
            except Exception as exc:  # keep serving; the API shows what went wrong
                self.errors.append(f"{type(exc).__name__}: {exc}")
                if len(self.errors) > 100:
                    del self.errors[:50]
            self._stop.wait(max(0.0, self.tick_seconds - (time.perf_counter() - began)))

    def simulated_time(self, wall: str) -> str | None:
        """The simulated time of the tick under way (or last begun) at ``wall`` (ISO, UTC, as the audit log writes
        it); None before the ticks kept."""
        with self.lock:
            i = bisect.bisect_right(list(self.wall_times), wall) - 1
            return self.times[i] if i >= 0 else None

    def series(self, link_index: int) -> tuple[list[str], list[float]]:
        with self.lock:
            return list(self.times), [float(u[link_index]) for u in self.load_history]


class LabAutopilot(LiveLoop):
    """Runs ``Autopilot`` on an FRR lab built from ``network`` (``netpilot lab up``): each tick polls the
    routers' interface counters, daemons and OSPF state, and the loop's changes go to the routers through the
    FRR driver, commit-confirmed (``commit_confirm`` seconds, confirmed by the loop's post-check: the measured
    MLU ``check_seconds`` on, and every router forwarding as the twin of the change predicts). A change a crash
    left unconfirmed in ``journal`` is rolled back when the loop starts (``journal_recovered`` says what was
    found; ``recovered``, what start-up made of changes the workflow left applying or checking)."""

    def __init__(self, network: Network, lab: str, *, journal: str | Path, tick_seconds: float = 1.0,
                 policy: Policy | None = None, changes_db: str | Path = ":memory:", congestion: float = 0.9,
                 keep: int = 720, commit_confirm: float = 120.0, check_seconds: float = 10.0,
                 **autopilot_options: Any) -> None:
        from netpilot.change.drivers import FrrDriver
        from netpilot.change.drivers.frr.lab import Lab
        from netpilot.change.drivers.frr.telemetry import LabTelemetry

        the_lab = Lab(lab, network)
        driver = FrrDriver(the_lab, journal, await_routes=True)
        self.journal_recovered = driver.recover()
        self.telemetry = LabTelemetry(the_lab)
        self._layout = FrameLayout.of(network)  # the entity order the loop reads a step in
        self._started = time.monotonic()
        # The post-check measures the change once OSPF has moved the traffic: an LSA is re-originated at most
        # every 5 s (frr-reload removes a cost before setting the new one: two originations), then SPF runs.
        autopilot_options.setdefault("check_after", max(2, math.ceil(check_seconds / tick_seconds)))
        super().__init__(network, driver, tick_seconds=tick_seconds, policy=policy, changes_db=changes_db,
                         congestion=congestion, keep=keep, commit_confirm=commit_confirm, **autopilot_options)
        self.lab = the_lab

    def next_step(self) -> KpiFrame:
        now = datetime.now(UTC)
        return step_from_samples(self._layout, self.telemetry.poll(now), now,
                                 (time.monotonic() - self._started) / 60.0)
