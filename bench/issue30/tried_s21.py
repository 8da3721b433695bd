"""Four changes to the detector's expectation and noise estimate, tried in session 21 and not kept (BENCHMARKS.md,
issue 30, fifth pass), scored under `bench/analytics.py sustained`'s protocol (ours only) or the `aiops` section's:

    python bench/issue30/tried_s21.py sustained VARIANT [SEEDS]    # e.g. sustained per-bin-scale 234
    python bench/issue30/tried_s21.py aiops VARIANT

VARIANT: as-is, log-offset-mean, log-offset-p90, log-offset-p90x4, level-0.05 (0.1, 0.2, 0.4), per-bin-scale,
median-scale. SEEDS: digits (default 01, the tuning seeds; 234 held out). The per-bin and median scales are a copy
of `StreamingDetector.update` with its scale changed (no peak window, no CUSUM: the CLI's settings use neither)."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import analytics as A
from netpilot.analytics import detect as D
from netpilot.analytics.detect import calibrate, settings_for
from netpilot.analytics.scoring import f1, point_adjust

_M = D._MAD_TO_SIGMA
_MED = 1.4826  # the median absolute deviation of a normal variable times this is its standard deviation


def _median_step(median: float, value: float, step: float) -> float:
    """One step of a running median of ``value`` (multiplicative: up or down by ``step`` in logs)."""
    if median <= 0.0:
        return value
    return median * math.exp(step if value > median else -step)


class BinScale(D.StreamingDetector):
    """``StreamingDetector`` with a noise scale per seasonal bin (``mode`` "plain" or "max": at least half the
    global one) once a bin has learnt from ``min_bin`` samples, or ("median") the global scale as a running median
    of absolute residuals."""

    __slots__ = ("_bscale", "_bseen", "_bsscale", "bin_alpha", "min_bin", "mode")
    def reset(self) -> None:
        super().reset()
        self._bscale = [0.0] * self.season_bins
        self._bsscale = [0.0] * self.season_bins
        self._bseen = [0] * self.season_bins

    def update(self, value: float) -> float:
        ticks = self._ticks = self._ticks + 1
        if value != value or value in (math.inf, -math.inf):
            return 0.0
        season = self.season
        phase = (ticks - 1) % season * self.season_bins // season if season else 0
        offset = self._offsets[phase] if season else 0.0
        count = self._count = self._count + 1
        if count == 1:
            self._level = self._smooth = value - offset
            return 0.0
        level, gscale = self._level, self._scale
        bseen = self._bseen[phase] if season else 0
        if season and bseen >= self.min_bin:
            scale, sscale = self._bscale[phase], self._bsscale[phase]
            if self.mode == "max":  # never below a share of the global
                scale, sscale = max(scale, 0.5 * gscale), max(sscale, 0.5 * self._smooth_scale)
        else:
            scale, sscale = gscale, self._smooth_scale
        expected = level + offset
        residual = value - expected
        smooth = self._smooth + self.smooth_alpha * (value - offset - self._smooth)
        smooth_residual = smooth - level
        learning = ticks > season
        if not learning:
            self._skipped += 1
        learnt = count - self._skipped
        a_scale = max(self.scale_alpha, 1.0 / learnt)
        a_level = max(self.level_alpha, 1.0 / count)
        floor = 1e-9 + 1e-9 * abs(level)
        warm = learning and learnt > self.warmup
        if warm:
            f = _MED if self.mode == "median" else _M
            z = abs(residual) / (f * scale + floor)
            zs = abs(smooth_residual) / (f * sscale + floor)
            score = z if z > zs else zs
        else:
            z = zs = score = 0.0
        if self.collapse:
            drop = -residual if residual < 0.0 else 0.0
            if warm:
                zc = D.COLLAPSE_SCORE * (drop if drop < self._drop else self._drop) / self.collapse
                if zc > score:
                    score = zc
            self._drop = drop
            if warm and level - smooth >= self.collapse:
                self._low = ticks
        self._smooth = smooth
        if warm and score >= self.hold:
            held, memory = self._held, max(season, self.max_hold)
            if held < self.max_hold or (self.collapse and held < self.collapse_hold and ticks - self._low < memory
                                        and ticks - self._accepted >= memory):
                self._held = held + 1
            else:
                self._held = 0
                if smooth > level:
                    self._accepted = ticks
                self._level = smooth
            return score
        self._held = 0
        bound = self.clip * _M * scale if warm else math.inf
        clipped = residual if -bound <= residual <= bound else math.copysign(bound, residual)
        self._level = level + a_level * clipped
        if learning:
            gb = self.clip * _M * gscale if warm else math.inf
            if self.mode == "median":
                step = min(0.5, max(self.scale_alpha, 2.0 / learnt))
                self._scale = _median_step(gscale, abs(residual), step)
                self._smooth_scale = _median_step(self._smooth_scale, abs(smooth_residual), step)
            else:
                self._scale = gscale + a_scale * (min(abs(residual), gb) - gscale)
                sbound = self.clip * _M * self._smooth_scale if warm else math.inf
                self._smooth_scale += a_scale * (min(abs(smooth_residual), sbound) - self._smooth_scale)
            if season:
                bseen = self._bseen[phase] = bseen + 1
                ab = max(self.bin_alpha, 1.0 / bseen)
                bs, bss = self._bscale[phase], self._bsscale[phase]
                b1 = self.clip * _M * bs if bseen > self.min_bin else math.inf
                b2 = self.clip * _M * bss if bseen > self.min_bin else math.inf
                self._bscale[phase] = bs + ab * (min(abs(residual), b1) - bs)
                self._bsscale[phase] = bss + ab * (min(abs(smooth_residual), b2) - bss)
        if season:
            seen = self._seen[phase] = self._seen[phase] + 1
            a_season = max(self.season_alpha, 1.0 / seen)
            self._offsets[phase] = offset + a_season * clipped
        return score

def make(settings: D.DetectorSettings, min_bin: int = 30, mode: str = "plain", bin_alpha: float | None = None
         ) -> BinScale:
    d = BinScale(**settings.kwargs())
    d.min_bin, d.mode = min_bin, mode
    bins = settings.season_bins
    per_season = min(1.0, 0.1 * bins / settings.season) if settings.season else 0.0
    d.bin_alpha = bin_alpha if bin_alpha is not None else per_season
    return d


def _settings(variant: str, values: np.ndarray, step: float) -> D.DetectorSettings:
    settings = settings_for(values, step)
    if variant.startswith("log-offset") and settings.log_offset is not None:
        history = values[:len(values) // 2]
        history = history[np.isfinite(history)]
        base = {"log-offset-mean": (np.mean(history), 0.05), "log-offset-p90": (np.quantile(history, 0.9), 0.05),
                "log-offset-p90x4": (np.quantile(history, 0.9), 0.2)}[variant]
        settings = dataclasses.replace(settings, log_offset=max(base[1] * float(base[0]), settings.log_offset))
    if variant.startswith("level-"):
        settings = dataclasses.replace(settings, level_alpha=float(variant.split("-")[1]))
    return settings


def scorer(variant: str):
    def score(values: np.ndarray, step: float) -> np.ndarray:
        settings = _settings(variant, values, step)
        if variant == "per-bin-scale":
            return make(settings, 30, "max").score_many(settings.transform(values))
        if variant == "median-scale":
            return make(settings, 1 << 40, "median").score_many(settings.transform(values))
        return settings.score(values)
    return score


def sustained(variant: str, seeds: tuple[int, ...]) -> None:
    result = A._sustained_run(A._sustained_series(), seeds, scorer(variant), A._calibrate_days)
    for family, r in result.items():
        kinds = " / ".join(f"{r[f'recall_{k}']:.0%}" for k in A.SUSTAINED_KINDS)
        print(f"{family}: found {r['recall']:.1%} ({kinds}), false runs a series-day "
              f"{r['false_runs_per_series_day']:.2f}")


def aiops(variant: str) -> None:
    rows = []
    score = scorer(variant)
    for _name, frame in A._aiops_kpis():
        values, labels = A._regrid(frame)
        scores = np.nan_to_num(score(values, float(np.median(np.diff(frame["timestamp"].to_numpy())))))
        cut = len(values) // 2
        alarms = scores[cut:] >= calibrate(scores[:cut], labels[:cut]).value
        rows.append((f1(alarms, labels[cut:]), f1(point_adjust(alarms, labels[cut:], 7), labels[cut:])))
    point, delay7 = np.mean(rows, axis=0)
    print(f"AIOps: point-wise F1 {point:.3f}, delay-7 F1 {delay7:.3f}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "sustained":
        sustained(sys.argv[2], tuple(int(c) for c in (sys.argv[3] if len(sys.argv) > 3 else "01")))
    elif len(sys.argv) == 3 and sys.argv[1] == "aiops":
        aiops(sys.argv[2])
    else:
        raise SystemExit(__doc__)
