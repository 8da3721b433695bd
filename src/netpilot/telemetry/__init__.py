"""Observe: telemetry schema, the network simulator, stores and ingestion."""
