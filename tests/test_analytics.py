"""Analytics: detection on real labelled data, forecasts that beat naive, RCA on simulator faults, the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_data_dir
from netpilot.analytics.alarms import AlarmCausality, edge_f1
from netpilot.analytics.context import ContextDetector, context_scores, rest_for
from netpilot.analytics.detect import (
    DetectorBank,
    StreamingDetector,
    alarm_runs,
    calibrate,
    calibrate_days,
    calibrate_runs,
    detect,
    explain_series,
    infer_season,
    score_series,
    series_days,
    settings_for,
)
from netpilot.analytics.forecast import Forecaster
from netpilot.analytics.rca import RootCauseLocalizer, Snapshot
from netpilot.analytics.scoring import NAB_PROFILES, NabFile, f1, nab_normalise, point_adjust
from netpilot.cli import app
from netpilot.errors import InputError
from netpilot.model.faults import Fault
from netpilot.model.frame import loss_beyond_overload
from netpilot.model.io import load_network
from netpilot.model.network import Demand, Link, Network, PathPolicy, Router
from netpilot.model.sample import bundled_network_path
from netpilot.telemetry.sim.simulator import Simulator

DATA = shared_data_dir() / "telemetry"
runner = CliRunner()


# --- detection ---------------------------------------------------------------------------------------------------

def test_streaming_equals_batch_and_ignores_gaps():
    rng = np.random.default_rng(0)
    values = rng.normal(10, 1, 500)
    values[[50, 51, 300]] = np.nan
    batch = score_series(values)
    detector = StreamingDetector()
    stream = np.array([detector.update(v) for v in values])
    assert np.array_equal(batch, stream)
    assert batch[50] == 0.0 and batch[300] == 0.0


@pytest.mark.parametrize("params", [{}, {"level_alpha": 0.05, "warmup": 10, "peak_window": 60},
                                    {"warmup": 3, "peak_window": 2}, {"warmup": 3, "peak_window": 5},
                                    {"warmup": 0, "peak_window": 1, "clip": 1.5},
                                    {"season": 24, "hold": 4.0, "max_hold": 20},
                                    {"season": 7, "season_alpha": 0.3, "hold": 3.0, "max_hold": 0, "warmup": 2},
                                    {"season": 50, "hold": 5.0, "max_hold": 60, "peak_window": 10},
                                    {"season": 24, "hold": 4.0, "max_hold": 20, "collapse": 30.0},
                                    {"collapse": 5.0, "warmup": 3, "peak_window": 5},
                                    {"season": 24, "hold": 3.0, "max_hold": 15, "collapse": 20.0, "cusum": 0.5},
                                    {"cusum": 1.0, "warmup": 5, "peak_window": 8},
                                    {"season": 24, "hold": 4.0, "max_hold": 10, "collapse": 30.0,
                                     "collapse_hold": 25},
                                    {"season": 24, "hold": 3.0, "max_hold": 5, "collapse": 20.0,
                                     "collapse_hold": 1 << 62}])
def test_detector_bank_gives_each_series_its_own_detectors_scores(params):
    """The vectorised bank runs the scalar recursion exactly: same scores to the bit, through gaps (NaN and
    infinities, different per series), rebases, level shifts and spikes."""
    rng = np.random.default_rng(7)
    n_series, steps = 40, 400
    values = rng.normal(100, 5, (steps, n_series)) * rng.uniform(0.01, 10, n_series)
    values[rng.random((steps, n_series)) < 0.05] = np.nan
    values[rng.random((steps, n_series)) < 0.01] = np.inf
    values[:3, 5] = np.nan  # a series that starts late
    values[200:, ::3] += 40  # level shifts
    values[rng.integers(0, steps, 30), rng.integers(0, n_series, 30)] *= 3  # spikes
    values += 20 * np.sin(np.arange(steps) * 2 * np.pi / 24)[:, None]  # a daily pattern (24 samples)
    values[300:340, 1::4] *= 0.1  # collapses
    rebase_at = {120: np.arange(0, n_series, 2), 250: np.array([1, 5, 7])}
    bank = DetectorBank(n_series, **params)
    singles = [StreamingDetector(**params) for _ in range(n_series)]
    for step, row in enumerate(values):
        if step in rebase_at:
            chosen = rebase_at[step]
            bank.rebase(chosen, row[chosen] - 3.0)
            for k in chosen:
                singles[k].rebase(row[k] - 3.0)
        assert np.array_equal(bank.expected(), [d.expectation() for d in singles], equal_nan=True), f"step {step}"
        expected = np.array([d.update(float(v)) for d, v in zip(singles, row, strict=True)])
        assert np.array_equal(bank.update(row), expected), f"step {step}"
    assert (expected >= 0).all() and bank.update(values[-1]).shape == (n_series,)
    with pytest.raises(InputError, match="40 values"):
        bank.update(values[0, :10])


def test_the_bank_tells_how_far_a_value_is_from_zero_in_each_series_noise():
    """``deviation``: |value| over the noise the point detector learnt (a residual against the twin: how far the
    sample is from the twin itself); a series that has never varied (no loss yet) makes any value far."""
    rng = np.random.default_rng(3)
    bank = DetectorBank(3, warmup=5)
    for _ in range(300):
        bank.update(np.array([rng.normal(0.0, 1.0), rng.normal(0.0, 10.0), 0.0]))
    far = bank.deviation(np.array([5.0, 5.0, 0.1]))
    assert far[0] == pytest.approx(5.0, rel=0.25) and far[1] == pytest.approx(0.5, rel=0.25)
    assert far[2] > 1e6
    assert (bank.deviation(np.zeros(3)) == 0).all()
    fresh = DetectorBank(2).deviation(np.array([0.0, 1.0]))  # before any sample: nothing is noise yet
    assert fresh[0] == 0 and fresh[1] > 1e6
    with pytest.raises(InputError, match="3 values"):
        bank.deviation(np.zeros(2))


def test_scores_are_causal():
    """Changing the future never changes a past score."""
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, 400)
    changed = values.copy()
    changed[300:] += 50
    assert np.array_equal(score_series(values)[:300], score_series(changed)[:300])


def test_constant_series_and_level_shift():
    values = np.r_[np.full(200, 5.0), np.full(50, 9.0)]
    scores = score_series(values)
    assert scores[:200].max() == 0.0
    assert scores[200] > 100  # a step out of a flat line is as anomalous as it gets


def _machine_temperature() -> tuple[np.ndarray, np.ndarray]:
    """NAB's machine-temperature file: its values and, per labelled window, a mask of the samples inside it."""
    name = "realKnownCause/machine_temperature_system_failure.csv"
    frame = pd.read_csv(DATA / "nab" / "data" / name)
    windows = json.loads((DATA / "nab" / "labels" / "combined_windows.json").read_text())[name]
    ts = pd.to_datetime(frame["timestamp"])
    masks = np.array([((ts >= start) & (ts <= end)).to_numpy() for start, end in windows])
    return frame["value"].to_numpy(float), masks


