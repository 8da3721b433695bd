"""AIOps 2018 with our detector only, under `bench/analytics.py aiops`'s protocol (causal scores; the threshold with
the best point-wise F1 on each KPI's first half; F1 and delay-7 F1 on its second half), for several collapse holds:

    python bench/issue30/aiops_ours.py [HOURS ...]     # e.g. 6 24 72 inf  (6: the default hold)

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

hours = [float(h) for h in sys.argv[1:]] or [6.0]
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
        threshold = calibrate(scores[:cut], labels[:cut])
        alarms = scores[cut:] >= threshold.value
        rows.append((f1(alarms, labels[cut:]), f1(point_adjust(alarms, labels[cut:], 7), labels[cut:]),
                     threshold.train_f1 or 0.0))
    point, delay7, first_half = np.mean(rows, axis=0)
    print(f"collapse hold {hold:g} h: point-wise F1 {point:.3f}, delay-7 F1 {delay7:.3f}, first-half F1 "
          f"{first_half:.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
