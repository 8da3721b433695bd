"""Issue 30, session 25: the context detector (``netpilot.analytics.context``) measured where the CLI's default
detector is measured, beside it and in union with it (each score over its own label-free threshold, the larger).

    python bench/issue30/context_s25.py nab-range      # NAB standard, the bins' range from: the whole file (NAB's
                                                       # inputMin/inputMax), its first half (the CLI), its probation
    python bench/issue30/context_s25.py sustained [FAMILY ...]   # injected faults, held-out seeds 2-4
    python bench/issue30/context_s25.py aiops          # AIOps 2018 under bench/analytics.py aiops's protocol
    python bench/issue30/context_s25.py speed          # µs a sample (p50, p99: wall clock, thread CPU time) on NAB
                                                       # files, one update at a time; the whole file in one call

Figures and what they say are in BENCHMARKS.md (issue 30, sixth pass)."""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import analytics
from netpilot.analytics.context import ContextDetector, context_scores, rest_for
from netpilot.analytics.detect import calibrate, settings_for
from netpilot.analytics.scoring import NAB_PROFILES, NabFile, f1, point_adjust


def nab_range() -> None:
    files = analytics._nab_files()
    prepared = [NabFile.prepare(len(frame), spans, NAB_PROFILES["standard"]) for _, frame, spans in files]
    for label, history in (("whole file", lambda v: v), ("first half", lambda v: v[:len(v) // 2]),
                           ("probation (15 %, at most 750)", lambda v: v[:min(int(0.15 * len(v)), 750)])):
        started = time.perf_counter()
        scores = [ContextDetector(rest=rest_for(len(v))).fit(history(v)).score_many(v)
                  for v in (frame["value"].to_numpy(dtype=float) for _, frame, _ in files)]
        seconds = time.perf_counter() - started
        best, threshold = analytics._nab_best(prepared, scores)
        fixed = analytics._nab_score(prepared, scores, analytics.CONTEXT_THRESHOLD)
        print(f"range from the {label}: corpus {best:.1f} (threshold {threshold:.3f}), split "
              f"{analytics._nab_split(prepared, scores):.1f}, at 0.75 {fixed:.1f} ({seconds:.0f} s)", flush=True)


def _union(values: np.ndarray, step: float) -> np.ndarray:
    ours = np.nan_to_num(analytics._ours(values, step))
    threshold = analytics._calibrate_days(ours[:len(values) // 2], step)
    return np.maximum(ours / threshold, context_scores(values) / analytics.CONTEXT_THRESHOLD)


def sustained(families: list[str]) -> None:
    series = analytics._sustained_series()
    detectors = {"context": (lambda v, step: context_scores(v), lambda s, step: analytics.CONTEXT_THRESHOLD),
                 "union": (_union, lambda s, step: 1.0), "ours": (analytics._ours, analytics._calibrate_days)}
    for family in families or list(analytics.SUSTAINED_FAMILIES):
        members = [s for s in series if s[0] == family]
        for name, (scorer, calibrator) in detectors.items():
            r = analytics._sustained_run(members, analytics.SUSTAINED_HELD_OUT_SEEDS, scorer, calibrator)[family]
            kinds = " / ".join(f"{r[f'recall_{k}']:.0%}" for k in analytics.SUSTAINED_KINDS)
            print(f"{family} {name}: found {r['recall']:.1%} ({kinds}), false runs {r['false_runs_per_series_day']:.2f}"
                  f" a series-day, {r['false_runs_per_1000_points']:.2f} per 1,000 samples, normal samples alarmed "
                  f"{r['normal_alarmed_share']:.2%}", flush=True)


def aiops() -> None:
    rows = []
    for _name, frame in analytics._aiops_kpis():
        values, labels = analytics._regrid(frame)
        step = float(np.median(np.diff(frame["timestamp"].to_numpy())))
        cut = len(values) // 2
        ours = np.nan_to_num(settings_for(values, step).score(values))
        context = ContextDetector(rest=rest_for(len(values))).fit(values[:cut]).score_many(values)
        thresholds = [calibrate(s[:cut], labels[:cut]).value for s in (ours, context)]
        alarms = [ours[cut:] >= thresholds[0], context[cut:] >= thresholds[1]]
        alarms.append(alarms[0] | alarms[1])
        rows.append([(f1(a, labels[cut:]), f1(point_adjust(a, labels[cut:], 7), labels[cut:])) for a in alarms])
    for name, (point, delay7) in zip(("ours", "context", "union"), np.mean(rows, axis=0), strict=True):
        print(f"AIOps {name}: point-wise F1 {point:.3f}, delay-7 F1 {delay7:.3f}")


def speed() -> None:
    """Per sample, the wall clock (what a caller waits) and the thread's CPU time (what the detector costs: a
    sample the scheduler preempts on a shared machine waits milliseconds, and the CPU time does not count them);
    then the whole file in one ``score_many`` call."""
    files = {name: frame["value"].to_numpy(dtype=float) for name, frame, _ in analytics._nab_files()}
    ContextDetector().fit(np.zeros(1)).score_many(np.zeros(2))  # the compiled code loaded before the clocks run
    for name in ("realKnownCause/machine_temperature_system_failure.csv", "realTweets/Twitter_volume_AAPL.csv",
                 "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv", "artificialNoAnomaly/art_noisy.csv"):
        values = files[name]
        detector = ContextDetector(rest=rest_for(len(values))).fit(values[:len(values) // 2])
        wall, cpu = np.empty(len(values)), np.empty(len(values))
        for k, value in enumerate(values.tolist()):
            started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
            detector.update(value)
            cpu[k], wall[k] = time.thread_time_ns() - started_cpu, time.perf_counter_ns() - started
        (p50, p99), (cpu50, cpu99) = np.percentile(wall, [50, 99]) / 1000, np.percentile(cpu, [50, 99]) / 1000
        started = time.perf_counter()
        ContextDetector(rest=rest_for(len(values))).fit(values[:len(values) // 2]).score_many(values)
        print(f"{name}: {len(values)} samples, p50 {p50:.0f} µs, p99 {p99:.0f} µs a sample (CPU p50 {cpu50:.0f} µs, "
              f"p99 {cpu99:.0f} µs); score_many {time.perf_counter() - started:.2f} s", flush=True)


if __name__ == "__main__":
    section = sys.argv[1] if len(sys.argv) > 1 else "nab-range"
    {"nab-range": nab_range, "sustained": lambda: sustained(sys.argv[2:]), "aiops": aiops,
     "speed": speed}[section]()
