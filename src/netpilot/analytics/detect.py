"""Fault detection: a causal streaming score (one sample in, one score out, no look-ahead) of one series or of
many in lockstep, batch scoring that runs the same recursion, and thresholds calibrated without test labels."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from netpilot.errors import InputError

_MAD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal variable times this is its standard deviation


class StreamingDetector:
    """Robust residual score against an adaptive level.

    The level is an exponentially weighted mean whose updates are clipped at ``clip`` scales, so an anomaly
    moves it slowly and keeps scoring while it lasts; the scale is the same kind of mean of absolute residuals.
    Two residuals are scored: the sample's, and a short smoothed mean's (which catches small level shifts
    that single samples hide in noise). The score is the larger, in units of the noise's standard deviation.
    With ``peak_window`` > 0 a sample scores only when it beats every score of the last ``peak_window``
    samples (0 otherwise), so one episode raises one alarm at its onset instead of an alarm per sample.
    A missing sample (NaN) scores 0 and leaves the state as it was."""

    __slots__ = (
        "_count",
        "_level",
        "_peaks",
        "_scale",
        "_smooth",
        "_smooth_scale",
        "clip",
        "level_alpha",
        "peak_window",
        "scale_alpha",
        "smooth_alpha",
        "warmup",
    )

    def __init__(self, level_alpha: float = 0.02, scale_alpha: float = 0.005, smooth_alpha: float = 0.3,
                 clip: float = 4.0, warmup: int = 30, peak_window: int = 0) -> None:
        for name, value in (("level_alpha", level_alpha), ("scale_alpha", scale_alpha),
                            ("smooth_alpha", smooth_alpha)):
            if not 0.0 < value <= 1.0:
                raise InputError(f"{name} must be in (0, 1], got {value}")
        self.level_alpha = level_alpha
        self.scale_alpha = scale_alpha
        self.smooth_alpha = smooth_alpha
        self.clip = clip
        self.warmup = warmup
        self.peak_window = int(peak_window)
        self.reset()

    def reset(self) -> None:
        self._level = math.nan
        self._scale = 0.0
        self._smooth = math.nan
        self._smooth_scale = 0.0
        self._count = 0
        self._peaks: deque[tuple[int, float]] = deque()  # (sample number, score), scores decreasing

    def update(self, value: float) -> float:
        if value != value or value in (math.inf, -math.inf):  # NaN or infinite: a gap, not a measurement
            return 0.0
        count = self._count = self._count + 1
        if count == 1:
            self._level = self._smooth = value
            return 0.0
        level, scale = self._level, self._scale
        residual = value - level
        smooth = self._smooth + self.smooth_alpha * (value - self._smooth)
        smooth_residual = smooth - level
        # Warm-up uses faster averaging so the first estimates are not dominated by the first sample.
        a_scale = max(self.scale_alpha, 1.0 / count)
        a_level = max(self.level_alpha, 1.0 / count)
        floor = 1e-9 + 1e-9 * abs(level)
        if count <= self.warmup:
            score = 0.0
        else:
            z = abs(residual) / (_MAD_TO_SIGMA * scale + floor)
            zs = abs(smooth_residual) / (_MAD_TO_SIGMA * self._smooth_scale + floor)
            score = z if z > zs else zs
        bound = self.clip * _MAD_TO_SIGMA * scale if count > self.warmup else math.inf
        clipped = residual if -bound <= residual <= bound else math.copysign(bound, residual)
        self._level = level + a_level * clipped
        self._scale = scale + a_scale * (min(abs(residual), bound) - scale)
        sbound = self.clip * _MAD_TO_SIGMA * self._smooth_scale if count > self.warmup else math.inf
        self._smooth_scale += a_scale * (min(abs(smooth_residual), sbound) - self._smooth_scale)
        self._smooth = smooth
        if self.peak_window:
            return self._peak(count, score)
        return score

    def rebase(self, value: float) -> None:
        """The series stepped to a new level for a known reason (a routing change the caller made): carry on
        from ``value`` without reading the step as an anomaly. The learned spread is kept."""
        if value == value and value not in (math.inf, -math.inf) and self._count:
            self._level = self._smooth = value

    def _peak(self, count: int, score: float) -> float:
        peaks = self._peaks
        while peaks and peaks[0][0] <= count - self.peak_window:
            peaks.popleft()
        beaten = not peaks or score > peaks[0][1]
        while peaks and peaks[-1][1] <= score:
            peaks.pop()
        peaks.append((count, score))
        return score if beaten else 0.0

    def score_many(self, values: Iterable[float]) -> np.ndarray:
        """The same recursion over a whole series (batch mode gives exactly the streaming scores)."""
        update = self.update
        return np.fromiter((update(float(v)) for v in values), dtype=float)


class DetectorBank:
    """``StreamingDetector`` over many series in lockstep (one sample of each per ``update``), in NumPy: the
    autopilot scores every KPI of the network each tick, where a Python call per KPI cost more than the rest of
    a quiet tick. It runs the same recursion with the same floating-point operations, so each series gets
    exactly the scores its own ``StreamingDetector`` would give (the tests hold them equal). The peak window is
    a ring of each series' last ``peak_window - 1`` scores instead of a monotonic queue."""

    def __init__(self, n_series: int, level_alpha: float = 0.02, scale_alpha: float = 0.005,
                 smooth_alpha: float = 0.3, clip: float = 4.0, warmup: int = 30, peak_window: int = 0) -> None:
        # A detector of one series holds the parameters, checked as it checks them; its own state is unused.
        self._params = StreamingDetector(level_alpha, scale_alpha, smooth_alpha, clip, warmup, peak_window)
        self._count = np.zeros(n_series, dtype=np.int64)
        self._level = np.full(n_series, np.nan)
        self._scale = np.zeros(n_series)
        self._smooth = np.full(n_series, np.nan)
        self._smooth_scale = np.zeros(n_series)
        self._recent = np.full((n_series, max(int(peak_window) - 1, 0)), -np.inf)  # scores, by count modulo

    def update(self, values: np.ndarray) -> np.ndarray:
        """One sample of each series in (NaN or infinite: a gap), their scores out."""
        p = self._params
        values = np.asarray(values, dtype=float)
        if values.shape != self._count.shape:
            raise InputError(f"expected {len(self._count)} values, one per series, got shape {values.shape}")
        scores = np.zeros(len(values))
        valid = np.flatnonzero(np.isfinite(values))
        self._count[valid] += 1
        first = valid[self._count[valid] == 1]
        self._level[first] = self._smooth[first] = values[first]
        i = valid[self._count[valid] > 1]
        value, count, level, scale = values[i], self._count[i], self._level[i], self._scale[i]
        smooth_scale = self._smooth_scale[i]
        residual = value - level
        smooth = self._smooth[i] + p.smooth_alpha * (value - self._smooth[i])
        smooth_residual = smooth - level
        a_scale = np.maximum(p.scale_alpha, 1.0 / count)
        a_level = np.maximum(p.level_alpha, 1.0 / count)
        floor = 1e-9 + 1e-9 * np.abs(level)
        warm = count > p.warmup
        z = np.abs(residual) / (_MAD_TO_SIGMA * scale + floor)
        zs = np.abs(smooth_residual) / (_MAD_TO_SIGMA * smooth_scale + floor)
        score = np.where(warm, np.where(z > zs, z, zs), 0.0)
        bound = np.where(warm, p.clip * _MAD_TO_SIGMA * scale, np.inf)
        clipped = np.where((-bound <= residual) & (residual <= bound), residual, np.copysign(bound, residual))
        self._level[i] = level + a_level * clipped
        self._scale[i] = scale + a_scale * (np.minimum(np.abs(residual), bound) - scale)
        smooth_bound = np.where(warm, p.clip * _MAD_TO_SIGMA * smooth_scale, np.inf)
        self._smooth_scale[i] = smooth_scale + a_scale * (np.minimum(np.abs(smooth_residual), smooth_bound)
                                                          - smooth_scale)
        self._smooth[i] = smooth
        if self._recent.shape[1]:  # a peak window of 2 samples or more (of 1, every score counts)
            # A score counts when it beats every score of the series' last peak_window - 1 samples: the slot
            # this sample takes holds the oldest of them, so the maximum is read before it is overwritten.
            slot = count % self._recent.shape[1]
            beaten = score > self._recent[i].max(axis=1)
            self._recent[i, slot] = score
            score = np.where(beaten, score, 0.0)
        scores[i] = score
        return scores

    def rebase(self, series: np.ndarray, values: np.ndarray) -> None:
        """``StreamingDetector.rebase`` for each of ``series`` (indices), to the matching ``values``."""
        series, values = np.asarray(series, dtype=np.int64), np.asarray(values, dtype=float)
        keep = np.isfinite(values) & (self._count[series] > 0)
        self._level[series[keep]] = self._smooth[series[keep]] = values[keep]