def test_nab_machine_temperature_windows_detected():
    """NAB's machine-temperature file: the threshold comes from the unlabelled first 15 %; at least three of
    the four labelled failures raise an alarm, and alarms are denser inside the windows than outside."""
    values, windows = _machine_temperature()
    _, alarms, threshold = detect(values, train_fraction=0.15)
    assert threshold.method == "rate"
    inside = np.any(windows, axis=0)
    detected = sum(bool(alarms[mask].any()) for mask in windows)
    assert detected >= 3
    assert alarms[inside].mean() > 2 * alarms[~inside].mean()


def test_context_detector_is_quiet_on_a_learnt_pattern_and_alarms_once_on_a_new_one():
    pattern = np.tile([0.0, 1.0, 2.0, 3.0, 5.0, 7.0, 4.0, 2.0], 60)
    detector = ContextDetector(rest=20).fit(pattern)
    scores = detector.score_many(np.r_[pattern, pattern, [7.0, 0.0, 7.0, 0.0, 7.0, 0.0], pattern[:80]])
    assert scores[480:960].max() == 0.0  # the second round of a pattern already seen: nothing new
    assert scores[960] >= 0.75  # a jump from the top straight to the bottom was never seen
    assert (scores[960:] >= 0.75).sum() == 1  # and the episode rests after its first alarm
    assert scores[961:981].max() == 0.0
    assert detector.foreseen() == [(0.0, 1.0)]  # the pattern goes on with 0: the bin [0, 1) is what comes next
    detector.update(0.0)
    assert detector.foreseen() == [(1.0, 2.0)]


def test_context_detector_reads_values_outside_its_range_as_facts_of_their_own():
    detector = ContextDetector(bits=3).fit(np.array([0.0, 7.0, np.nan]))
    assert detector.facts(0.0) == (0, 2, 4) and detector.facts(7.0) == (1, 3, 5)  # bin 0 and bin 7 of 8
    assert detector.facts(15.0) == (1, 3, 5, 7)  # above the range: a higher bit
    assert detector.facts(-1.0) == (-1,)  # under it: a fact no value in range has
    assert len(detector.facts(1e300)) == 24  # far above it: the top bin, not a thousand facts
    assert detector.facts(math.inf) == detector.facts(1e300) and detector.facts(-math.inf) == (-1,)
    assert detector.facts(math.nan) == detector.facts(0.0)
    wide = ContextDetector().fit(np.array([-1e308, 1e308]))  # a range wider than the largest float
    assert wide.facts(1e308) == (1, 3, 5) and wide.facts(-1e308) == (0, 2, 4)
    assert ContextDetector().fit(np.array([0.0, 1e-323])).bin_width_ > 0  # too narrow to divide: read as flat
    assert detector.update(float("nan")) == 0.0  # a missing sample is read as the bottom, and rests at the start
    with pytest.raises(InputError, match="before fit"):
        ContextDetector().update(1.0)
    with pytest.raises(InputError, match="threshold"):
        ContextDetector(threshold=0.0)
    with pytest.raises(InputError, match="at most 24"):
        ContextDetector(bits=25)
    assert rest_for(4032) == 120 and rest_for(22695) == 150 and rest_for(3) == 1


def test_context_detector_compiled_and_numpy_give_the_same_scores():
    pytest.importorskip("numba", reason="the compiled path needs the [fast] extra; the NumPy path is tested above")
    rng = np.random.default_rng(5)
    values = np.r_[rng.normal(10, 2, 600), rng.normal(14, 4, 300), [np.nan, 1e9, -50.0], rng.normal(10, 2, 200)]
    detectors = [ContextDetector(rest=25, compiled=compiled).fit(values[:400]) for compiled in (False, True)]
    scores = [d.score_many(values) for d in detectors]
    assert np.array_equal(scores[0], scores[1])
    assert (scores[0] >= 0.75).sum() >= 2  # the noise breeds contexts and the shift alarms: both paths were run
    # One value at a time after a run (the compiled path's arrays grew within it), with what each foresaw.
    for value in rng.normal(10, 3, 100).tolist():
        assert detectors[0].foreseen() == detectors[1].foreseen()
        assert detectors[0].update(value) == detectors[1].update(value)


def test_context_detector_reads_a_value_too_far_above_to_scale_as_the_top_bin():
    """Near the float's limit both (value - low) / width and value / width - low / width overflow (inf - inf):
    such a value is far above the range, the top bin, on both paths (it once read NaN, and hung compiled)."""
    from netpilot.analytics._context_kernel import fact_mask

    detector = ContextDetector(rest=1).fit(np.array([3e307]))  # flat: a width of 1/7
    sensed = getattr(fact_mask, "py_func", fact_mask)  # Python first: a regression fails, not hangs
    settings = (detector.low_, detector.bin_width_, detector.bits)
    assert sensed(1.7e308, *settings) == sensed(math.inf, *settings)
    assert sensed(-3e307, -1.7e308, 1 / 7, 3) == sensed(math.inf, *settings)  # the same, under zero
    assert detector.facts(1.7e308) == detector.facts(math.inf)
    values = [3e307, 1.7e308, 3e307, 1.7e308]
    scores = [ContextDetector(rest=1, compiled=compiled).fit(values[:1]).score_many(values)
              for compiled in (False, True)]
    assert np.array_equal(scores[0], scores[1]) and np.isfinite(scores[0]).all()


def test_context_detector_follows_max_active_changed_after_fit():
    """``max_active`` is read on every call, as the NumPy path reads it: the compiled path's group (kept from one
    call to the next) once had room only for the value at fit (raising it failed; lowering it wrote past an
    array)."""
    values = np.random.default_rng(8).normal(0, 1, 900)
    runs = []
    for compiled in (False, True):
        detector = ContextDetector(rest=3, max_active=2, compiled=compiled).fit(values[:300])
        scores = [detector.score_many(values[:300])]
        detector.max_active = 39
        scores.append(detector.score_many(values[300:600]))
        detector.max_active = 1
        scores.extend(detector.update(value) for value in values[600:])
        runs.append(np.hstack(scores))
    assert np.array_equal(runs[0], runs[1])


def test_context_detector_finds_nab_machine_temperature_failures():
    """NAB's machine-temperature file with the CLI's context defaults (range from the first half, rest from the
    length, alarm at 0.75): at least two of the four labelled failures alarm, and alarms are far denser inside
    the windows than outside."""
    values, windows = _machine_temperature()
    alarms = context_scores(values) >= 0.75
    inside = np.any(windows, axis=0)
    detected = sum(bool(alarms[mask].any()) for mask in windows)
    assert detected >= 2
    assert alarms[inside].mean() > 3 * alarms[~inside].mean()


