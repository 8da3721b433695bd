"""Fault detection: a causal streaming score (one sample in, one score out, no look-ahead) of one series or of
many in lockstep, batch scoring that runs the same recursion, and thresholds calibrated without test labels."""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from netpilot.errors import InputError

_MAD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal variable times this is its standard deviation
# Two samples in a row at ``collapse`` under the expectation score this: the lowest threshold calibration allows.
COLLAPSE_SCORE = 4.0


class StreamingDetector:
    """Robust residual score against an expectation: an adaptive level plus, when ``season`` > 0, a seasonal
    profile (one offset per phase of the season, e.g. 720 two-minute phases of a day).

    The level is an exponentially weighted mean whose updates are clipped at ``clip`` scales, so an anomaly
    moves it slowly and keeps scoring while it lasts; the scale is the same kind of mean of absolute residuals.
    Each phase's offset is a running mean of what the level left unexplained at that phase (the first visits
    averaged equally, then weighted by ``season_alpha``), updated with the same clipped residual; scores are 0
    until one whole season has been seen, and the scale is learnt only from then on.
    Two residuals are scored: the sample's (the point detector), and a short smoothed mean's of the
    deseasonalised value (the shift detector: small level shifts that single samples hide in noise, collapses,
    outages). The score is the larger, in units of each one's own noise standard deviation. With ``collapse``
    > 0 a third detector scores a fall below the expectation that needs no noise estimate (a sleeping cell on
    a bursty counter): the smaller of this and the last sample's drop under the expectation, ``collapse``
    scoring ``COLLAPSE_SCORE`` (on log-scaled counters ``collapse`` = -log(fraction of the expectation)).
    With ``cusum`` > 0 a two-sided CUSUM of the point residuals (in noise standard deviations, each sample
    allowed ``cusum`` of drift unnoticed) scores what it has accumulated: a shift too small for one sample
    adds up over a few (it restarts when the hold takes a shift as the new normal, and on ``rebase``).
    With ``hold`` finite, a score at or above ``hold`` freezes the level, the offsets and the scales
    (the expectation is not taught the fault while it lasts), for at most ``max_hold`` samples in a row; after
    that the shift is taken as the new normal and the level jumps to it.
    With ``peak_window`` > 0 a sample scores only when it beats every score of the last ``peak_window``
    samples (0 otherwise), so one episode raises one alarm at its onset instead of an alarm per sample.
    A missing sample (NaN) scores 0 and leaves the state as it was, but advances the season's phase.

    After each ``update``, ``last_expected``, ``last_point`` and ``last_shift`` hold the expectation the
    sample was compared with and the detectors' scores (for explaining alarms)."""

    __slots__ = (
        "_accepted",
        "_bias",
        "_count",
        "_down",
        "_drop",
        "_held",
        "_level",
        "_low",
        "_offsets",
        "_peaks",
        "_scale",
        "_seen",
        "_skipped",
        "_smooth",
        "_smooth_scale",
        "_ticks",
        "_up",
        "clip",
        "collapse",
        "collapse_hold",
        "cusum",
        "hold",
        "last_collapse",
        "last_cusum",
        "last_expected",
        "last_point",
        "last_shift",
        "level_alpha",
        "max_hold",
        "peak_window",
        "scale_alpha",
        "season",
        "season_alpha",
        "season_bins",
        "smooth_alpha",
        "warmup",
    )

    def __init__(self, level_alpha: float = 0.02, scale_alpha: float = 0.005, smooth_alpha: float = 0.3,
                 clip: float = 4.0, warmup: int = 30, peak_window: int = 0, season: int = 0,
                 season_alpha: float = 0.1, hold: float = math.inf, max_hold: int = 0,
                 season_bins: int = 0, collapse: float = 0.0, cusum: float = 0.0, collapse_hold: int = 0) -> None:
        for name, value in (("level_alpha", level_alpha), ("scale_alpha", scale_alpha),
                            ("smooth_alpha", smooth_alpha), ("season_alpha", season_alpha)):
            if not 0.0 < value <= 1.0:
                raise InputError(f"{name} must be in (0, 1], got {value}")
        if season < 0 or max_hold < 0 or season_bins < 0 or collapse < 0 or cusum < 0 or collapse_hold < 0:
            raise InputError(f"season, season_bins, max_hold, collapse, cusum and collapse_hold must be "
                             f"non-negative, got {season}, {season_bins}, {max_hold}, {collapse}, {cusum} and "
                             f"{collapse_hold}")
        self.collapse_hold = int(collapse_hold)
        self.collapse = float(collapse)
        self.cusum = float(cusum)
        self.level_alpha = level_alpha
        self.scale_alpha = scale_alpha
        self.smooth_alpha = smooth_alpha
        self.clip = clip
        self.warmup = warmup
        self.peak_window = int(peak_window)
        self.season = int(season)
        self.season_alpha = season_alpha
        self.season_bins = int(season_bins) if 0 < season_bins < season else int(season)
        self.hold = float(hold)
        self.max_hold = int(max_hold)
        self.reset()

    def reset(self) -> None:
        self._level = math.nan
        self._scale = 0.0
        self._smooth = math.nan
        self._smooth_scale = 0.0
        self._drop = 0.0  # the last sample's fall under its expectation (the collapse detector's memory)
        self._low = -(1 << 62)  # the last tick whose smoothed value sat collapsed under the level
        self._accepted = -(1 << 62)  # the last tick a held rise was taken as the new normal
        self._up = self._down = 0.0  # the CUSUM's sums upwards and downwards
        self._bias = 0.0  # the clipped residuals' mean: skewed noise leaves the level off its mean
        self._count = 0
        self._ticks = 0  # samples seen, gaps included: the season's clock
        self._skipped = 0  # samples seen during the first season (the scale is not learnt from them)
        self._held = 0  # samples in a row the expectation has been frozen
        self._offsets = [0.0] * self.season_bins
        self._seen = [0] * self.season_bins  # samples each bin has learnt from
        self._peaks: deque[tuple[int, float]] = deque()  # (sample number, score), scores decreasing
        self.last_expected = self.last_point = self.last_shift = self.last_collapse = self.last_cusum = math.nan

    def update(self, value: float) -> float:
        ticks = self._ticks = self._ticks + 1
        if value != value or value in (math.inf, -math.inf):  # NaN or infinite: a gap, not a measurement
            self.last_expected = self.last_point = self.last_shift = self.last_collapse = self.last_cusum = math.nan
            return 0.0
        season = self.season
        phase = (ticks - 1) % season * self.season_bins // season if season else 0
        offset = self._offsets[phase] if season else 0.0
        count = self._count = self._count + 1
        if count == 1:
            self._level = self._smooth = value - offset
            self.last_expected, self.last_point, self.last_shift = value, 0.0, 0.0
            self.last_collapse = self.last_cusum = 0.0
            return 0.0
        level, scale = self._level, self._scale
        expected = level + offset
        residual = value - expected
        smooth = self._smooth + self.smooth_alpha * (value - offset - self._smooth)
        smooth_residual = smooth - level
        learning = ticks > season
        if not learning:
            self._skipped += 1
        learnt = count - self._skipped
        # Warm-up uses faster averaging so the first estimates are not dominated by the first sample.
        a_scale = max(self.scale_alpha, 1.0 / learnt)
        a_level = max(self.level_alpha, 1.0 / count)
        floor = 1e-9 + 1e-9 * abs(level)
        warm = learning and learnt > self.warmup
        if warm:
            z = abs(residual) / (_MAD_TO_SIGMA * scale + floor)
            zs = abs(smooth_residual) / (_MAD_TO_SIGMA * self._smooth_scale + floor)
            score = z if z > zs else zs
            if self.cusum:
                signed = residual / (_MAD_TO_SIGMA * scale + floor)
                signed = signed if -self.clip <= signed <= self.clip else math.copysign(self.clip, signed)
                up = self._up + (signed - self._bias) - self.cusum
                down = self._down - (signed - self._bias) - self.cusum
                self._up = up = up if up > 0.0 else 0.0
                self._down = down = down if down > 0.0 else 0.0
                zk = up if up > down else down
            else:
                zk = 0.0
        else:
            z = zs = zk = score = 0.0
        zc = 0.0
        if self.collapse:
            drop = -residual if residual < 0.0 else 0.0
            if warm:
                zc = COLLAPSE_SCORE * (drop if drop < self._drop else self._drop) / self.collapse
                if zc > score:
                    score = zc
            self._drop = drop
            if warm and level - smooth >= self.collapse:
                self._low = ticks
        self.last_expected, self.last_point, self.last_shift, self.last_collapse = expected, z, zs, zc
        self.last_cusum = zk
        # The CUSUM alarms but does not hold the expectation: on a wandering series it would freeze it for good.
        reported = zk if zk > score else score
        self._smooth = smooth
        if warm and score >= self.hold:
            held, memory = self._held, max(season, self.max_hold)
            if held < self.max_hold or (self.collapse and held < self.collapse_hold and ticks - self._low < memory
                                        and ticks - self._accepted >= memory):
                # A counter collapsed under its expectation within the last season (at night the collapse may
                # hide in the daily trough) stays a fault for up to ``collapse_hold`` samples, not ``max_hold``;
                # but not under a rise accepted less than a season ago: after a surge taken as the new normal,
                # the return to the old level is no collapse.
                self._held = held + 1
            else:  # held long enough: the shift is the new normal
                self._held = 0
                if smooth > level:
                    self._accepted = ticks
                self._level = smooth
                self._up = self._down = 0.0
            return self._peak(count, reported) if self.peak_window else reported
        self._held = 0
        bound = self.clip * _MAD_TO_SIGMA * scale if warm else math.inf
        clipped = residual if -bound <= residual <= bound else math.copysign(bound, residual)
        self._level = level + a_level * clipped
        if learning:
            self._scale = scale + a_scale * (min(abs(residual), bound) - scale)
            sbound = self.clip * _MAD_TO_SIGMA * self._smooth_scale if warm else math.inf
            self._smooth_scale += a_scale * (min(abs(smooth_residual), sbound) - self._smooth_scale)
            if warm and self.cusum:
                self._bias += a_scale * (signed - self._bias)
        if season:
            seen = self._seen[phase] = self._seen[phase] + 1
            a_season = max(self.season_alpha, 1.0 / seen)
            self._offsets[phase] = offset + a_season * clipped
        if self.peak_window:
            return self._peak(count, reported)
        return reported

    def rebase(self, value: float) -> None:
        """The series stepped to a new level for a known reason (a routing change the caller made): carry on
        from ``value`` (at the last sample's phase) without reading the step as an anomaly. The learned spread
        and the seasonal profile are kept."""
        if value == value and value not in (math.inf, -math.inf) and self._count:
            offset = self._offsets[self._phase(self._ticks - 1)] if self.season else 0.0
            self._level = self._smooth = value - offset
            self._held = 0
            self._up = self._down = 0.0

    def expectation(self) -> float:
        """What the next sample is expected to be (NaN before the first sample)."""
        offset = self._offsets[self._phase(self._ticks)] if self.season else 0.0
        return self._level + offset

    def _phase(self, tick: int) -> int:
        """The seasonal bin of the sample after ``tick`` samples (the offsets are one per bin)."""
        return tick % self.season * self.season_bins // self.season

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
    a ring of each series' last ``peak_window - 1`` scores instead of a monotonic queue. ``expected()`` gives
    each series' expectation for the next tick (level plus seasonal offset), for KPIs no other model predicts."""

    def __init__(self, n_series: int, level_alpha: float = 0.02, scale_alpha: float = 0.005,
                 smooth_alpha: float = 0.3, clip: float = 4.0, warmup: int = 30, peak_window: int = 0,
                 season: int = 0, season_alpha: float = 0.1, hold: float = math.inf, max_hold: int = 0,
                 season_bins: int = 0, collapse: float = 0.0, cusum: float = 0.0, collapse_hold: int = 0) -> None:
        # A detector of one series holds the parameters, checked as it checks them; its own state is unused.
        self._params = StreamingDetector(level_alpha, scale_alpha, smooth_alpha, clip, warmup, peak_window,
                                         season, season_alpha, hold, max_hold, season_bins, collapse,
                                         cusum, collapse_hold)
        self._ticks = 0  # every series gets one sample (or gap) per tick, so the season's clock is shared
        self._count = np.zeros(n_series, dtype=np.int64)
        self._skipped = np.zeros(n_series, dtype=np.int64)
        self._held = np.zeros(n_series, dtype=np.int64)
        self._level = np.full(n_series, np.nan)
        self._scale = np.zeros(n_series)
        self._smooth = np.full(n_series, np.nan)
        self._smooth_scale = np.zeros(n_series)
        self._drop = np.zeros(n_series)
        self._low = np.full(n_series, -(1 << 62), dtype=np.int64)
        self._accepted = np.full(n_series, -(1 << 62), dtype=np.int64)
        self._up = np.zeros(n_series)
        self._bias = np.zeros(n_series)
        self._down = np.zeros(n_series)
        self._offsets = np.zeros((n_series, self._params.season_bins))
        self._seen = np.zeros((n_series, self._params.season_bins), dtype=np.int64)
        self._recent = np.full((n_series, max(int(peak_window) - 1, 0)), -np.inf)  # scores, by count modulo

    def update(self, values: np.ndarray) -> np.ndarray:
        """One sample of each series in (NaN or infinite: a gap), their scores out."""
        p = self._params
        values = np.asarray(values, dtype=float)
        if values.shape != self._count.shape:
            raise InputError(f"expected {len(self._count)} values, one per series, got shape {values.shape}")
        ticks = self._ticks = self._ticks + 1
        season = p.season
        phase = p._phase(ticks - 1) if season else 0
        scores = np.zeros(len(values))
        valid = np.flatnonzero(np.isfinite(values))
        self._count[valid] += 1
        first = valid[self._count[valid] == 1]
        first_offset = self._offsets[first, phase] if season else 0.0
        self._level[first] = self._smooth[first] = values[first] - first_offset
        i = valid[self._count[valid] > 1]
        value, count, level, scale = values[i], self._count[i], self._level[i], self._scale[i]
        offset = self._offsets[i, phase] if season else 0.0
        smooth_scale = self._smooth_scale[i]
        expected = level + offset
        residual = value - expected
        smooth = self._smooth[i] + p.smooth_alpha * (value - offset - self._smooth[i])
        smooth_residual = smooth - level
        learning = ticks > season
        if not learning:
            self._skipped[i] += 1
        learnt = count - self._skipped[i]
        a_scale = np.maximum(p.scale_alpha, 1.0 / learnt)
        a_level = np.maximum(p.level_alpha, 1.0 / count)
        floor = 1e-9 + 1e-9 * np.abs(level)
        warm = (learnt > p.warmup) & learning
        z = np.abs(residual) / (_MAD_TO_SIGMA * scale + floor)
        zs = np.abs(smooth_residual) / (_MAD_TO_SIGMA * smooth_scale + floor)
        score = np.where(warm, np.where(z > zs, z, zs), 0.0)
        if p.cusum:
            signed = residual / (_MAD_TO_SIGMA * scale + floor)
            signed = np.where((-p.clip <= signed) & (signed <= p.clip), signed, np.copysign(p.clip, signed))
            bias = self._bias[i]
            up = self._up[i] + (signed - bias) - p.cusum
            down = self._down[i] - (signed - bias) - p.cusum
            up = np.where(warm, np.where(up > 0.0, up, 0.0), self._up[i])
            down = np.where(warm, np.where(down > 0.0, down, 0.0), self._down[i])
            zk = np.where(up > down, up, down)
        if p.collapse:
            drop = np.where(residual < 0.0, -residual, 0.0)
            last_drop = self._drop[i]
            zc = COLLAPSE_SCORE * np.where(drop < last_drop, drop, last_drop) / p.collapse
            score = np.where(warm & (zc > score), zc, score)
            self._drop[i] = drop
            low = np.where(warm & (level - smooth >= p.collapse), ticks, self._low[i])
            self._low[i] = low
        self._smooth[i] = smooth
        over = warm & (score >= p.hold)  # the CUSUM alarms but does not hold the expectation
        if p.cusum:
            score = np.where(warm & (zk > score), zk, score)
        held = self._held[i]
        accept = over & (held >= p.max_hold)
        if p.collapse:  # a counter collapsed within the last season stays a fault up to collapse_hold samples
            memory = max(season, p.max_hold)
            accepted = self._accepted[i]
            accept &= ~((held < p.collapse_hold) & (ticks - low < memory) & (ticks - accepted >= memory))
            self._accepted[i] = np.where(accept & (smooth > level), ticks, accepted)
        self._held[i] = np.where(over & ~accept, held + 1, 0)
        if p.cusum:
            self._up[i] = np.where(accept, 0.0, up)
            self._down[i] = np.where(accept, 0.0, down)
        bound = np.where(warm, p.clip * _MAD_TO_SIGMA * scale, np.inf)
        clipped = np.where((-bound <= residual) & (residual <= bound), residual, np.copysign(bound, residual))
        self._level[i] = np.where(over, np.where(accept, smooth, level), level + a_level * clipped)
        if learning:
            self._scale[i] = np.where(over, scale, scale + a_scale * (np.minimum(np.abs(residual), bound) - scale))
            smooth_bound = np.where(warm, p.clip * _MAD_TO_SIGMA * smooth_scale, np.inf)
            self._smooth_scale[i] = np.where(over, smooth_scale, smooth_scale + a_scale * (
                np.minimum(np.abs(smooth_residual), smooth_bound) - smooth_scale))
            if p.cusum:
                self._bias[i] = np.where(warm & ~over, bias + a_scale * (signed - bias), bias)
        if season:
            seen = self._seen[i, phase] + ~over
            self._seen[i, phase] = seen
            a_season = np.maximum(p.season_alpha, 1.0 / np.maximum(seen, 1))  # (unseen only where held)
            self._offsets[i, phase] = np.where(over, offset, offset + a_season * clipped)
        if self._recent.shape[1]:  # a peak window of 2 samples or more (of 1, every score counts)
            # A score counts when it beats every score of the series' last peak_window - 1 samples: the slot
            # this sample takes holds the oldest of them, so the maximum is read before it is overwritten.
            slot = count % self._recent.shape[1]
            beaten = score > self._recent[i].max(axis=1)
            self._recent[i, slot] = score
            score = np.where(beaten, score, 0.0)
        scores[i] = score
        return scores

    def deviation(self, values: np.ndarray) -> np.ndarray:
        """How far each value is from zero in its series' noise standard deviations (the point detector's learnt
        scale, with the scores' floor): for series scored as residuals against a model, how far the sample is
        from the model itself, wherever the detector's level has come to. A series with no noise learnt yet
        (before its first samples, or one that has never varied, a loss counter at 0) puts any value but 0 about
        1e9 times its size away; a NaN stays NaN."""
        values = np.asarray(values, dtype=float)
        if values.shape != self._count.shape:
            raise InputError(f"expected {len(self._count)} values, one per series, got shape {values.shape}")
        floor = 1e-9 + 1e-9 * np.abs(np.nan_to_num(self._level))
        return np.abs(values) / (_MAD_TO_SIGMA * self._scale + floor)

    def expected(self) -> np.ndarray:
        """Each series' expectation for the next tick: its level plus its seasonal offset at the next phase
        (NaN for a series with no sample yet)."""
        season = self._params.season
        return self._level + self._offsets[:, self._params._phase(self._ticks)] if season else self._level.copy()

    def rebase(self, series: np.ndarray, values: np.ndarray) -> None:
        """``StreamingDetector.rebase`` for each of ``series`` (indices), to the matching ``values``."""
        series, values = np.asarray(series, dtype=np.int64), np.asarray(values, dtype=float)
        keep = series[np.isfinite(values) & (self._count[series] > 0)]
        values = values[np.isfinite(values) & (self._count[series] > 0)]
        season = self._params.season
        offset = self._offsets[keep, self._params._phase(self._ticks - 1)] if season else 0.0
        self._level[keep] = self._smooth[keep] = values - offset
        self._held[keep] = 0
        self._up[keep] = self._down[keep] = 0.0


