"""Compatibility only: faults moved to the fault registry, ``netpilot.model.faults``; code written against this
module's old names keeps working until it imports them from there."""

from netpilot.model.faults import REGISTRY, Fault, FaultFile, check_faults, load_faults, name_faults

FAULT_KINDS = tuple(REGISTRY)

__all__ = ["FAULT_KINDS", "Fault", "FaultFile", "check_faults", "load_faults", "name_faults"]