def test_aiops_kpi_two_days_beats_random():
    """One AIOps KPI cut to two days holding labelled anomalies in both: the threshold is set on day one's
    labels, and day two's delay-7 F1 beats a random score's under the same protocol."""
    path = DATA / "aiops2018_kpi" / "phase2_train" / "05f10d3a-239c-3bef-9bdc-a2feeb0037aa.csv.gz"
    with gzip.open(path, "rt") as handle:
        frame = pd.read_csv(handle, header=None, names=["timestamp", "value", "label"])
    labels = frame["label"].to_numpy().astype(bool)
    day = 1440
    start = next(s for s in range(0, len(frame) - 2 * day, day // 2)
                 if labels[s:s + day].any() and labels[s + day:s + 2 * day].any())
    values, labels = frame["value"].to_numpy(float)[start:start + 2 * day], labels[start:start + 2 * day]
    scores, _, threshold = detect(values, labels=labels, train_fraction=0.5)
    ours = f1(point_adjust(scores[day:] >= threshold.value, labels[day:], 7), labels[day:])
    noise = np.random.default_rng(0).random(2 * day)
    random_threshold = calibrate(noise[:day], labels[:day]).value
    chance = f1(point_adjust(noise[day:] >= random_threshold, labels[day:], 7), labels[day:])
    assert ours > max(0.3, chance)


def test_calibrate_without_labels_respects_rate_and_floor():
    scores = np.random.default_rng(2).normal(0, 1, 10_000) ** 2
    assert calibrate(scores, alarm_rate=0.01).value >= 3.0
    assert calibrate(scores, alarm_rate=0.01, min_threshold=0.0).value == pytest.approx(
        np.quantile(scores, 0.99))


def _daily_traffic(days: int, seed: int) -> np.ndarray:
    """Cell-like traffic: 2-minute samples, a daily shape (busy days, quiet nights), multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * 720)
    shape = 1.0 + 0.8 * np.sin(2 * np.pi * t / 720) + 0.3 * np.sin(4 * np.pi * t / 720 + 1)
    return 100.0 * np.maximum(shape, 0.2) * rng.lognormal(0.0, 0.15, len(t))


def test_infer_season_from_sampling_and_autocorrelation():
    assert infer_season(np.log(_daily_traffic(4, 0)), 120.0) == 720
    assert infer_season(np.random.default_rng(0).normal(0, 1, 4 * 720), 120.0) == 0  # no season to find
    assert infer_season(np.log(_daily_traffic(2, 0)), 120.0) == 0  # two days: too short to trust
    weekdays = np.tile([5.0, 5.2, 4.9, 5.1, 5.0, 2.0, 1.8], 6) + np.random.default_rng(1).normal(0, 0.2, 42)
    assert infer_season(weekdays, 86_400.0) == 7  # daily samples: a week (a lag of one day is no season)


@pytest.mark.parametrize("seed", [1, 2])
def test_sustained_collapse_alarms_and_is_not_absorbed(seed):
    """A collapse to 15 % for 80 minutes on day 6 of cell-like traffic: alarmed within 7 samples under a
    threshold set from the clean first half without labels, and the expectation during it stays at the normal
    level (the hold), where the detector as it was learns the collapse as normal and goes quiet."""
    values = _daily_traffic(8, seed)
    start, end = 6 * 720 + 300, 6 * 720 + 340
    normal = values[start:end].copy()
    values[start:end] *= 0.15
    settings = settings_for(values, 120.0)
    assert settings.season == 720 and settings.log_offset is not None
    explained = explain_series(settings.transform(values), settings.detector())
    half = len(values) // 2
    threshold = calibrate_days(explained.scores[:half], step_seconds=120.0)
    assert explained.scores[start:start + 8].max() >= threshold.value
    assert explained.fired(int(start + np.argmax(explained.scores[start:start + 8]))) in (
        "point", "shift", "collapse")
    expected = settings.untransform(explained.expected[start:end])
    assert np.median(expected / normal) > 0.6  # still expects the normal traffic, not the collapse
    assert alarm_runs(explained.scores[half:] >= threshold.value) <= 4  # the fault and at most a few others
    plain = score_series(values)
    assert plain[end - 10:end].max() < explained.scores[end - 10:end].max()


def test_a_collapse_that_lasts_days_stays_a_fault():
    """A cell asleep for two days (traffic at 10 %, nights included): with the collapse hold unbounded it stays
    alarmed and expected at its normal traffic until it wakes, where the default hold, released after six hours,
    takes the collapse as the new normal and goes quiet within the first day."""
    values = _daily_traffic(10, 3)
    start, end = 6 * 720, 8 * 720
    values[start:end] *= 0.1
    default = settings_for(values, 120.0)
    assert default.collapse_hold == default.max_hold  # off by default: the sustained benchmark's false runs
    settings = dataclasses.replace(default, collapse_hold_seconds=math.inf)
    assert settings.collapse > 0.0 and settings.collapse_hold > 2 * 720
    explained = explain_series(settings.transform(values), settings.detector())
    assert (explained.scores[start + 5:end] >= 4.0).mean() > 0.95
    assert np.median(settings.untransform(explained.expected[end - 360:end]) / values[end - 360:end]) > 5
    assert (explained.scores[end + 720:] >= 4.0).mean() < 0.05  # woken up: quiet again
    assert (default.score(values)[start + 720:end] >= 4.0).mean() < 0.5


def test_the_return_from_an_accepted_surge_is_no_collapse():
    """A surge to 4x held past max_hold is taken as the new normal; the return to the old traffic a few hours
    later falls under 40 % of that level, but it is not held beyond max_hold as a collapse."""
    values = _daily_traffic(10, 4)
    start, end = 6 * 720, 6 * 720 + 300  # ten hours at 4x: held for six, then accepted
    values[start:end] *= 4.0
    settings = dataclasses.replace(settings_for(values, 120.0), collapse_hold_seconds=math.inf)
    scores = settings.score(values)
    after = scores[end + settings.max_hold + 30:end + 720]
    assert (after >= 4.0).mean() < 0.1


def test_calibrate_runs_counts_episodes_not_samples():
    scores = np.zeros(1000)
    scores[100:300] = 9.0  # one long real episode
    scores[[500, 700, 900]] = [5.0, 6.0, 7.0]
    assert alarm_runs(scores >= 5.0) == 4
    assert calibrate_runs(scores, runs=2).value == 7.0
    assert calibrate_runs(scores, runs=10).value == 4.0  # the floor
    assert calibrate_runs(scores, runs=0.5).value > 9.0  # under one run's worth of history: above all of it
    assert calibrate(scores, alarm_rate=0.01).value == 9.0  # a share of samples lands on the long episode


def test_calibrate_days_is_not_lifted_by_one_long_real_episode():
    """Block maxima: a day-long real episode in the history fills a few blocks and leaves the threshold at what
    the quiet days need, where a budget of runs lets it spend the allowance and lifts the bar above it."""
    rng = np.random.default_rng(3)
    step, day = 120.0, 720
    scores = np.abs(rng.normal(0, 1, 6 * day))
    scores[rng.integers(0, 6 * day, 12)] = 5.5  # two short real blips a day
    scores[2 * day:2 * day + 60] = 40.0  # one long real incident
    assert calibrate_days(scores, step_seconds=step).value < 6.0
    assert calibrate_runs(scores, runs=6).value == 40.0
    assert calibrate_days(scores, step_seconds=step, min_threshold=8.0).value == 8.0  # the floor
    short = np.r_[scores[:40], 6.5, scores[:40]]  # under one block (90 samples): above all of it
    assert calibrate_days(short, step_seconds=step).value > 6.5
    assert calibrate_days(np.arange(30.0), step_seconds=86_400.0).value == 4.0  # daily: each day may alarm


def test_series_days_counts_fast_traces_by_samples():
    assert series_days(720, 120.0) == 1.0  # a day of two-minute samples
    assert series_days(1440, 1.0) == 1.0  # 24 minutes of one-second samples: a day of an alarm budget
    assert series_days(7, 86_400.0) == 7.0


def test_collapse_detector_needs_no_noise_estimate():
    """A counter falling to under the collapse share of its expectation two samples in a row scores the
    collapse score, however wide its noise (here wider than the fall)."""
    rng = np.random.default_rng(5)
    values = rng.normal(5, 1.5, 600)  # a log-scaled counter whose noise is wider than the fall below
    values[500:510] = 5 + np.log(0.1)  # a fall to a tenth of its level
    explained = explain_series(values, StreamingDetector(collapse=-np.log(0.4), warmup=30))
    assert explained.point[501] < 4.0 <= explained.collapse[501] and explained.fired(501) == "collapse"
    assert explained.scores[501] == explained.collapse[501]
    assert (StreamingDetector().score_many(values) == score_series(values)).all()  # off by default
    with pytest.raises(InputError, match="collapse"):
        StreamingDetector(collapse=-1.0)


def test_no_collapse_detector_where_the_daily_shape_is_unknown():
    """Three days of cell traffic, the first half (1.5 days) too short to look for a daily season: every
    night's trough would fall under 40 % of a flat expectation, so the collapse detector is off and the nights
    raise no alarm; with eight days (a season found) it is on."""
    short = _daily_traffic(3, 4)
    settings = settings_for(short, 120.0)
    assert settings.season == 0 and settings.log_offset is not None and settings.collapse == 0.0
    scores = settings.score(short)
    threshold = calibrate_days(scores[:len(short) // 2], step_seconds=120.0).value
    assert alarm_runs(scores[len(short) // 2:] >= threshold) <= 1
    assert settings_for(_daily_traffic(8, 4), 120.0).collapse > 0.0


def test_cusum_accumulates_a_shift_too_small_for_one_sample():
    rng = np.random.default_rng(6)
    values = rng.normal(0, 1, 700)
    values[600:] += 1.5  # a shift of 1.5 standard deviations: no single sample stands out
    explained = explain_series(values, StreamingDetector(cusum=0.5, hold=4.0, max_hold=50))
    assert explained.point[600:620].max() < 6.0 <= explained.cusum[600:620].max()
    assert explained.cusum[100:600].max() < explained.cusum[600:620].max()
    assert explained.fired(int(600 + np.argmax(explained.cusum[600:620]))) == "cusum"
    assert StreamingDetector().score_many(values).max() < explained.scores.max()  # off by default


# --- scoring -----------------------------------------------------------------------------------------------------

def test_nab_null_and_perfect():
    windows = [(2000, 2099), (5000, 5099)]
    file = NabFile.prepare(10_000, windows, NAB_PROFILES["standard"])
    never = np.zeros(10_000, dtype=bool)
    perfect = never.copy()
    perfect[[2000, 5000]] = True
    assert nab_normalise(file.score(never)[0], file.null, file.perfect) == pytest.approx(0.0)
    assert nab_normalise(file.score(perfect)[0], file.null, file.perfect) == pytest.approx(100.0)
    late = never.copy()
    late[[2099, 5099]] = True  # the last point of a window earns about nothing
    assert file.score(late)[0] < file.score(perfect)[0] - 1.5
    false_alarm = perfect.copy()
    false_alarm[9000] = True
    assert file.score(false_alarm)[0] == pytest.approx(file.score(perfect)[0] - 0.11)


def test_point_adjust_delay():
    labels = np.zeros(30, dtype=bool)
    labels[10:20] = True
    early, late = np.zeros(30, dtype=bool), np.zeros(30, dtype=bool)
    early[12], late[19] = True, True
    assert point_adjust(early, labels, 7)[10:20].all()
    assert not point_adjust(late, labels, 7).any()
    assert point_adjust(late, labels)[10:20].all()


# --- forecasting -------------------------------------------------------------------------------------------------

def _lte(column: str = "rb_down") -> np.ndarray:
    frame = pd.read_csv(DATA / "lte_barcelona" / "LesCorts.csv")
    return frame[column].ffill().bfill().to_numpy(float)


def test_forecast_beats_naive_on_real_cell():
    """LesCorts PRB use, one hour (30 steps) ahead: the model picked by backtest on the history before each of
    20 later origins has a lower MAE there than the naive forecast."""
    y = _lte()
    horizon, ours, naive = 30, [], []
    origins = range(len(y) - 20 * horizon, len(y) - horizon + 1, horizon)
    forecaster = Forecaster(horizon, 720, models=("naive", "window_average", "ses"), backtest_windows=8)
    forecaster.fit([y[:origins[0]]])
    for o in origins:
        result = forecaster.predict([y[:o]])
        ours.append(np.abs(result.mean[0] - y[o:o + horizon]).mean())
        naive.append(np.abs(y[o - 1] - y[o:o + horizon]).mean())
    assert np.mean(ours) < np.mean(naive)


def test_forecast_intervals_and_exceedance():
    rng = np.random.default_rng(3)
    y = 10 + rng.normal(0, 1, 2000)
    forecaster = Forecaster(10, 1, models=("window_average",), backtest_windows=50).fit([y])
    result = forecaster.predict([y])
    assert result.model == ["window_average"]
    width80 = result.upper[80] - result.lower[80]
    width95 = result.upper[95] - result.lower[95]
    assert np.all(width95 > width80) and np.all(width80 > 0)
    assert 2.0 < width80[0, 0] < 3.4  # about 2 x 1.28 sigma of noise
    p = result.exceedance_probability(np.array([10.0]))
    assert np.all((p > 0.3) & (p < 0.7))
    assert np.all(result.exceedance_probability(100.0) == 0.0)


def test_forecast_handles_gaps_and_constant_series():
    y = np.full(300, 4.0)
    y[100:110] = np.nan
    result = Forecaster(5, 24, models=("naive", "seasonal_naive", "ses")).fit([y]).predict([y])
    assert np.allclose(result.mean, 4.0)
    with pytest.raises(ValueError, match="no finite value"):
        Forecaster(5).fit([np.full(50, np.nan)])


# --- root cause ---------------------------------------------------------------------------------------------------


def test_pooled_selection_beats_seasonal_naive_on_ran_updates():
    frame = pd.read_parquet(DATA / "ran_updates_imdea" / "traffic_dataset_daily_v1.parquet").drop_duplicates()
    frame = frame.sort_values(["UUID", "deltaT"])
    series = [g["DL"].to_numpy() for _, g in list(frame.groupby("UUID"))[:60]]
    history = [y[:-7] for y in series]
    forecaster = Forecaster(7, 7, models=("naive", "seasonal_naive", "window_average", "seasonal_window_average",
                                          "window_average+seasonal_window_average"),
                            selection="pooled").fit(history)
    assert len(set(forecaster.model_)) == 1
    ours = np.abs(forecaster.predict(history).mean - np.array([y[-7:] for y in series])).mean(axis=1)
    seasonal = Forecaster(7, 7, models=("seasonal_naive",)).fit(history).predict(history).mean
    reference = np.abs(seasonal - np.array([y[-7:] for y in series])).mean(axis=1)
    assert np.exp(np.log(ours / reference).mean()) < 0.95
    with pytest.raises(InputError, match="selection"):
        Forecaster(7, 7, selection="best")


# --- alarm correlation -------------------------------------------------------------------------------------------

def _synthetic_alarm_log(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Type 0 on a device is followed within a minute by type 1 on a neighbour; type 2 is independent noise."""
    n_devices = 20
    adjacency = np.zeros((n_devices, n_devices), dtype=int)
    for d in range(n_devices - 1):
        adjacency[d, d + 1] = 1
    rows = []
    for t in np.sort(rng.uniform(0, 2e6, 400)):
        d = int(rng.integers(n_devices - 1))
        rows += [(0, d, t), (1, d + 1, t + rng.uniform(5, 60))]
    rows += [(2, int(rng.integers(n_devices)), float(t)) for t in rng.uniform(0, 2e6, 400)]
    rows += [(1, int(rng.integers(n_devices)), float(t)) for t in rng.uniform(0, 2e6, 100)]
    types, devices, starts = (np.array(c) for c in zip(*rows, strict=True))
    return types, devices, starts, adjacency


def test_alarm_causality_recovers_cause_and_direction():
    types, devices, starts, adjacency = _synthetic_alarm_log(np.random.default_rng(3))
    model = AlarmCausality().fit(types, devices, starts, adjacency=adjacency)
    assert model.graph_[0, 1] and not model.graph_[1, 0]
    assert not model.graph_[2].any() and not model.graph_[:, 2].any()
    assert model.edges()[0][:2] == (0, 1)
    # Without the topology the effect lands on another device and the link is not seen.
    assert not AlarmCausality().fit(types, devices, starts).graph_[0, 1]


def test_alarm_causality_on_huawei_wireless_set():
    folder = DATA / "alarms_gcastle" / "18V_55N_Wireless"
    log = pd.read_csv(folder / "Alarm.csv")
    truth = np.load(folder / "DAG.npy")
    model = AlarmCausality().fit(log["alarm_id"], log["device_id"], log["start_timestamp"], n_types=truth.shape[0])
    assert edge_f1(model.graph_, truth) >= 0.45


def test_alarm_causality_rejects_bad_logs():
    with pytest.raises(InputError, match="same length"):
        AlarmCausality().fit([0, 1], [0], [0.0, 1.0])
    with pytest.raises(InputError, match="out of range"):
        AlarmCausality().fit([0, 5], [0, 0], [0.0, 1.0], n_types=3)
    with pytest.raises(InputError, match="empty"):
        AlarmCausality().fit([], [], [])
    with pytest.raises(InputError, match="outside"):
        AlarmCausality().fit([0, 1], [0, 4], [0.0, 1.0], adjacency=np.eye(3))


@pytest.fixture(scope="module")
def localizer():
    return RootCauseLocalizer(load_network(bundled_network_path()))


@pytest.mark.parametrize("fault", [
    Fault(kind="link_down", target=["FR", "CH"], at_minute=30),
    Fault(kind="router_down", target="MK", at_minute=30),
    Fault(kind="flash_crowd", target="UK", at_minute=30, multiplier=3),
    Fault(kind="link_degrade", target=["DE", "AT"], at_minute=30, loss=0.02, capacity_factor=0.5),
], ids=lambda f: f.kind)
def test_rca_ranks_true_cause_first(localizer, fault):
    sim = Simulator(localizer.network, seed=7, faults=[fault])
    steps = np.array([Snapshot.from_step(sim.step()).values for _ in range(35)])
    before, after = steps[15:30], steps[30:35]
    noise = np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2)
    ranked = localizer.rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)), minute=32,
                            noise=noise, top=3)
    truth = "--".join(sorted(fault.target)) if isinstance(fault.target, list) else fault.target
    assert ranked[0].target == truth
    assert ranked[0].kind == fault.kind
    assert ranked[0].score > ranked[1].score


