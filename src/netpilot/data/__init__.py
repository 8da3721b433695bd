"""Data files shipped with netpilot: the sample network and the published JSON Schema."""
