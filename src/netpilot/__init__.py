"""netpilot: an autopilot for telecom and WAN networks that closes the loop from telemetry to verified change."""

__version__ = "0.1.0"