@pytest.mark.parametrize("node", ["IT", "CH"])
def test_rca_ranks_a_crowd_first_though_its_hypothesis_overloads_links(node):
    """With the links at 45 % of their capacity the busy hour loads them to 0.66 and a crowd of 2x at IT or CH to
    0.9. The localiser's crowd hypothesis is 3x and sized to the measurement by a linear gain; at 3x the twin
    overloads links (MLU 1.13-1.18, loss up to 15 %), and that loss, which utilisation already shows, cannot be
    scaled back by a gain. Compared raw it outweighs the rest (the crowd ranked 4th); compared as the loss beyond
    the links' overload, the crowd is first."""
    data = load_network(bundled_network_path()).model_dump(mode="json")
    for link in data["links"]:
        link["capacity"] *= 0.45
    network = Network.model_validate(data)
    sim = Simulator(network, seed=7, faults=[Fault(kind="flash_crowd", target=node, at_minute=30, multiplier=2)])
    frames = [sim.step() for _ in range(35)]
    steps = np.array([Snapshot.from_step(f).values for f in frames])
    before, after = steps[15:30], steps[30:35]
    noise = np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2)
    ranked = RootCauseLocalizer(network).rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                              minute=32, noise=noise, top=3)
    assert (ranked[0].kind, ranked[0].target) == ("flash_crowd", node)


