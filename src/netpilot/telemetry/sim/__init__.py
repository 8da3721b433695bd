"""Synthetic telemetry: the twin stepped through time with noise, events and the ground truth of its faults."""
