"""Drivers: the contract (``base``), the twin and simulator (``twin``), real FRR routers in a lab (``frr``)."""

from netpilot.change.drivers.base import (
                                          Capabilities,
                                          ConfigDiff,
                                          DriverError,
                                          ForwardingCheck,
                                          NetworkDriver,
                                          open_driver,
)
from netpilot.change.drivers.frr.driver import FrrDriver
from netpilot.change.drivers.twin import SimulatorDriver, TwinDriver

#: The contract under its old name: every driver is a NetworkDriver.
Driver = NetworkDriver

__all__ = ["Capabilities", "ConfigDiff", "Driver", "DriverError", "ForwardingCheck", "FrrDriver", "NetworkDriver",
           "SimulatorDriver", "TwinDriver", "open_driver"]