def test_loss_is_compared_beyond_what_the_links_overload_explains(localizer):
    """Congestion alone (1 - 1/utilisation) compares as no loss; a degraded link's own loss shows through it.
    A snapshot keeps the loss as measured (what detection scores): only the localisation compares it so."""
    utilisation = np.array([1.25, 0.5, 1.25, 2.0])
    loss = np.array([0.2, 0.01, 1 - 0.97 / 1.25, 0.5])
    assert np.allclose(loss_beyond_overload(loss, utilisation), [0.0, 0.01, 0.03, 0.0])
    frame = Simulator(localizer.network, seed=1).step()
    overloaded = dataclasses.replace(frame, link_utilisation=np.full_like(frame.link_utilisation, 1.25),
                                     link_loss=np.full_like(frame.link_loss, 0.2))
    n = len(frame.link_loss)
    values = Snapshot.from_step(overloaded).values
    assert np.allclose(values[n:2 * n], 0.2)
    assert np.allclose(localizer.compared(values)[n:2 * n], 0.0)
    assert np.array_equal(localizer.compared(values)[:n], values[:n])


def test_the_hypotheses_in_scope_do_not_depend_on_rounding_errors(localizer):
    """What did not change comes out of the arithmetic as 0 on one CPU and a rounding error on another (a
    wider vector unit sums in another order), and what changed alike differs in its last bits: the hypotheses in
    scope, and so the decisions, are the same either way (before, KPIs that changed by 1e-16 noise sd could be
    each group's "strongest" and bring their nodes into scope)."""
    sim = Simulator(localizer.network, seed=7, faults=[Fault(kind="link_down", target=["FR", "CH"], at_minute=30)])
    steps = np.array([Snapshot.from_step(sim.step()).values for _ in range(35)])
    observed = np.median(steps[30:35], axis=0) - np.median(steps[15:30], axis=0)
    observed[np.abs(observed) < 0.05] = 0.0  # only the KPIs the failure moved changed
    rng = np.random.default_rng(3)
    other_cpu = observed * (1 + 1e-15 * rng.standard_normal(len(observed))) + \
        np.where(observed == 0, 1e-17 * rng.standard_normal(len(observed)), 0.0)
    assert [f.model_dump_json() for f in localizer.hypotheses(other_cpu)] == \
        [f.model_dump_json() for f in localizer.hypotheses(observed)]


