"""The weekly shape of cell traffic, derived from real LTE cells (CTTC SUPERCOM, Barcelona) and shipped as data."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np

from netpilot.model.profile import HOURS_PER_WEEK


def derive_weekly_profile(csv_files: list[Path]) -> np.ndarray:
    """(168,) mean traffic per hour of the week (Monday 00:00 first), each site normalised to mean 1 before
    averaging, so that busy and quiet cells count alike. Reads the ``time`` and ``down`` columns."""
    profiles = []
    for path in csv_files:
        sums, counts = np.zeros(HOURS_PER_WEEK), np.zeros(HOURS_PER_WEEK)
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                when = datetime.strptime(row["time"], "%Y-%m-%d %H:%M:%S")
                value = float(row["down"] or "nan")
                if np.isfinite(value):
                    slot = when.weekday() * 24 + when.hour
                    sums[slot] += value
                    counts[slot] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            site = sums / counts
        # Hours a short trace never saw borrow the same hour of the other days.
        by_hour = np.nanmean(site.reshape(7, 24), axis=0)
        site = np.where(np.isfinite(site), site, np.tile(by_hour, 7))
        profiles.append(site / site.mean())
    profile = np.mean(profiles, axis=0)
    # Light circular smoothing: three-hour window.
    profile = (np.roll(profile, 1) + 2 * profile + np.roll(profile, -1)) / 4
    return np.asarray(profile / profile.mean(), dtype=float)


def write_profile(csv_files: list[Path], out: Path) -> None:
    profile = derive_weekly_profile(csv_files)
    out.write_text(json.dumps({
        "what": "mean cell downlink traffic per hour of the week (Monday 00:00 first), mean 1",
        "origin": "CTTC SUPERCOM LTE eNodeBs in Barcelona (ElBorn, LesCorts, PobleSec train splits), via "
                  "vperifan/Federated-Time-Series-Forecasting; derived by `make cell-profile`",
        "hour_of_week": [round(float(v), 5) for v in profile],
    }, indent=1) + "\n")
