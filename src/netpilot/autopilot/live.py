"""A live autopilot: the simulator ticking in a background thread with the loop acting on it, and the state the
API and dashboard read (latest utilisation, series, incidents, forecasts)."""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from netpilot.autopilot.loop import Autopilot, Tick
from netpilot.change.actuate import reconcile
from netpilot.change.drivers import SimulatorDriver
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.model.faults import Fault, name_faults
from netpilot.model.frame import KpiFrame
from netpilot.model.network import Network
from netpilot.model.twin import DEFAULT_START
from netpilot.telemetry.sim.simulator import Simulator


class LiveAutopilot:
    """Runs ``Autopilot`` over a ``Simulator`` at ``tick_seconds`` of wall time per simulated step.

    ``policy`` decides which changes skip the person (none by default: the dashboard's approver decides).
    ``changes_db`` is the SQLite workflow file (``:memory:`` for a throwaway run)."""

    def __init__(self, network: Network, *, faults: list[Fault] | None = None, seed: int = 0,
                 step_seconds: float = 60.0, tick_seconds: float = 1.0, start: datetime = DEFAULT_START,
                 policy: Policy | None = None, changes_db: str | Path = ":memory:", congestion: float = 0.9,
                 keep: int = 720, **autopilot_options: Any) -> None:
        self.network = network
        self.tick_seconds = tick_seconds
        self.simulator = Simulator(network, seed=seed, step_seconds=step_seconds, start=start,
                                   faults=name_faults(list(faults or [])))
        self.changes = ChangeStore(changes_db, policy or Policy())
        self.autopilot = Autopilot(network, self.changes, SimulatorDriver(network, self.simulator),
                                   congestion=congestion, keep=keep, **autopilot_options)
        # Changes a crash left half applied end confirmed or rolled back before the loop acts again.
        self.recovered = reconcile(self.changes, self.autopilot.driver, self.autopilot.actor)
        self.lock = threading.RLock()
        self.latest: KpiFrame | None = None
        self.latest_tick: Tick | None = None
        self.ticks = 0
        self.load_history: deque[np.ndarray] = deque(maxlen=keep)
        self.times: deque[str] = deque(maxlen=keep)
        # When each tick began on the wall clock (ISO, UTC), beside its simulated time: the audit log is written
        # in wall time, and the dashboard shows one clock, the simulated one.
        self.wall_times: deque[str] = deque(maxlen=keep)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> Tick:
        """One tick: the network moves a step and the loop observes it."""
        with self.lock:
            began = datetime.now(UTC).isoformat(timespec="microseconds")
            result = self.simulator.step()
            tick = self.autopilot.observe(result)
            self.latest, self.latest_tick = result, tick
            self.load_history.append(np.where(result.link_up, result.link_utilisation, 0.0))
            self.times.append(result.ts.isoformat())
            self.wall_times.append(began)
            self.ticks += 1
            return tick

    def simulated_time(self, wall: str) -> str | None:
        """The simulated time of the tick under way (or last begun) at ``wall`` (ISO, UTC, as the audit log writes
        it); None before the ticks kept."""
        with self.lock:
            i = bisect.bisect_right(list(self.wall_times), wall) - 1
            return self.times[i] if i >= 0 else None

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

    def series(self, link_index: int) -> tuple[list[str], list[float]]:
        with self.lock:
            return list(self.times), [float(u[link_index]) for u in self.load_history]