def test_causes_that_tie_but_for_rounding_errors_keep_the_hypotheses_order(localizer):
    """Two causes whose scores differ in the last bit (one CPU's sum against another's) rank in the order
    their hypotheses were scored, whichever came out larger; a real difference still ranks first."""
    from netpilot.analytics.rca import Cause

    sim = Simulator(localizer.network, seed=7, faults=[Fault(kind="link_down", target=["FR", "CH"], at_minute=30)])
    steps = np.array([Snapshot.from_step(sim.step()).values for _ in range(35)])
    ranking = localizer.start(Snapshot(np.median(steps[15:30], axis=0)), Snapshot(np.median(steps[30:35], axis=0)),
                              minute=32)
    assert ranking is not None
    first, second = (Fault(kind="link_down", target=t, at_minute=0) for t in (["FR", "CH"], ["BG", "GR"]))
    last_bit = float(np.nextafter(0.5, 1.0))
    ranking.causes = [Cause("link_down", "CH--FR", 0.5, first), Cause("link_down", "BG--GR", last_bit, second)]
    assert [c.target for c in ranking.result()] == ["CH--FR", "BG--GR"]
    ranking.causes[1] = Cause("link_down", "BG--GR", 0.5 + 1e-6, second)
    assert [c.target for c in ranking.result()] == ["BG--GR", "CH--FR"]


def test_rca_second_fault_ranked_on_top_of_the_first(localizer):
    """A crowd at DE while BG-GR is already down (and known): replayed over the network the first fault left,
    the crowd ranks first; the earlier fault is not offered again."""
    first = Fault(kind="link_down", target=["BG", "GR"], at_minute=0)
    crowd = Fault(kind="flash_crowd", target="DE", at_minute=30, multiplier=2)
    sim = Simulator(localizer.network, seed=3, faults=[first, crowd])
    steps = np.array([Snapshot.from_step(sim.step()).values for _ in range(35)])
    before, after = steps[15:30], steps[30:35]
    noise = np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2)
    ranked = localizer.rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)), minute=32,
                            noise=noise, top=5, known=[first])
    assert (ranked[0].kind, ranked[0].target) == ("flash_crowd", "DE")
    assert all(c.target != "BG--GR" or c.kind != "link_down" for c in ranked)


@pytest.mark.parametrize("steered", [False, True], ids=["igp", "explicit-paths"])
def test_replay_matches_stepping_each_fault_set(localizer, steered):
    """The batched replay (incremental what-if for failures and high metrics) gives exactly what stepping the
    noise-free twin under each set of faults gives, for every kind of hypothesis; with explicit paths too (a
    failed path's share to the paths left, a pair whose paths all failed to the IGP, a raised metric leaving
    the explicit paths alone)."""
    network = localizer.network
    policies = [PathPolicy(source="AT", target="DE", paths=[{"nodes": ["AT", "DE"], "weight": 1},
                                                            {"nodes": ["AT", "SK", "CZ", "DE"], "weight": 3}]),
                PathPolicy(source="CH", target="FR", paths=[{"nodes": ["CH", "FR"], "weight": 1}]),
                PathPolicy(source="GR", target="BG", paths=[{"nodes": ["GR", "BG"], "weight": 1}])] if steered else []
    known = [Fault(kind="link_down", target=["BG", "GR"], at_minute=0)]
    sets = [known] + [[*known, f] for f in [
        Fault(kind="link_down", target=["FR", "CH"], at_minute=0),
        Fault(kind="link_down", target=["DE", "AT"], at_minute=0),
        Fault(kind="misconfig", target=["DE", "AT"], at_minute=0),
        Fault(kind="misconfig", target=["FR", "CH"], at_minute=0),
        Fault(kind="router_down", target="MK", at_minute=0),
        Fault(kind="router_down", target="DE", at_minute=0),
        Fault(kind="flash_crowd", target="UK", at_minute=0, multiplier=3),
        Fault(kind="link_degrade", target=["DE", "AT"], at_minute=0, loss=0.02, capacity_factor=0.5)]]
    # A leaf link (a cell's access) cut off: the high metric must not be read as a failure there.
    leaf = next(lk for lk in network.links if sum(lk.target == other.target or lk.target == other.source
                                                  for other in network.links) == 2)
    sets += [[*known, Fault(kind="misconfig", target=[leaf.source, leaf.target], at_minute=0)],
             [*known, Fault(kind="link_down", target=[leaf.source, leaf.target], at_minute=0)]]
    sets += [[*known, Fault(kind=kind, target=node.id, at_minute=0)] for kind, node_kind in
             (("cell_outage", "cell_site"), ("edge_failure", "edge_site"))
             for node in [n for n in network.nodes if n.kind == node_kind][:2]]
    twin = Simulator(network, noise=0.0)
    twin.set_policies(policies)
    twin.minute = 600
    replayed = twin.replay(sets)
    for faults, got in zip(sets, replayed, strict=True):
        one = Simulator(network, noise=0.0, faults=faults)
        one.set_policies(policies)
        one.minute = 600
        want = one.step()
        for name in ("link_load", "link_utilisation", "link_loss", "link_up", "node_up", "cell_prb", "edge_gpu"):
            assert np.allclose(getattr(got, name), getattr(want, name), rtol=1e-9, atol=1e-9), (faults[-1], name)
        assert got.blackholed == pytest.approx(want.blackholed, rel=1e-9, abs=1e-6)
    assert twin.minute == 600  # replay does not advance time


