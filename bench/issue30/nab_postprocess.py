"""NAB v1.1 (standard profile) with post-processing tried on our raw score in session 19, all dropped (BENCHMARKS.md,
issue 30): an anomaly likelihood (how far the mean of the last few scores sits above the scores' own recent
distribution, in its standard deviations, as Numenta's HTM post-processes its raw score) alone or beside the raw
score, and a windowed mean-shift score of the values beside it. Each is scored as `bench/analytics.py nab` scores
ours: one alarm per episode (a sample counts when it beats every score of the last 1,000), the corpus threshold
NAB's protocol picks, and the split (threshold from the even files scored on the odd ones, and the reverse).

    python bench/issue30/nab_postprocess.py
"""

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import analytics
from netpilot.analytics.detect import settings_for
from netpilot.analytics.scoring import NAB_PROFILES, NabFile

files = analytics._nab_files()
prepared = [NabFile.prepare(len(frame), spans, NAB_PROFILES["standard"]) for _, frame, spans in files]


def raw_scores(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, our raw score without the peak window, the score as the benchmark scores it)."""
    values = frame["value"].to_numpy(dtype=float)
    step = float(np.median(np.diff(pd.to_datetime(frame["timestamp"]).to_numpy()).astype("timedelta64[s]")
                           .astype(float)))
    settings = settings_for(values, step, peak_window=analytics.NAB_PEAK_WINDOW)
    return values, dataclasses.replace(settings, peak_window=0).score(values), settings.score(values)


def peaks(scores: np.ndarray, window: int = analytics.NAB_PEAK_WINDOW) -> np.ndarray:
    """A score where it beats every score of the last ``window`` samples, else 0 (the detector's peak window)."""
    before = pd.Series(scores).shift(1).rolling(window, min_periods=1).max().to_numpy()
    before[0] = -np.inf
    return np.where(scores > before, scores, 0.0)


def _window_stats(x: np.ndarray, end: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of x[end - width:end] for each position (empty windows give 0 and 1)."""
    total, squares = np.cumsum(np.r_[0.0, x]), np.cumsum(np.r_[0.0, x * x])
    start = np.maximum(0, end - width)
    count = np.maximum(end - start, 1)
    mean = (total[end] - total[start]) / count
    var = (squares[end] - squares[start]) / count - mean * mean
    return mean, np.sqrt(np.maximum(var, 1e-12))


def likelihood(scores: np.ndarray, short: int, history: int, warmup: int = 100) -> np.ndarray:
    """How many standard deviations the mean of the last ``short`` scores sits above the mean of the ``history``
    scores before this one (0 during the first ``warmup`` samples)."""
    index = np.arange(len(scores))
    recent, _ = _window_stats(scores, index + 1, np.full(len(scores), short))
    mean, sd = _window_stats(scores, index, np.full(len(scores), history))
    z = (recent - mean) / sd
    z[index < warmup] = 0.0
    return z


def mean_shift(values: np.ndarray, short: int, history: int) -> np.ndarray:
    """|mean of the last ``short`` values - mean of the ``history`` before them| in the latter's standard
    deviations (0 until half a history has been seen)."""
    v = np.nan_to_num(values)
    index = np.arange(len(v))
    start = np.maximum(0, index + 1 - short)
    recent, _ = _window_stats(v, index + 1, index + 1 - start)
    mean, sd = _window_stats(v, start, np.full(len(v), history))
    z = np.abs(recent - mean) / sd
    z[start < history // 2] = 0.0
    return z


def report(label: str, scores: list[np.ndarray]) -> None:
    best, _ = analytics._nab_best(prepared, scores)
    halves = []
    for parity in (0, 1):
        train = [i for i in range(len(files)) if i % 2 == parity]
        test = [i for i in range(len(files)) if i % 2 != parity]
        _, threshold = analytics._nab_best([prepared[i] for i in train], [scores[i] for i in train])
        halves.append(analytics._nab_score([prepared[i] for i in test], [scores[i] for i in test], threshold))
    print(f"{label:42s} corpus threshold {best:5.1f}   split {np.mean(halves):5.1f}", flush=True)


started = time.perf_counter()
data = [raw_scores(frame) for _, frame, _ in files]
print(f"scored {len(files)} files in {time.perf_counter() - started:.1f} s")
report("ours, as benchmarked", [shipped for _, _, shipped in data])
report("ours, peak window applied here", [peaks(raw) for _, raw, _ in data])
for short, history in ((10, 2000), (5, 1000), (20, 4000)):
    lik = [likelihood(raw, short, history) for _, raw, _ in data]
    report(f"likelihood {short}/{history}", [peaks(x) for x in lik])
    report(f"max(ours, likelihood {short}/{history})", [peaks(np.maximum(raw, x)) for (_, raw, _), x in zip(data, lik)])
for short, history in ((20, 500), (50, 1000), (10, 300)):
    report(f"max(ours, mean shift {short}/{history})",
           [peaks(np.maximum(raw, mean_shift(values, short, history))) for values, raw, _ in data])
