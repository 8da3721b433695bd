"""AIOps 2018 with our detector only, under `bench/analytics.py aiops`'s protocol (causal scores; the threshold with
the best point-wise F1 on each KPI's first half; F1 and delay-7 F1 on its second half), for several collapse holds:

    python bench/issue30/aiops_ours.py [HOURS ...]     # e.g. 6 24 72 inf  (6: the default hold)
    python bench/issue30/aiops_ours.py --delay7-threshold [HOURS ...]

With ``--delay7-threshold`` each KPI's threshold is instead the one with the best delay-7 F1 on its first half
(tried in session 19: the metric's own threshold, still without test labels; it scored lower on the second half).

The PyOD baselines of the full section take minutes and do not depend on our settings; this loop is what the
third pass of issue 30 used to compare holds (BENCHMARKS.md)."""

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import analytics
from netpilot.analytics.detect import calibrate, settings_for
from netpilot.analytics.scoring import f1, point_adjust

DELAY7 = "--delay7-threshold" in sys.argv
hours = [float(h) for h in sys.argv[1:] if h != "--delay7-threshold"] or [6.0]


def best_delay7_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, its delay-7 F1) with the best delay-7 F1 on these labels, among the scores' upper quantiles."""
    candidates = np.unique(np.quantile(scores, np.r_[np.linspace(0.5, 0.99, 50), np.linspace(0.99, 1.0, 101)]))
    scored = [(f1(point_adjust(scores >= t, labels, 7), labels), t) for t in candidates]
    best_f1, best = max(scored, key=lambda pair: pair[0])
    return float(best), float(best_f1)


kpis = []
for name, frame in analytics._aiops_kpis():
    values, labels = analytics._regrid(frame)
    kpis.append((name, values, labels, float(np.median(np.diff(frame["timestamp"].to_numpy())))))
for hold in hours:
    started = time.perf_counter()
    rows = []
    for _name, values, labels, step in kpis:
        settings = dataclasses.replace(settings_for(values, step), collapse_hold_seconds=hold * 3600.0)
        scores = np.nan_to_num(settings.score(values))
        cut = len(values) // 2
        if DELAY7:
            value, train_f1 = best_delay7_threshold(scores[:cut], labels[:cut])
        else:
            threshold = calibrate(scores[:cut], labels[:cut])
            value, train_f1 = threshold.value, threshold.train_f1 or 0.0
        alarms = scores[cut:] >= value
        rows.append((f1(alarms, labels[cut:]), f1(point_adjust(alarms, labels[cut:], 7), labels[cut:]), train_f1))
    point, delay7, first_half = np.mean(rows, axis=0)
    rule = ", delay-7 thresholds" if DELAY7 else ""
    print(f"collapse hold {hold:g} h{rule}: point-wise F1 {point:.3f}, delay-7 F1 {delay7:.3f}, first-half F1 "
          f"{first_half:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
