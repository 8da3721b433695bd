"""How detections are scored: point-wise F1, delay-bounded and unbounded point adjustment, and the NAB score."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of true labels."""
    padded = np.r_[False, labels.astype(bool), False]
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2], edges[1::2], strict=True))


def f1(predicted: np.ndarray, labels: np.ndarray) -> float:
    predicted, labels = predicted.astype(bool), labels.astype(bool)
    tp = int((predicted & labels).sum())
    denominator = int(predicted.sum()) + int(labels.sum())
    return 2 * tp / denominator if denominator else 1.0


def point_adjust(predicted: np.ndarray, labels: np.ndarray, delay: int | None = None) -> np.ndarray:
    """Point adjustment: a labelled segment counts as wholly detected when an alarm falls in it (within its
    first ``delay + 1`` points when ``delay`` is given, the AIOps 2018 rule), and as wholly missed otherwise."""
    adjusted = predicted.astype(bool).copy()
    for start, end in _segments(labels):
        stop = end if delay is None else min(end, start + delay + 1)
        adjusted[start:end] = adjusted[start:stop].any()
    return adjusted


@dataclass(frozen=True)
class NabProfile:
    """NAB's cost matrix (weights are positive; false positives and misses subtract)."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


NAB_PROFILES = {"standard": NabProfile(), "reward_low_FP_rate": NabProfile(fp=0.22),
                "reward_low_FN_rate": NabProfile(fn=2.0)}


def _scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's weight for a point at ``position`` (-1 at a window's left edge, 0 at its right, >0 after)."""
    position = np.asarray(position, dtype=float)
    return np.where(position >= 3.0, -1.0, 2.0 / (1.0 + np.exp(np.minimum(5.0 * position, 50.0))) - 1.0)


@dataclass
class NabFile:
    """One file prepared for NAB scoring (numenta/NAB's Sweeper, re-implemented): the weight each point would
    earn if it alarmed, the window each point lies in (-1: none), and the windows left after probation."""

    sweep: np.ndarray
    window: np.ndarray
    n_windows: int
    profile: NabProfile

    @classmethod
    def prepare(cls, n: int, windows: list[tuple[int, int]], profile: NabProfile,
                probation_percent: float = 0.15) -> NabFile:
        """``windows`` are [first, last] row indexes, inclusive, in time order."""
        index = np.arange(n)
        window = np.full(n, -1)
        sweep = np.empty(n)
        max_tp = float(_scaled_sigmoid(-1.0))
        previous_right, previous_width = None, None
        cursor = 0
        for w, (first, last) in enumerate(windows):
            width = last - first + 1
            gap = index[cursor:first]
            sweep[cursor:first] = _fp_weights(gap, previous_right, previous_width) * profile.fp
            inside = index[first:last + 1]
            sweep[first:last + 1] = _scaled_sigmoid(-(last - inside + 1) / width) * profile.tp / max_tp
            window[first:last + 1] = w
            previous_right, previous_width, cursor = last, width, last + 1
        sweep[cursor:] = _fp_weights(index[cursor:], previous_right, previous_width) * profile.fp
        probation = int(min(math.floor(probation_percent * n), probation_percent * 5000))
        window[:probation] = -2  # dropped from scoring, as NAB does
        kept = np.unique(window[window >= 0])
        remap = np.full(len(windows) + 1, -1)
        remap[kept] = np.arange(len(kept))
        window = np.where(window >= 0, remap[np.maximum(window, 0)], window)
        return cls(sweep, window, len(kept), profile)

    def score(self, alarms: np.ndarray) -> tuple[float, int, int]:
        """(raw score, windows detected, false-positive points) for boolean ``alarms``."""
        alarms = np.asarray(alarms, dtype=bool)
        fp_points = alarms & (self.window == -1)
        best = np.full(self.n_windows, -self.profile.fn)
        hits = alarms & (self.window >= 0)
        np.maximum.at(best, self.window[hits], self.sweep[hits])
        detected = int((best > -self.profile.fn).sum())
        return float(self.sweep[fp_points].sum() + best.sum()), detected, int(fp_points.sum())

    @property
    def null(self) -> float:
        return -self.profile.fn * self.n_windows

    @property
    def perfect(self) -> float:
        return self.profile.tp * self.n_windows


def _fp_weights(index: np.ndarray, previous_right: int | None, previous_width: float | None) -> np.ndarray:
    if previous_right is None:
        return np.full(len(index), -1.0)
    return _scaled_sigmoid(np.abs(previous_right - index) / max(previous_width - 1, 1.0))


def nab_normalise(raw: float, null: float, perfect: float) -> float:
    """NAB's reported score: 0 for a detector that never alarms, 100 for a perfect one."""
    return 100.0 * (raw - null) / (perfect - null)


__all__ = ["NAB_PROFILES", "NabFile", "NabProfile", "f1", "nab_normalise", "point_adjust"]