def score_series(values: np.ndarray, **params) -> np.ndarray:
    return StreamingDetector(**params).score_many(values)


DAY_SECONDS, WEEK_SECONDS = 86_400.0, 604_800.0
MIN_SEASON_CORRELATION = 0.3  # a season whose lag correlates less than this is not worth its memory
SEASON_CYCLES = 3  # a season is only looked for in a history holding at least this many of it
LOG_OFFSET_SHARE = 0.05


def infer_season(values: np.ndarray, step_seconds: float) -> int:
    """The season, in samples, from the sampling step and the history's autocorrelation (no labels): a day,
    or a week where the history holds ``SEASON_CYCLES`` weeks and correlates better at a week; 0 when
    neither lag correlates at least ``MIN_SEASON_CORRELATION`` (or the history is too short)."""
    values = np.asarray(values, dtype=float)
    best, best_r = 0, MIN_SEASON_CORRELATION
    # Correlate hourly means, not samples: minute-scale noise hides a daily shape from a sample-wise lag.
    width = max(1, int(3600 // step_seconds)) if step_seconds > 0 else 1
    usable = len(values) // width * width
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        coarse = np.nanmean(values[:usable].reshape(-1, width), axis=1) if usable else values[:0]
    for period in (DAY_SECONDS, WEEK_SECONDS):
        lag = round(period / step_seconds) if step_seconds > 0 else 0
        if lag < 2 or len(values) < SEASON_CYCLES * lag:
            continue
        coarse_lag = max(1, round(lag / width))  # an irregular step's day is not a whole number of hours
        a, b = coarse[coarse_lag:], coarse[:-coarse_lag]
        both = np.isfinite(a) & np.isfinite(b)
        if both.sum() < coarse_lag:
            continue
        a, b = a[both], b[both]
        if a.std() == 0 or b.std() == 0:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r > best_r:
            best, best_r = lag, r
    return best


@dataclass(frozen=True)
class DetectorSettings:
    """The detector's parameters for one series, chosen from its sampling and unlabelled history only (the
    CLI's and the benchmarks' defaults): the season found in the history, a score of ``hold`` or more freezing
    the expectation for at most ``max_hold_seconds``, counters scored in logs (``log_offset``)."""

    season: int = 0
    step_seconds: float = 60.0
    hold: float = 4.0
    max_hold_seconds: float = 6 * 3600.0
    level_alpha: float = 0.02
    season_weight: float = 0.1  # how much one season's samples move a seasonal offset
    bin_seconds: float = 1800.0  # the seasonal profile's resolution
    peak_window: int = 0
    log_offset: float | None = None  # scored as log(value + log_offset): counters whose noise scales with them
    # A counter two samples in a row under this share of its expectation is a collapse, however noisy it is.
    collapse_fraction: float = 0.4
    # The CUSUM's allowance, in noise standard deviations a sample (0: none); off under a peak window.
    cusum: float = 0.0
    # A counter that keeps collapsing (within a season) is held as a fault this long, not max_hold (inf: until
    # it recovers). Off by default (= max_hold): longer holds find AIOps' multi-day outages but raise the LTE
    # cells' false runs over one a day (BENCHMARKS.md, issue 30, third pass).
    collapse_hold_seconds: float = 6 * 3600.0

    @property
    def collapse_hold(self) -> int:
        if not math.isfinite(self.collapse_hold_seconds):
            return 1 << 62
        return max(self.max_hold, round(self.collapse_hold_seconds / self.step_seconds))

    @property
    def max_hold(self) -> int:
        return max(10, round(self.max_hold_seconds / self.step_seconds))

    @property
    def season_bins(self) -> int:
        if not self.season:
            return 0
        return max(1, min(self.season, round(self.season * self.step_seconds / self.bin_seconds)))

    def kwargs(self) -> dict[str, float | int]:
        bins = self.season_bins
        per_sample = min(1.0, self.season_weight * bins / self.season) if self.season else self.season_weight
        return {"season": self.season, "season_bins": bins, "hold": self.hold, "max_hold": self.max_hold,
                "level_alpha": self.level_alpha, "season_alpha": per_sample, "peak_window": self.peak_window,
                "collapse": self.collapse, "cusum": 0.0 if self.peak_window else self.cusum,
                "collapse_hold": self.collapse_hold}

    @property
    def collapse(self) -> float:
        """The collapse detector's drop, in the scored units: only counters (scored in logs) have one."""
        if self.log_offset is None or not 0.0 < self.collapse_fraction < 1.0:
            return 0.0
        return -math.log(self.collapse_fraction)

    def detector(self) -> StreamingDetector:
        return StreamingDetector(**self.kwargs())

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if self.log_offset is None:
            return values
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(np.maximum(values, 0.0) + self.log_offset)

    def untransform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return values if self.log_offset is None else np.exp(values) - self.log_offset

    def score(self, values: np.ndarray) -> np.ndarray:
        return self.detector().score_many(self.transform(values))


def settings_for(values: np.ndarray, step_seconds: float, *, train_fraction: float = 0.5,
                 peak_window: int = 0) -> DetectorSettings:
    """Settings for a series: its season inferred from the first ``train_fraction`` of it, counters scored in
    logs. With ``peak_window`` (one alarm per episode, at its onset: NAB's protocol) the expectation is not held
    and values are scored as they are: under a hold a drifting series' score keeps growing and every new record
    is a new alarm, and NAB scored lower both with the hold and with logs (bench/analytics.py nab)."""
    values = np.asarray(values, dtype=float)
    history = values[:max(1, int(len(values) * train_fraction))]
    finite = history[np.isfinite(history)]
    log_offset = None
    if len(finite) and finite.min() >= 0 and np.median(finite) > 0:
        # A non-negative counter: its noise grows with it, so it is scored in logs; the offset (a small
        # share of its typical value) keeps zeros finite and quiet values from looking noisy.
        log_offset = LOG_OFFSET_SHARE * float(np.median(finite))
    if peak_window:
        log_offset = None
    transformed = history if log_offset is None else np.log(np.maximum(history, 0.0) + log_offset)
    season = infer_season(transformed, step_seconds)
    # A fall under a share of the expectation is a collapse only where the expectation knows the daily shape:
    # with no season found in a history too short to look for one, every night's trough would be a collapse.
    looked = len(history) * step_seconds >= SEASON_CYCLES * DAY_SECONDS
    return DetectorSettings(season=season, step_seconds=float(step_seconds),
                            peak_window=peak_window, log_offset=log_offset,
                            hold=math.inf if peak_window else DetectorSettings.hold,
                            collapse_fraction=DetectorSettings.collapse_fraction if season or looked else 0.0)


@dataclass(frozen=True)
class Explained:
    """Per sample: the score, the expectation it was compared with, and each detector's own score (the point
    detector: this sample's residual; the shift detector: the smoothed deseasonalised residual; the collapse
    detector: two samples in a row under the expectation, as a share of it; the CUSUM: point residuals
    accumulated beyond their allowance)."""

    scores: np.ndarray
    expected: np.ndarray
    point: np.ndarray
    shift: np.ndarray
    collapse: np.ndarray
    cusum: np.ndarray

    def fired(self, index: int) -> str:
        """Which detector gave sample ``index`` its score."""
        best = max(("point", self.point[index]), ("shift", self.shift[index]), ("collapse", self.collapse[index]),
                   ("cusum", self.cusum[index]), key=lambda pair: pair[1])
        return best[0]


def explain_series(values: np.ndarray, detector: StreamingDetector) -> Explained:
    """``score_many`` that also records what each sample was expected to be and which detector scored it."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    scores, expected, point, shift = np.zeros(n), np.full(n, np.nan), np.zeros(n), np.zeros(n)
    collapse, cusum = np.zeros(n), np.zeros(n)
    for k, v in enumerate(values.tolist()):
        scores[k] = detector.update(v)
        expected[k], point[k], shift[k] = detector.last_expected, detector.last_point, detector.last_shift
        collapse[k], cusum[k] = detector.last_collapse, detector.last_cusum
    return Explained(scores, expected, np.nan_to_num(point), np.nan_to_num(shift), np.nan_to_num(collapse),
                     np.nan_to_num(cusum))


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


def alarm_runs(alarms: np.ndarray, merge: int = 7) -> int:
    """Alarm episodes an operator would see: alarmed samples fewer than ``merge`` samples apart are one run."""
    at = np.flatnonzero(alarms)
    return int(len(at) > 0) + int((np.diff(at) >= merge).sum())


def calibrate_runs(scores: np.ndarray, *, runs: float, min_threshold: float = 4.0, merge: int = 7) -> Threshold:
    """The lowest threshold (never below ``min_threshold``) at which the history raises at most ``runs`` alarm
    runs (``alarm_runs``), without labels. Against a share of alarmed samples, one long real episode in the
    history does not push the threshold above every shorter one."""
    scores = np.nan_to_num(np.asarray(scores, dtype=float))
    allowed = int(runs)  # a history shorter than one run's worth allows none: the bar is above all of it
    above = np.unique(scores[scores >= min_threshold])
    if not len(above) or alarm_runs(scores >= min_threshold, merge) <= allowed:
        return Threshold(min_threshold, "runs")
    if allowed == 0:
        return Threshold(float(np.nextafter(above[-1], np.inf)), "runs")
    lo, hi = 0, len(above) - 1  # runs fall (not strictly) as the threshold rises: bisect the candidates
    while lo < hi:
        mid = (lo + hi) // 2
        if alarm_runs(scores >= above[mid], merge) <= allowed:
            hi = mid
        else:
            lo = mid + 1
    return Threshold(float(above[lo]), "runs")


SAMPLES_PER_SERIES_DAY = 1440  # a day at one-minute sampling: the alarm budget's unit for faster series


def series_days(samples: int, step_seconds: float) -> float:
    """How many days of an operator's alarm budget ``samples`` samples are worth: the wall time they cover, or
    for series sampled faster than once a minute (seconds-long session traces) one day per 1,440 samples; a
    budget of one alarm run per wall-time day would allow a ten-minute trace none at all."""
    return max(samples * step_seconds / 86_400.0, samples / SAMPLES_PER_SERIES_DAY)


def calibrate_days(scores: np.ndarray, *, step_seconds: float, runs_per_day: float = 1.0,
                   min_threshold: float = 4.0, blocks_per_day: int = 8) -> Threshold:
    """A threshold from unlabelled history that raises about ``runs_per_day`` alarm runs a series-day
    (``series_days``): the history is cut into blocks of 1/``blocks_per_day`` series-day, and the threshold is
    the quantile of the blocks' maxima that ``runs_per_day`` blocks a day exceed. Real incidents in the history
    fill a few blocks and move that quantile little, where a budget of runs (``calibrate_runs``) lets them spend
    the whole allowance and lifts the bar over every shorter one. Never below ``min_threshold``."""
    scores = np.nan_to_num(np.asarray(scores, dtype=float))
    if not len(scores):
        return Threshold(min_threshold, "days")
    day = len(scores) / series_days(len(scores), step_seconds)  # samples in one series-day
    block = max(1, round(day / blocks_per_day))
    blocks = len(scores) // block
    if blocks == 0:
        return Threshold(max(min_threshold, float(np.nextafter(scores.max(), np.inf))), "days")
    maxima = scores[:blocks * block].reshape(blocks, block).max(axis=1)
    share = min(1.0, runs_per_day * block / day)  # a daily series' block is a whole day
    return Threshold(max(min_threshold, float(np.quantile(maxima, 1.0 - share))), "days")


def detect(values: np.ndarray, *, train_fraction: float = 0.5, labels: np.ndarray | None = None,
           **params) -> tuple[np.ndarray, np.ndarray, Threshold]:
    """Scores and alarms for a whole series. The threshold comes from the first ``train_fraction`` of it (and
    from its labels there, when given); the scores themselves never look ahead."""
    values = np.asarray(values, dtype=float)
    scores = score_series(values, **params)
    cut = max(1, int(len(values) * train_fraction))
    threshold = calibrate(scores[:cut], None if labels is None else np.asarray(labels)[:cut])
    return scores, scores >= threshold.value, threshold