def test_raised_metrics_replay_as_failures_only_when_no_shortest_path_takes_them(localizer):
    """A misconfigured metric is replayed as a failure (incrementally) only when the way round the link is
    shorter than the new metric; here other links are drained at high metrics, so the sum of all metrics is
    no bound. On a link that is the only way between its ends (a cell's access), the routing is the one
    before, unless a one-way failure elsewhere leaves the network asymmetric. Every way, the replay gives what
    stepping the twin gives."""
    network = localizer.network
    twin = Simulator(network, noise=0.0)
    metrics = twin.arrays.metric.astype(np.int64).copy()
    drained = [i for i, lk in enumerate(network.links) if {lk.source, lk.target} in ({"DE", "PL"}, {"IT", "FR"})]
    metrics[drained] = 60000
    twin.set_metrics(metrics)
    twin.minute = 600
    de_at = np.array([{lk.source, lk.target} == {"DE", "AT"} for lk in network.links])
    low = int(metrics[de_at].max()) + 1  # raised, but still shorter than the way round
    leaf = next(lk for lk in network.links if sum(lk.target in (other.source, other.target)
                                                  for other in network.links) == 2)
    one_way = Fault(kind="link_down", target=["FR", "CH"], at_minute=0, one_way=True)
    sets = [[], *([Fault(kind="misconfig", target=["DE", "AT"], at_minute=0, metric=m)] for m in (65535, 3000, low)),
            [Fault(kind="misconfig", target=["DE", "PL"], at_minute=0, metric=65535)],  # drained already
            [Fault(kind="misconfig", target=[leaf.source, leaf.target], at_minute=0)],
            [one_way], [one_way, Fault(kind="misconfig", target=[leaf.source, leaf.target], at_minute=0)]]
    replayed = twin.replay(sets[:6]) + twin.replay(sets[6:])
    for faults, got in zip(sets, replayed, strict=True):
        one = Simulator(network, noise=0.0, faults=faults)
        one.set_metrics(metrics)
        one.minute = 600
        want = one.step()
        for name in ("link_load", "link_utilisation", "link_loss"):
            assert np.allclose(getattr(got, name), getattr(want, name), rtol=1e-9, atol=1e-9), (faults, name)
    around = twin._ways_round(twin.arrays.up & ~de_at, metrics, de_at)
    assert (around < 65535).all() and not (around < low).all()
    access = np.zeros(len(network.links), dtype=bool)
    access[twin.links_of(sets[5][0])] = True
    assert access.sum() == 2 and np.isinf(twin._ways_round(twin.arrays.up & ~access, metrics, access)).all()
    de_at_load = [r.link_load[de_at].sum() for r in replayed[1:4]]
    assert de_at_load[0] < 1e-6 < de_at_load[2]  # the low metric still carries traffic over DE-AT


def test_raised_metric_on_a_one_way_dead_end_is_routed_again():
    """Where links run one way only, a link with no way round in either direction can still be avoided (X->T
    goes direct once A-B costs more): the replay must route it again, not keep the routing before."""
    links = [Link(source=a, target=b, capacity=100.0, metric=m)
             for a, b, m in (("X", "A", 1), ("A", "B", 1), ("B", "A", 1), ("B", "T", 1), ("X", "T", 5))]
    network = Network(name="one-way", nodes=[Router(id=x) for x in "XABT"], links=links,
                      demands=[Demand(source="X", target="T", volume=10.0)])
    raised = Fault(kind="misconfig", target=["A", "B"], at_minute=0, metric=10)
    healthy, got = Simulator(network, noise=0.0).replay([[], [raised]])
    want = Simulator(network, noise=0.0, faults=[raised]).step()
    assert np.allclose(got.link_load, want.link_load) and want.link_load[-1] > 0  # X->T direct
    assert healthy.link_load[-1] == 0.0 and healthy.link_load[1] > 0  # via A->B before


# --- CLI ------------------------------------------------------------------------------------------------------------

def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_detect_csv_in_input_order_label_never_read(tmp_path):
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, 300)
    values[250] = 40
    rows = ["timestamp,value,label"]
    for i, v in enumerate(values):
        stamp = 1_500_000_000 + 60 * i + (30 if i % 7 == 0 else 0)  # irregular spacing
        text = "" if i == 100 else f"{v:.6f}"  # a gap
        rows.append(f"{stamp},{text},{1 if i == 250 else 0}")
    first = _csv(tmp_path / "a.csv", rows)
    flipped = _csv(tmp_path / "b.csv", [r.rsplit(",", 1)[0] + ",1" if i else r for i, r in enumerate(rows)])
    for path, out in ((first, tmp_path / "a.json"), (flipped, tmp_path / "b.json")):
        result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(out)])
        assert result.exit_code == 0, result.output
    a, b = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    assert a == b  # the labels differ, the output does not
    points = a["points"]
    assert len(points) == 300 and points[0]["timestamp"].startswith("2017-07-14")
    assert points[250]["alarm"] and points[100]["score"] == 0.0
    assert sum(p["alarm"] for p in points) < 10


