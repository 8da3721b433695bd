"""The mock drivers: the twin alone (``twin://``) and the running simulator (``sim://``), whose devices are the
twin, so their forwarding is the twin's by construction. The twin takes every intent kind; the simulator every
kind but link states (its links fail by injected faults)."""

from __future__ import annotations

from netpilot.change.drivers.base import INTENT_KINDS, Capabilities, ConfigDiff, DriverError, NetworkDriver
from netpilot.change.drivers.frr.render import config_diff
from netpilot.model.network import Network


class TwinDriver(NetworkDriver):
    """The twin as a device: the running state is a Network, a commit swaps it in."""

    schemes = ("twin",)

    def __init__(self, network: Network) -> None:
        super().__init__()
        self._running = network
        self.candidate: Network | None = None
        self._previous: Network | None = None

    @classmethod
    def from_url(cls, url: str, network: Network, **options: object) -> TwinDriver:
        return cls(network)

    def running(self) -> Network:
        return self._running

    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset(INTENT_KINDS))

    def _stage(self, candidate: Network) -> None:
        self.candidate = candidate

    def compare(self) -> ConfigDiff:
        if self.candidate is None:
            raise DriverError("no candidate loaded")
        # The configuration these intents would be on routers: the FRR rendering, vendor-neutral enough to read.
        return ConfigDiff(config_diff(self._running, self.candidate))

    def commit(self, confirm: float | None = None) -> None:
        if self.candidate is None:
            raise DriverError("no candidate loaded")
        self._previous, self._running, self.candidate = self._running, self.candidate, None
        self.reverted.clear()
        self._timer.arm(confirm, self._expire)
        self._committed()

    def _expire(self) -> None:
        self.rollback()
        self.reverted.set()

    def confirm(self) -> None:
        self._timer.cancel()

    def rollback(self) -> None:
        self._timer.cancel()
        if self._previous is not None:
            self._running, self._previous = self._previous, None
            self._committed()

    def _committed(self) -> None:
        """Called whenever the running state changed (a subclass pushes it somewhere)."""


class SimulatorDriver(TwinDriver):
    """The simulator as the network under control: committing a candidate pushes its IGP metrics and explicit
    path policies into the running simulation, and a rollback pushes the previous ones back."""

    schemes = ("sim",)

    def __init__(self, network: Network, simulator) -> None:
        super().__init__(network)
        self.simulator = simulator

    @classmethod
    def from_url(cls, url: str, network: Network, **options: object) -> SimulatorDriver:
        simulator = options.get("simulator")
        if simulator is None:
            raise DriverError("sim:// drives a running simulator: pass simulator=")
        return cls(network, simulator)

    def capabilities(self) -> Capabilities:
        # A simulated link goes down by a fault the scenario injects, not by configuration.
        return Capabilities(frozenset(INTENT_KINDS) - {"set_link_state"},
                            {"set_link_state": "the simulator takes IGP metric and path policy changes only; "
                                              "apply it with a device driver"})

    def _committed(self) -> None:
        self.simulator.set_metrics(self._running.arrays().metric)
        self.simulator.set_policies(self._running.policies)
