"""The REST API (FastAPI) over a live autopilot."""