def test_cli_detect_bad_input_names_line(tmp_path):
    bad = _csv(tmp_path / "bad.csv", ["timestamp,value", "2026-01-01T00:00:00,1", "2026-01-01T00:01:00,abc"])
    result = runner.invoke(app, ["detect", "--input", str(bad), "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "bad.csv:3" in result.output and "abc" in result.output
    nocol = _csv(tmp_path / "nocol.csv", ["time,v", "1,2"])
    result = runner.invoke(app, ["detect", "--input", str(nocol), "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "'timestamp'" in result.output
    stamp = _csv(tmp_path / "stamp.csv", ["timestamp,value", "yesterday,1"])
    result = runner.invoke(app, ["detect", "--input", str(stamp), "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "stamp.csv:2" in result.output
    assert not (tmp_path / "o.json").exists()


def test_cli_detect_explain_names_detector_and_expectation(tmp_path):
    values = _daily_traffic(6, 3)
    values[5 * 720 + 200:5 * 720 + 240] = 0.0  # an outage
    rows = ["timestamp,value"] + [f"{1_500_000_000 + 120 * i},{v:.3f}" for i, v in enumerate(values)]
    path = _csv(tmp_path / "cell.csv", rows)
    result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(tmp_path / "o.json"), "--explain"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "o.json").read_text())
    assert data["season_samples"] == 720
    alarms = [k for k, p in enumerate(data["points"]) if p["alarm"]]
    onset = 5 * 720 + 200
    assert any(onset <= k <= onset + 7 for k in alarms)
    first = data["points"][next(k for k in alarms if k >= onset)]
    assert first["detector"] in ("point", "shift", "collapse") and first["expected"] > 20  # traffic was expected, not 0
    assert "detector, score" in result.output and "expected" in result.output


def test_cli_detect_context_alarms_once_at_an_outage_and_names_the_detector(tmp_path):
    t = np.arange(3 * 720)
    values = 100 * (1.3 + np.sin(2 * np.pi * t / 720)) * np.random.default_rng(3).lognormal(0, 0.05, len(t))
    onset = 2 * 720 + 300
    values[onset:onset + 40] = 0.0  # an outage on the third day
    rows = ["timestamp,value"] + [f"{1_500_000_000 + 120 * i},{v:.3f}" for i, v in enumerate(values)]
    path = _csv(tmp_path / "cell.csv", rows)
    result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(tmp_path / "o.json"), "--explain",
                                 "--detector", "context"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "o.json").read_text())
    assert data["detector"] == "context" and data["rest_samples"] == rest_for(len(values))
    alarms = [k for k, p in enumerate(data["points"]) if p["alarm"]]
    assert onset in alarms and len(alarms) <= 5
    assert not any(onset < k <= onset + data["rest_samples"] for k in alarms)  # one alarm for the episode
    assert data["points"][onset]["detector"] == "context" and "context detector, score" in result.output
    spans = data["points"][onset]["expected"]  # the values the contexts foresaw whole: the outage's zero is not one
    assert not any((low is None or low <= 0.0) and (high is None or high > 0.0) for low, high in spans)
    assert "foresaw" in result.output
    for option, value in (("--detector", "cusum"), ("--context-threshold", "1.5"), ("--min-score", "6")):
        context = [] if option == "--detector" else ["--detector", "context"]
        result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(tmp_path / "x.json"), option,
                                     value, *context])
        assert result.exit_code == 2 and option in result.output
    result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(tmp_path / "x.json"),
                                 "--context-threshold", "0.5"])  # the default detector has no such threshold
    assert result.exit_code == 2 and "--context-threshold" in result.output
    assert not (tmp_path / "x.json").exists()


def test_cli_forecast(tmp_path):
    y = _lte()[:3000]
    rows = ["timestamp,value"] + [f"{1_546_300_800 + 120 * i},{v}" for i, v in enumerate(y)]
    path = _csv(tmp_path / "cell.csv", rows)
    out = tmp_path / "f.json"
    result = runner.invoke(app, ["forecast", "--input", str(path), "--horizon", "30", "--json", str(out),
                                 "--threshold", "0.2"])
    assert result.exit_code == 0, result.output
    series = json.loads(out.read_text())["series"][0]
    assert series["season_length"] == 720 and len(series["mean"]) == 30
    assert all(lo <= m <= hi for lo, m, hi in zip(series["lower_95"], series["mean"], series["upper_95"], strict=True))
    assert all(0.0 <= p <= 1.0 for p in series["exceedance_probability"])
    assert series["timestamps"][0] > "2019-01-"
    result = runner.invoke(app, ["forecast", "--input", str(path), "--horizon", "0", "--json", str(out)])
    assert result.exit_code == 2 and "--horizon" in result.output


def test_cli_rca_on_simulated_fault(tmp_path):
    network = bundled_network_path()
    faults = _csv(tmp_path / "faults.yaml", ["faults:", "  - {kind: router_down, target: MK, at_minute: 60}"])
    samples = tmp_path / "t.parquet"
    result = runner.invoke(app, ["sim", "run", "--network", str(network), "--out", str(samples), "--hours", "1.5",
                                 "--faults", str(faults), "--seed", "3"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "rca.json"
    result = runner.invoke(app, ["rca", "--telemetry", str(samples), "--network", str(network), "--json", str(out)])
    assert result.exit_code == 0, result.output
    incidents = json.loads(out.read_text())["incidents"]
    onset = [i for i in incidents if i["start"].startswith("2026-01-05T01:00")]
    assert onset, incidents
    assert onset[0]["causes"][0] == {"kind": "router_down", "target": "MK", "score": onset[0]["causes"][0]["score"]}
    assert not math.isnan(onset[0]["causes"][0]["score"])


def test_cli_detect_collapse_hold_keeps_a_two_day_outage_alarmed(tmp_path):
    values = _daily_traffic(10, 3)
    start, end = 6 * 720, 8 * 720
    values[start:end] *= 0.1  # a cell asleep for two days
    rows = ["timestamp,value"] + [f"{1_500_000_000 + 120 * i},{v:.3f}" for i, v in enumerate(values)]
    path = _csv(tmp_path / "cell.csv", rows)
    alarmed = {}
    for label, extra in (("default", []), ("held", ["--collapse-hold", "inf"])):
        result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(tmp_path / f"{label}.json"),
                                     *extra])
        assert result.exit_code == 0, result.output
        points = json.loads((tmp_path / f"{label}.json").read_text())["points"]
        alarmed[label] = np.mean([p["alarm"] for p in points[start + 720:end]])
    assert alarmed["held"] > 0.9 and alarmed["default"] < 0.5  # the second day: still a fault only when held
    result = runner.invoke(app, ["detect", "--input", str(path), "--json", str(tmp_path / "o.json"),
                                 "--collapse-hold", "0"])
    assert result.exit_code == 2 and "--collapse-hold" in result.output
