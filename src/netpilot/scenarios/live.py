"""The live loop over the simulator: ``Autopilot`` ticking in real time on a simulated network (the demo, the
API's default), the one place a live loop meets ``telemetry.sim``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from netpilot.autopilot.live import LiveLoop
from netpilot.change.drivers import SimulatorDriver
from netpilot.change.workflow import Policy
from netpilot.model.faults import Fault, name_faults
from netpilot.model.frame import KpiFrame
from netpilot.model.network import Network
from netpilot.model.twin import DEFAULT_START
from netpilot.telemetry.sim.simulator import Simulator


class LiveAutopilot(LiveLoop):
    """Runs ``Autopilot`` over a ``Simulator`` at ``tick_seconds`` of wall time per simulated step.

    ``policy`` decides which changes skip the person (none by default: the dashboard's approver decides).
    ``changes_db`` is the SQLite workflow file (``:memory:`` for a throwaway run)."""

    def __init__(self, network: Network, *, faults: list[Fault] | None = None, seed: int = 0,
                 step_seconds: float = 60.0, tick_seconds: float = 1.0, start: datetime = DEFAULT_START,
                 policy: Policy | None = None, changes_db: str | Path = ":memory:", congestion: float = 0.9,
                 keep: int = 720, **autopilot_options: Any) -> None:
        self.simulator = Simulator(network, seed=seed, step_seconds=step_seconds, start=start,
                                   faults=name_faults(list(faults or [])))
        super().__init__(network, SimulatorDriver(network, self.simulator), tick_seconds=tick_seconds,
                         policy=policy, changes_db=changes_db, congestion=congestion, keep=keep,
                         **autopilot_options)

    def next_step(self) -> KpiFrame:
        return self.simulator.step()
