"""The weekly demand profile the twin follows: the shipped one, and its level at any hour of the week."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

HOURS_PER_WEEK = 168


def bundled_profile() -> np.ndarray:
    """(168,) the shipped weekly profile."""
    data = json.loads(resources.files("netpilot.data").joinpath("cell_profile.json").read_text())
    profile = np.asarray(data["hour_of_week"], dtype=float)
    if profile.shape != (HOURS_PER_WEEK,):
        raise ValueError("cell_profile.json must hold 168 hourly values")
    return profile


def profile_at(profile: np.ndarray, hour_of_week: float) -> float:
    """The profile at a fractional hour of the week, linearly interpolated (wrapping Sunday to Monday)."""
    h = hour_of_week % HOURS_PER_WEEK
    low = int(np.floor(h))
    frac = h - low
    return float((1 - frac) * profile[low] + frac * profile[(low + 1) % HOURS_PER_WEEK])
