"""The live loop over the simulator: ``Autopilot`` ticking in real time on a simulated network (the demo, the
API's default), with the AI-RAN of its cells and edge sites beside it (optional); the one place a live loop meets
``telemetry.sim``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from netpilot.autopilot.live import LiveLoop
from netpilot.autopilot.ran import LiveRan, RanSettings
from netpilot.change.drivers import SimulatorDriver
from netpilot.change.ran import SimulatedRanDriver
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.model.faults import Fault, name_faults
from netpilot.model.frame import KpiFrame
from netpilot.model.network import Network
from netpilot.model.ran import RanConfig, RanFrame, topology_of
from netpilot.model.twin import DEFAULT_START
from netpilot.scenarios.ran import static_config
from netpilot.telemetry.sim.airan import AiRanSimulator, LlmTrace, RanEvent, read_llm_trace, services_for
from netpilot.telemetry.sim.simulator import Simulator


class SimulatedRan(LiveRan):
    """The AI-RAN of ``network``'s cell sites and edge sites (``model.ran.topology_of``) on the AI-RAN simulator,
    one tick of ``step_minutes`` per live tick from ``start`` (its hour of the week sets the load), starting from
    the static split and placement (``scenarios.ran.static_config``) with the RAN's full need reserved."""

    def __init__(self, network: Network, changes: ChangeStore, *, seed: int = 0, start: datetime = DEFAULT_START,
                 step_minutes: float = 1.0, trace: LlmTrace | None = None, events: list[RanEvent] | None = None,
                 settings: RanSettings | None = None, keep: int = 720) -> None:
        trace = trace or read_llm_trace()
        topology = topology_of(network, services=services_for(trace))
        hour = start.weekday() * 24 + start.hour + start.minute / 60.0
        self.simulator = AiRanSimulator(topology, seed=seed, step_minutes=step_minutes, start_hour=hour,
                                        events=events, trace=trace)
        driver = SimulatedRanDriver(topology, static_config(topology, self.simulator))
        driver.reserved = np.minimum(topology.ran_gpus(topology.prbs), topology.gpus)
        super().__init__(topology, network, driver, changes, settings, keep)

    def next_frame(self, running: RanConfig) -> RanFrame:
        frame, _truth = self.simulator.step(running)
        return frame


class LiveAutopilot(LiveLoop):
    """Runs ``Autopilot`` over a ``Simulator`` at ``tick_seconds`` of wall time per simulated step.

    ``policy`` decides which changes skip the person (none by default: the dashboard's approver decides).
    ``changes_db`` is the SQLite workflow file (``:memory:`` for a throwaway run). ``ran``: also run the AI-RAN
    of the network's cell and edge sites (``SimulatedRan``), its slicing and placement changes in the same
    workflow under the same policy; ``ran_settings`` tunes its planners."""

    def __init__(self, network: Network, *, faults: list[Fault] | None = None, seed: int = 0,
                 step_seconds: float = 60.0, tick_seconds: float = 1.0, start: datetime = DEFAULT_START,
                 policy: Policy | None = None, changes_db: str | Path = ":memory:", congestion: float = 0.9,
                 keep: int = 720, ran: bool = False, ran_settings: RanSettings | None = None,
                 ran_trace: LlmTrace | None = None, **autopilot_options: Any) -> None:
        self.simulator = Simulator(network, seed=seed, step_seconds=step_seconds, start=start,
                                   faults=name_faults(list(faults or [])))
        super().__init__(network, SimulatorDriver(network, self.simulator), tick_seconds=tick_seconds,
                         policy=policy, changes_db=changes_db, congestion=congestion, keep=keep,
                         **autopilot_options)
        if ran:
            self.ran = SimulatedRan(network, self.changes, seed=seed, start=start, step_minutes=step_seconds / 60.0,
                                    trace=ran_trace, settings=ran_settings, keep=keep)

    def next_step(self) -> KpiFrame:
        return self.simulator.step()