def score_series(values: np.ndarray, **params) -> np.ndarray:
    return StreamingDetector(**params).score_many(values)


@dataclass(frozen=True)
class Threshold:
    """An alarm threshold and how it was chosen (``labels``: best F1 on labelled history; ``rate``: a target
    share of alarms on unlabelled history)."""

    value: float
    method: str
    train_f1: float | None = None


def calibrate(scores: np.ndarray, labels: np.ndarray | None = None, *, alarm_rate: float = 0.002,
              min_threshold: float = 3.0) -> Threshold:
    """A threshold from history only. With labels (the training half's), the one with the best point-wise F1
    there; without, the score quantile that raises ``alarm_rate`` alarms, never below ``min_threshold``."""
    scores = np.asarray(scores, dtype=float)
    if labels is not None:
        labels = np.asarray(labels).astype(bool)
        if labels.any():
            order = np.argsort(-scores, kind="stable")
            s_sorted, l_sorted = scores[order], labels[order]
            tp = np.cumsum(l_sorted)
            predicted = np.arange(1, len(scores) + 1)
            f1 = 2 * tp / (predicted + labels.sum())
            # Only cut between distinct scores: a threshold selects everything at or above it.
            last_of_value = np.r_[s_sorted[1:] != s_sorted[:-1], True]
            f1 = np.where(last_of_value, f1, -1.0)
            best = int(np.argmax(f1))
            return Threshold(float(s_sorted[best]), "labels", float(f1[best]))
    value = float(np.quantile(scores, 1.0 - alarm_rate)) if len(scores) else min_threshold
    return Threshold(max(value, min_threshold), "rate")


def detect(values: np.ndarray, *, train_fraction: float = 0.5, labels: np.ndarray | None = None,
           **params) -> tuple[np.ndarray, np.ndarray, Threshold]:
    """Scores and alarms for a whole series. The threshold comes from the first ``train_fraction`` of it (and
    from its labels there, when given); the scores themselves never look ahead."""
    values = np.asarray(values, dtype=float)
    scores = score_series(values, **params)
    cut = max(1, int(len(values) * train_fraction))
    threshold = calibrate(scores[:cut], None if labels is None else np.asarray(labels)[:cut])
    return scores, scores >= threshold.value, threshold
