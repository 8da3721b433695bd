"""Analytics benchmarks on real data: detection (NAB, AIOps 2018), forecasting (LTE Barcelona), root-cause
localisation on simulator faults, many-series daily forecasting (RAN-updates), alarm-type causal graphs (Huawei
PCIC 2021), and the streaming path's latency.

    python bench/analytics.py                 # every section
    python bench/analytics.py nab aiops       # sections: nab, aiops, lte, ranupdates, alarms, rca, speed

The protocol of each section is in its docstring and in BENCHMARKS.md. Every detection figure stands next to a
random score's; point-adjusted F1 is never reported alone.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

from _results import run
from netpilot.analytics.context import THRESHOLD as CONTEXT_THRESHOLD
from netpilot.analytics.context import context_scores
from netpilot.analytics.detect import (
    DetectorBank,
    DetectorSettings,
    StreamingDetector,
    calibrate,
    calibrate_days,
    calibrate_runs,
    score_series,
    series_days,
    settings_for,
)
from netpilot.analytics.scoring import NAB_PROFILES, NabFile, f1, nab_normalise, point_adjust

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "telemetry"
console = Console(width=200, soft_wrap=True)
results: dict[str, object] = {}
RNG_SEED = 0
NAB_PEAK_WINDOW = 1000  # samples: NAB counts one alarm per window and charges every other one


# --- NAB ------------------------------------------------------------------------------------------------------

def _nab_files() -> list[tuple[str, pd.DataFrame, list[tuple[int, int]]]]:
    windows = json.loads((DATA / "nab" / "labels" / "combined_windows.json").read_text())
    files = []
    for name in sorted(windows):
        frame = pd.read_csv(DATA / "nab" / "data" / name)
        ts = pd.to_datetime(frame["timestamp"]).to_numpy()
        spans = []
        for start, end in windows[name]:
            first = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start)), side="left"))
            last = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end)), side="right")) - 1
            spans.append((first, last))
        files.append((name, frame, spans))
    return files


def _nab_score(prepared: list[NabFile], scores: list[np.ndarray], threshold: float) -> float:
    raw = null = perfect = 0.0
    for file, s in zip(prepared, scores, strict=True):
        r, _, _ = file.score(s >= threshold)
        raw, null, perfect = raw + r, null + file.null, perfect + file.perfect
    return nab_normalise(raw, null, perfect)


def _nab_best(prepared: list[NabFile], scores: list[np.ndarray]) -> tuple[float, float]:
    """The corpus-wide threshold with the best score (NAB's own protocol: one threshold per detector)."""
    pooled = np.concatenate(scores)
    candidates = np.unique(np.quantile(pooled, np.linspace(0.9, 1.0, 400)))
    best = max(((_nab_score(prepared, scores, t), t) for t in candidates), key=lambda x: x[0])
    return best


def _nab_scores(frame: pd.DataFrame) -> np.ndarray:
    """The detector with the settings its own sampling and first half give (as the CLI picks them), with NAB's
    one alarm per episode (``peak_window``)."""
    values = frame["value"].to_numpy(dtype=float)
    step = float(np.median(np.diff(pd.to_datetime(frame["timestamp"]).to_numpy()).astype("timedelta64[s]")
                           .astype(float)))
    if not NAB_SEASONAL:
        return score_series(values, peak_window=NAB_PEAK_WINDOW)
    return settings_for(values, step, peak_window=NAB_PEAK_WINDOW).score(values)


NAB_SEASONAL = True


def nab() -> None:
    """NAB v1.1, all 58 files, the official windows and profiles, 15 % probation. Scores are normalised as NAB
    does (null detector 0, perfect 100). NAB's protocol picks one threshold per detector over the whole corpus;
    we report that and, more honestly, a split: the threshold chosen on the even-numbered files and scored on
    the odd ones (and the reverse), averaged. Two detectors: the expectation's (as the CLI's default picks its
    settings, one alarm per episode) and the context detector (``detect --detector context``: its range from
    each file's first half, its rest from the file's length), also at the CLI's fixed 0.75, no threshold tuned."""
    files = _nab_files()
    t0 = time.perf_counter()
    ours = [_nab_scores(frame) for _, frame, _ in files]
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    context = [context_scores(frame["value"].to_numpy(dtype=float)) for _, frame, _ in files]
    context_seconds = time.perf_counter() - t0
    plain = [score_series(frame["value"].to_numpy(dtype=float), peak_window=NAB_PEAK_WINDOW) for _, frame, _ in files]
    n_points = sum(len(frame) for _, frame, _ in files)
    rng = np.random.default_rng(RNG_SEED)
    random_scores = [rng.random(len(frame)) for _, frame, _ in files]
    table = Table("profile", "ours (corpus threshold)", "ours (split threshold)", "context (corpus)",
                  "context (split)", "context at 0.75", "no season, no hold", "random", "HTM (published)",
                  "CAD OSE (published)")
    published = json.loads((DATA / "nab" / "results" / "final_results.json").read_text())
    out = {"seconds": seconds, "context_seconds": context_seconds, "points": n_points}
    for profile_name, profile in NAB_PROFILES.items():
        prepared = [NabFile.prepare(len(frame), spans, profile) for _, frame, spans in files]
        best, threshold = _nab_best(prepared, ours)
        context_best, context_threshold = _nab_best(prepared, context)
        context_fixed = _nab_score(prepared, context, CONTEXT_THRESHOLD)
        plain_best, _ = _nab_best(prepared, plain)
        rand, _ = _nab_best(prepared, random_scores)
        htm = published.get("numenta", {}).get(profile_name)
        cad = published.get("contextOSE", {}).get(profile_name)
        split, context_split = _nab_split(prepared, ours), _nab_split(prepared, context)
        table.add_row(profile_name, f"{best:.1f}", f"{split:.1f}", f"{context_best:.1f}", f"{context_split:.1f}",
                      f"{context_fixed:.1f}", f"{plain_best:.1f}", f"{rand:.1f}",
                      f"{htm:.1f}" if htm is not None else "-", f"{cad:.1f}" if cad is not None else "-")
        out[profile_name] = {"score": best, "threshold": threshold, "split_score": split,
                             "context": context_best, "context_threshold": context_threshold,
                             "context_split": context_split, "context_fixed": context_fixed,
                             "plain": plain_best, "random": rand, "htm": htm, "cad_ose": cad}
    console.print(table)
    console.print(f"NAB: {n_points:,} points scored in {seconds:.2f} s (ours), {context_seconds:.2f} s (context)")
    results["nab"] = out


def _nab_split(prepared: list[NabFile], scores: list[np.ndarray]) -> float:
    """The threshold chosen on the even-numbered files and scored on the odd ones, and the reverse, averaged."""
    halves = []
    for train_parity in (0, 1):
        train = [i for i in range(len(prepared)) if i % 2 == train_parity]
        test = [i for i in range(len(prepared)) if i % 2 != train_parity]
        _, t = _nab_best([prepared[i] for i in train], [scores[i] for i in train])
        halves.append(_nab_score([prepared[i] for i in test], [scores[i] for i in test], t))
    return float(np.mean(halves))


# --- AIOps 2018 -----------------------------------------------------------------------------------------------

def _aiops_kpis() -> list[tuple[str, pd.DataFrame]]:
    kpis = []
    for path in sorted((DATA / "aiops2018_kpi" / "phase2_train").glob("*.csv.gz")):
        with gzip.open(path, "rt") as handle:
            frame = pd.read_csv(handle, header=None, names=["timestamp", "value", "label"])
        kpis.append((path.name.split(".")[0][:8], frame.sort_values("timestamp").reset_index(drop=True)))
    return kpis


def _regrid(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Values and labels on the KPI's regular grid; missing timestamps become NaN (scored 0, never alarmed)."""
    ts = frame["timestamp"].to_numpy()
    step = int(np.median(np.diff(ts)))
    grid = np.arange(ts[0], ts[-1] + step, step)
    position = ((ts - ts[0]) // step).astype(int)
    values = np.full(len(grid), np.nan)
    labels = np.zeros(len(grid), dtype=bool)
    values[position] = frame["value"].to_numpy()
    labels[position] = frame["label"].to_numpy().astype(bool)
    return values, labels


AIOPS_SEASONAL = True


def aiops() -> None:
    """AIOps 2018 finals training set, 29 KPIs, each re-gridded (gaps are NaN). Chronological split: the
    detector runs causally over the whole series; the threshold is the best point-wise F1 on the first half
    (its labels only); every figure is measured on the second half. Point-wise F1, delay-7 point-adjusted
    F1 (the challenge's rule) and unbounded point-adjusted F1, each next to a uniform random score's under
    the same protocol, and PyOD's IForest and ECOD and a rolling median/MAD (W=60) under it too. ``ours|iforest``
    picks, per KPI, whichever of the two has the better F1 on the first half (model selection without test
    labels)."""
    kpis = _aiops_kpis()
    rng = np.random.default_rng(RNG_SEED)
    rows = []
    t_ours = 0.0
    n_points = 0
    detectors = ("ours", "ours|iforest", "median_mad", "iforest", "ecod", "random")
    for name, frame in track(kpis, description="AIOps KPIs", console=console):
        values, labels = _regrid(frame)
        step = float(np.median(np.diff(frame["timestamp"].to_numpy())))
        n_points += int(np.isfinite(values).sum())
        cut = len(values) // 2
        scores = {}
        t0 = time.perf_counter()
        scores["ours"] = (settings_for(values, step).score(values) if AIOPS_SEASONAL else score_series(values))
        t_ours += time.perf_counter() - t0
        scores["median_mad"] = _rolling_median_mad(values, 60)
        scores["iforest"], scores["ecod"] = _pyod_scores(values, cut)
        scores["random"] = rng.random(len(values))
        # Model selection on the first half: whichever of ours and IForest has the better training F1.
        train_f1 = {d: calibrate(np.nan_to_num(scores[d][:cut]), labels[:cut]).train_f1 or 0.0
                    for d in ("ours", "iforest")}
        scores["ours|iforest"] = scores[max(train_f1, key=train_f1.get)]
        row = {"kpi": name, "points": len(values), "anomaly_rate": float(labels[cut:].mean())}
        for det in detectors:
            s = np.nan_to_num(scores[det])
            threshold = calibrate(s[:cut], labels[:cut]).value
            predicted = s[cut:] >= threshold
            test_labels = labels[cut:]
            row[det] = {"f1": f1(predicted, test_labels),
                        "f1_delay7": f1(point_adjust(predicted, test_labels, 7), test_labels),
                        "f1_pa": f1(point_adjust(predicted, test_labels), test_labels)}
        rows.append(row)
    table = Table("KPI", "anomalies", *[f"{d} F1 / d7 / PA" for d in detectors])
    for row in rows:
        table.add_row(row["kpi"], f"{row['anomaly_rate']:.2%}",
                      *[f"{row[d]['f1']:.2f} / {row[d]['f1_delay7']:.2f} / {row[d]['f1_pa']:.2f}" for d in detectors])
    means = {d: {k: float(np.mean([r[d][k] for r in rows])) for k in ("f1", "f1_delay7", "f1_pa")} for d in detectors}
    table.add_row("mean", "", *[f"{means[d]['f1']:.3f} / {means[d]['f1_delay7']:.3f} / {means[d]['f1_pa']:.3f}"
                                for d in detectors])
    console.print(table)
    console.print(f"AIOps: {n_points:,} points scored by ours in {t_ours:.1f} s")
    results["aiops"] = {"per_kpi": rows, "mean": means, "seconds_ours": t_ours, "points": n_points}


def _rolling_median_mad(values: np.ndarray, window: int) -> np.ndarray:
    series = pd.Series(values)
    median = series.rolling(window, min_periods=window // 2).median().shift(1)
    mad = (series - median).abs().rolling(window, min_periods=window // 2).median().shift(1)
    return np.nan_to_num(((series - median).abs() / (1.4826 * mad + 1e-9)).to_numpy())


def _windows(values: np.ndarray, width: int = 10) -> np.ndarray:
    """Causal feature windows: each row holds the last ``width`` values, gaps filled forward."""
    filled = pd.Series(values).ffill().bfill().to_numpy()
    padded = np.r_[np.full(width - 1, filled[0]), filled]
    return np.lib.stride_tricks.sliding_window_view(padded, width)


def _pyod_scores(values: np.ndarray, cut: int) -> tuple[np.ndarray, np.ndarray]:
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest

    x = _windows(values)
    x = np.c_[x, x[:, -1] - x[:, :-1].mean(axis=1)]
    out = []
    for model in (IForest(random_state=RNG_SEED, n_estimators=100), ECOD()):
        model.fit(x[:cut])
        out.append(model.decision_function(x))
    return out[0], out[1]


# --- LTE Barcelona forecasting --------------------------------------------------------------------------------

LTE_HORIZON = 30  # 2-minute steps: one hour
LTE_SEASON = 720  # one day
LTE_BACKTEST = 48  # origins, one hour apart: enough errors to calibrate 95 % intervals
LTE_MODELS = ("naive", "seasonal_naive", "window_average", "ses", "mstl", "mstl+window_average")


def _lte_series(site: str, column: str) -> tuple[np.ndarray, int]:
    train = pd.read_csv(DATA / "lte_barcelona" / f"{site}.csv")[column]
    test = pd.read_csv(DATA / "lte_barcelona" / f"{site}_test.csv")[column]
    y = pd.concat([train, test]).ffill().bfill().to_numpy(dtype=float)
    return y, len(train)


def _rolling(y: np.ndarray, origins: range, model: str) -> np.ndarray:
    from netpilot.analytics.forecast import forecast_with

    history = 3 * LTE_SEASON
    return np.array([forecast_with(model, y[max(0, o - history):o], LTE_HORIZON, LTE_SEASON) for o in origins])


def _congestion(forecaster, y: np.ndarray, threshold: float, origins: range,
                forecasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per origin: P(the next hour crosses ``threshold`` at some step), bounded below by the likeliest step,
    and whether it did."""
    errors = np.sort(forecaster.residuals_[0])
    needed = (threshold - forecasts) / forecaster.scale_[0]
    p = 1.0 - np.searchsorted(errors, needed, side="right") / len(errors)
    events = np.array([y[o:o + LTE_HORIZON].max() > threshold for o in origins])
    return p.max(axis=1), events


def lte() -> None:
    """LTE Barcelona, three real eNodeBs, downlink PRB use (``rb_down``, the congestion signal), 1 hour ahead.
    The model is chosen per cell by a backtest on the training split (48 origins, its last 4 days); the
    validation origins (the last quarter of the training split) set the congestion-probability cutoff; the test
    split (upstream's) is scored at rolling origins every 30 steps, each forecast seeing at most 3 days of
    history. MAE is relative to
    the best of the simple baselines (naive, seasonal naive, 30-step window average) on the same origins.
    Congestion: PRB use above the training split's 95th percentile at any step of the next hour."""
    from netpilot.analytics.forecast import Forecaster

    out = {}
    table = Table("cell", "model", "MAE / best baseline", "best baseline", "80 % cover", "95 % cover",
                  "congestion P / R", "events")
    for site in ("ElBorn", "LesCorts", "PobleSec"):
        y, n_train = _lte_series(site, "rb_down")
        forecaster = Forecaster(LTE_HORIZON, LTE_SEASON, models=LTE_MODELS, max_history=3 * LTE_SEASON,
                                backtest_windows=LTE_BACKTEST).fit([y[:n_train]])
        model = forecaster.model_[0]
        test_origins = range(n_train, len(y) - LTE_HORIZON + 1, LTE_HORIZON)
        val_origins = range(n_train - n_train // 4, n_train - LTE_HORIZON + 1, LTE_HORIZON)
        actual = np.array([y[o:o + LTE_HORIZON] for o in test_origins])
        mae = {m: float(np.abs(_rolling(y, test_origins, m) - actual).mean())
               for m in ("naive", "seasonal_naive", "window_average")}
        predicted = _rolling(y, test_origins, model)
        ours = float(np.abs(predicted - actual).mean())
        best_name = min(mae, key=mae.get)
        scale = forecaster.scale_[0]
        coverage: dict[int, float] = {}
        for level in (80, 95):
            q = np.quantile(np.abs(forecaster.residuals_[0]), level / 100, method="higher")
            coverage[level] = float(((actual >= predicted - q * scale) & (actual <= predicted + q * scale)).mean())
        threshold = float(np.quantile(y[:n_train], 0.95))

        p_val, e_val = _congestion(forecaster, y, threshold, val_origins, _rolling(y, val_origins, model))
        cutoff = calibrate(p_val, e_val).value if e_val.any() else 0.5
        p_test, e_test = _congestion(forecaster, y, threshold, test_origins, predicted)
        alarm = p_test >= cutoff
        tp = int((alarm & e_test).sum())
        precision = tp / alarm.sum() if alarm.sum() else float("nan")
        recall = tp / e_test.sum() if e_test.sum() else float("nan")
        table.add_row(site, model, f"{ours / mae[best_name]:.3f}", f"{best_name} ({mae[best_name]:.4f})",
                      f"{coverage[80]:.1%}", f"{coverage[95]:.1%}", f"{precision:.2f} / {recall:.2f}",
                      f"{int(e_test.sum())}/{len(e_test)}")
        out[site] = {"model": model, "mae": ours, "baselines": mae, "relative_mae": ours / mae[best_name],
                     "coverage": coverage, "congestion_precision": precision, "congestion_recall": recall,
                     "congestion_cutoff": cutoff, "events": int(e_test.sum()), "origins": len(e_test),
                     "backtest_mae": forecaster.backtest_mae_[0]}
    console.print(table)
    results["lte"] = out


# --- RAN-updates: many daily series --------------------------------------------------------------------------

RANU_HORIZON = 7  # days
RANU_ORIGINS = 4  # weekly origins: the test is each carrier's last four weeks
RANU_MODELS = ("naive", "seasonal_naive", "window_average", "seasonal_window_average", "ses",
               "window_average+seasonal_window_average", "ses+seasonal_window_average")


def _ranu_series() -> tuple[list[str], list[np.ndarray]]:
    frame = pd.read_parquet(DATA / "ran_updates_imdea" / "traffic_dataset_daily_v1.parquet")
    frame = frame.drop_duplicates().sort_values(["UUID", "deltaT"])  # every row is stored twice upstream
    names, series = [], []
    for uuid, group in frame.groupby("UUID", sort=True):
        names.append(str(uuid))
        series.append(group["DL"].to_numpy(dtype=float))
    return names, series


def ranupdates() -> None:
    """RAN-updates (882 carriers, daily downlink, z-scored upstream; weekly season 7), 7 days ahead at 4 weekly
    rolling origins covering each carrier's last 28 days. At each origin the Forecaster is fitted on the history
    before it only (backtest: 4 windows of 7 days), once with one model pooled over all carriers and once with
    a model per carrier. rMASE per carrier = MAE / seasonal naive's MAE on the same 28 days (MASE's in-sample
    scale cancels); the figure is the geometric mean over carriers. Time: one fit + predict over all carriers
    at the last origin. AutoETS/AutoTheta are left out of the candidates: at about 20 ms and 8 ms a fit they
    alone would take ~90 s a pass (measured on 150 carriers, BENCHMARKS.md)."""
    from netpilot.analytics.forecast import Forecaster, forecast_with

    names, series = _ranu_series()
    actual, predicted = [], {"pooled": [], "per_series": []}
    baselines: dict[str, list] = {m: [] for m in ("naive", "seasonal_naive", "window_average")}
    chosen: dict[str, list[str]] = {"pooled": [], "per_series": []}
    seconds = {}
    for k in track(range(RANU_ORIGINS, 0, -1), description="RAN-updates origins", console=console):
        origins = [len(y) - RANU_HORIZON * k for y in series]
        history = [y[:o] for y, o in zip(series, origins, strict=True)]
        actual.append([y[o:o + RANU_HORIZON] for y, o in zip(series, origins, strict=True)])
        for selection in ("pooled", "per_series"):
            t0 = time.perf_counter()
            forecaster = Forecaster(RANU_HORIZON, 7, models=RANU_MODELS, backtest_windows=4,
                                    selection="pooled" if selection == "pooled" else "series").fit(history, names)
            predicted[selection].append(forecaster.predict(history, names).mean)
            seconds[selection] = time.perf_counter() - t0
            chosen[selection] += forecaster.model_
        for m in baselines:
            baselines[m].append([forecast_with(m, h, RANU_HORIZON, 7) for h in history])
    y = np.concatenate(actual, axis=1)  # carriers × 28 days

    def mae(forecasts: list) -> np.ndarray:
        return np.abs(np.concatenate([np.asarray(f) for f in forecasts], axis=1) - y).mean(axis=1)

    reference = mae(baselines["seasonal_naive"])
    table = Table("forecaster", "geo-mean rMASE", "median rMASE", "carriers better than seasonal naive")
    out: dict[str, object] = {"carriers": len(series), "seconds_per_pass": seconds}
    for label, forecasts in [("pooled selection", predicted["pooled"]), ("per-carrier selection",
                                                                         predicted["per_series"]),
                             *[(m, baselines[m]) for m in baselines]]:
        ratio = mae(forecasts) / np.maximum(reference, 1e-12)
        gm = float(np.exp(np.log(np.maximum(ratio, 1e-12)).mean()))
        table.add_row(label, f"{gm:.3f}", f"{np.median(ratio):.3f}", f"{(ratio < 1).mean():.1%}")
        out[label] = {"geomean_rmase": gm, "median_rmase": float(np.median(ratio)),
                      "share_better": float((ratio < 1).mean())}
    console.print(table)
    console.print(f"models chosen (pooled, per origin): {chosen['pooled'][::len(series)]}; one pass over "
                  f"{len(series)} carriers: pooled {seconds['pooled']:.1f} s, "
                  f"per carrier {seconds['per_series']:.1f} s")
    out["pooled_models"] = chosen["pooled"][::len(series)]
    out["per_series_models"] = {k: int(v) for k, v in pd.Series(chosen["per_series"]).value_counts().items()}
    results["ranupdates"] = out


# --- Huawei alarm logs: alarm-type causal graphs ---------------------------------------------------------------

ALARM_SETS = {"18V_55N_Wireless": 0.45, "24V_439N_Microwave": 0.30, "25V_474N_Microwave": 0.30}
ALARM_PUBLISHED = {"18V_55N_Wireless": {"THP": 0.5765, "PCMCI": 0.4226, "PC": 0.4299},
                   "24V_439N_Microwave": {"THP": 0.3719, "PCMCI": 0.3268, "PC": 0.2270},
                   "25V_474N_Microwave": {"THP": 0.3387, "PCMCI": 0.2919, "PC": 0.1923}}


def alarms() -> None:
    """Huawei PCIC 2021 alarm logs with an expert causal DAG over alarm types. AlarmCausality with its defaults
    (windows 5 and 30 min, z > 3; device topology where the set has one) learns a directed graph from the whole
    log; edge F1 against DAG.npy. No labels are used to fit; the defaults were fixed once for all three sets, and
    the single-window rows show how much the choice matters. Random: a random directed graph with as many edges
    as learned (mean of 200 draws). Published: THP, PCMCI, PC from the dataset's repository."""
    from netpilot.analytics.alarms import AlarmCausality, edge_f1

    rng = np.random.default_rng(RNG_SEED)
    table = Table("set", "edges true / learned", "edge F1", "target", "random", "single window 5 / 30 min",
                  "THP / PCMCI / PC", "seconds")
    out = {}
    for name, target in ALARM_SETS.items():
        folder = DATA / "alarms_gcastle" / name
        log = pd.read_csv(folder / "Alarm.csv")
        truth = np.load(folder / "DAG.npy")
        topology = np.load(folder / "Topology.npy") if (folder / "Topology.npy").exists() else None
        args = (log["alarm_id"].to_numpy(), log["device_id"].to_numpy(), log["start_timestamp"].to_numpy())
        t0 = time.perf_counter()
        model = AlarmCausality().fit(*args, n_types=truth.shape[0], adjacency=topology)
        seconds = time.perf_counter() - t0
        score = edge_f1(model.graph_, truth)
        single = [edge_f1(AlarmCausality(windows=(w,)).fit(*args, n_types=truth.shape[0],
                                                            adjacency=topology).graph_, truth) for w in (300, 1800)]
        n = truth.shape[0]
        k = int(model.graph_.sum())
        off_diagonal = np.flatnonzero(~np.eye(n, dtype=bool).ravel())
        random_f1 = []
        for _ in range(200):
            guess = np.zeros(n * n, dtype=bool)
            guess[rng.choice(off_diagonal, size=k, replace=False)] = True
            random_f1.append(edge_f1(guess.reshape(n, n), truth))
        published = ALARM_PUBLISHED[name]
        table.add_row(name, f"{int(truth.sum())} / {k}", f"{score:.3f}", f">= {target}", f"{np.mean(random_f1):.3f}",
                      f"{single[0]:.3f} / {single[1]:.3f}",
                      " / ".join(f"{v:.3f}" for v in published.values()), f"{seconds:.2f}")
        out[name] = {"edge_f1": score, "target": target, "met": score >= target, "true_edges": int(truth.sum()),
                     "learned_edges": k, "random_f1": float(np.mean(random_f1)), "window_300s_f1": single[0],
                     "window_1800s_f1": single[1], "published": published, "seconds": seconds}
    console.print(table)
    results["alarms"] = out


# --- Root-cause localisation on simulator faults -----------------------------------------------------------

RCA_KINDS = ("link_down", "link_degrade", "router_down", "cell_outage", "flash_crowd", "misconfig")
RCA_CASES_PER_KIND = 6
REPETITA = ROOT.parent / "shared" / "data" / "te" / "repetita" / "2016TopologyZooUCL_inverseCapacity"


def _rca_networks(tmp: Path) -> dict[str, Path]:
    from netpilot.model.sample import bundled_network_path

    subprocess_args = [str(Path(sys.executable).parent / "netpilot"), "topo", "sample",
                       "--backbone-graph", str(REPETITA / "AttMpls.graph"),
                       "--backbone-demands", str(REPETITA / "AttMpls.0000.demands"), "-o", str(tmp / "attmpls.yaml")]
    import subprocess

    subprocess.run(subprocess_args, check=True, capture_output=True)
    return {"geant_sample": bundled_network_path(), "attmpls_sample": tmp / "attmpls.yaml"}


def _entity_target(entity: str) -> str:
    kind, _, rest = entity.partition(":")
    if kind == "link":
        a, _, b = rest.split("#")[0].partition("->")
        return "--".join(sorted((a, b)))
    return rest


def rca() -> None:
    """Simulator faults of six kinds on two topologies (the bundled GÉANT-based network, 124 nodes, and the
    same construction on Repetita's AttMpls backbone), RCA_CASES_PER_KIND random targets per kind (seed 0).
    Each case: 45 one-minute steps, the fault at minute 30; the localiser sees the 15 steps before and the
    5 steps from the onset (the onset time is given, as RCA benchmarks do). AC@k: the true target (link or
    node) among the top k. Baselines: the entity with the largest |z| between the same windows, and the
    entity with the most KPIs over |z| > 3 ("most alarms")."""
    import tempfile

    from netpilot.analytics.rca import NOISE_FLOOR, RootCauseLocalizer, Snapshot, feature_layout
    from netpilot.model.faults import Fault
    from netpilot.model.io import load_network
    from netpilot.telemetry.sim.simulator import Simulator

    out: dict[str, dict] = {}
    rng = np.random.default_rng(RNG_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        networks = _rca_networks(Path(tmp))
        table = Table("network", "fault", "cases", "AC@1", "AC@3", "kind right", "largest |z| AC@1/3",
                      "most alarms AC@1/3", "ms per case", "every hypothesis: AC@1 / ms")
        for net_name, path in networks.items():
            net = load_network(path)
            localizer = RootCauseLocalizer(net)
            unscoped = RootCauseLocalizer(net, scope=None)
            entities, names = feature_layout(localizer.twin)
            floor = np.array([NOISE_FLOOR[n] for n in names])
            routers = [n.id for n in net.nodes if n.kind == "router"]
            cells = [n.id for n in net.nodes if n.kind == "cell_site"]
            backbone = sorted({tuple(sorted((lk.source, lk.target))) for lk in net.links
                               if net.node(lk.source).kind == "router" and net.node(lk.target).kind == "router"})
            out[net_name] = {}
            for kind in RCA_KINDS:
                hits1 = hits3 = kind_right = z1 = z3 = a1 = a3 = all1 = 0
                seconds = all_seconds = 0.0
                for _case in range(RCA_CASES_PER_KIND):
                    if kind in ("link_down", "link_degrade", "misconfig"):
                        a, b = backbone[rng.integers(len(backbone))]
                        target: object = [a, b]
                        truth = "--".join(sorted((a, b)))
                    else:
                        truth = str(rng.choice(cells if kind == "cell_outage" else routers))
                        target = truth
                    params = {"loss": 0.02, "capacity_factor": 0.5} if kind == "link_degrade" else {}
                    params |= {"multiplier": 3.0} if kind == "flash_crowd" else {}
                    params |= {"metric": 50000} if kind == "misconfig" else {}
                    fault = Fault(kind=kind, target=target, at_minute=30, **params)
                    sim = Simulator(net, seed=int(rng.integers(1 << 30)), faults=[fault])
                    steps = np.array([Snapshot.from_step(sim.step()).values for _ in range(35)])
                    before, after = steps[15:30], steps[30:35]
                    noise = np.maximum(np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2), floor)
                    t0 = time.perf_counter()
                    ranked = localizer.rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                            minute=32, noise=noise)
                    seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    every = unscoped.rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                          minute=32, noise=noise)
                    all_seconds += time.perf_counter() - t0
                    all1 += bool(every) and every[0].target == truth
                    targets = list(dict.fromkeys(c.target for c in ranked))
                    hits1 += targets[:1] == [truth]
                    hits3 += truth in targets[:3]
                    kind_right += bool(ranked) and ranked[0].kind == kind and ranked[0].target == truth
                    z = np.abs(np.median(after, axis=0) - np.median(before, axis=0)) / noise
                    by_entity: dict[str, list[float]] = {}
                    for e, value in zip(entities, z, strict=True):
                        by_entity.setdefault(_entity_target(e), []).append(value)
                    largest = sorted(by_entity, key=lambda t: -max(by_entity[t]))
                    alarms = sorted(by_entity, key=lambda t: (-sum(v > 3 for v in by_entity[t]), -max(by_entity[t])))
                    z1 += largest[:1] == [truth]
                    z3 += truth in largest[:3]
                    a1 += alarms[:1] == [truth]
                    a3 += truth in alarms[:3]
                n = RCA_CASES_PER_KIND
                row = {"cases": n, "ac1": hits1 / n, "ac3": hits3 / n, "kind_right": kind_right / n,
                       "largest_z": [z1 / n, z3 / n], "most_alarms": [a1 / n, a3 / n],
                       "ms_per_case": 1000 * seconds / n, "every_hypothesis_ac1": all1 / n,
                       "every_hypothesis_ms_per_case": 1000 * all_seconds / n}
                out[net_name][kind] = row
                table.add_row(net_name, kind, str(n), f"{row['ac1']:.2f}", f"{row['ac3']:.2f}",
                              f"{row['kind_right']:.2f}", f"{z1 / n:.2f} / {z3 / n:.2f}",
                              f"{a1 / n:.2f} / {a3 / n:.2f}",
                              f"{row['ms_per_case']:.0f}", f"{all1 / n:.2f} / {1000 * all_seconds / n:.0f}")
        console.print(table)
    results["rca"] = out


def speed() -> None:
    """Streaming latency: one ``update`` call per sample on an AIOps KPI (1-minute, 120 k samples), timed one
    by one with perf_counter_ns; p50 and p99 over all calls."""
    _, frame = _aiops_kpis()[0]
    values, _ = _regrid(frame)
    detector = StreamingDetector()
    clock = time.perf_counter_ns
    latencies = np.empty(len(values))
    for i, v in enumerate(values.tolist()):
        t0 = clock()
        detector.update(v)
        latencies[i] = clock() - t0
    p50, p99 = np.percentile(latencies, [50, 99]) / 1000
    console.print(f"streaming update: p50 {p50:.2f} us, p99 {p99:.2f} us per sample ({len(values):,} samples)")
    settings = settings_for(values, 60.0)
    detector = settings.detector()
    transformed = settings.transform(values)
    for i, v in enumerate(transformed.tolist()):
        t0 = clock()
        detector.update(v)
        latencies[i] = clock() - t0
    s50, s99 = np.percentile(latencies, [50, 99]) / 1000
    console.print(f"streaming update with the CLI's settings (season {settings.season}, hold): p50 {s50:.2f} us, "
                  f"p99 {s99:.2f} us per sample")
    results["speed"] = {"p50_us": p50, "p99_us": p99, "samples": len(values), "seasonal_p50_us": s50,
                        "seasonal_p99_us": s99, "season": settings.season} | _bank_speed()


def _bank_speed(steps: int = 240) -> dict[str, float]:
    """Scoring every KPI of the bundled network once per tick, as the autopilot does: one ``StreamingDetector``
    per KPI against one ``DetectorBank`` (the same scores), alternating tick by tick on the simulator's own
    samples; median ms per tick."""
    from netpilot.analytics.rca import Snapshot
    from netpilot.model.io import load_network
    from netpilot.model.sample import bundled_network_path
    from netpilot.telemetry.sim.simulator import Simulator

    sim = Simulator(load_network(bundled_network_path()), seed=3)
    rows = [Snapshot.from_step(sim.step()).values for _ in range(steps)]
    params = {"level_alpha": 0.05, "warmup": 10, "peak_window": 60}
    singles = [StreamingDetector(**params) for _ in rows[0]]
    bank = DetectorBank(len(rows[0]), **params)
    # The same bank with a season (48 ticks in 48 bins, so the 240 ticks hold five seasons and the seasonal
    # path runs warm) and the hold, timed in the same loop.
    seasonal = DetectorBank(len(rows[0]), **DetectorSettings(season=48, step_seconds=1800.0).kwargs() | params)
    one_by_one, together, with_season = [], [], []
    for row in rows:
        t0 = time.perf_counter()
        expected = np.fromiter((d.update(v) for d, v in zip(singles, row.tolist(), strict=True)), dtype=float,
                               count=len(row))
        t1 = time.perf_counter()
        scores = bank.update(row)
        t2 = time.perf_counter()
        if not np.array_equal(scores, expected):
            raise AssertionError("the bank's scores differ from the single detectors'")
        one_by_one.append(t1 - t0)
        together.append(t2 - t1)
        t0 = time.perf_counter()
        seasonal.update(row)
        with_season.append(time.perf_counter() - t0)
    out = {"kpis": len(rows[0]), "ticks": steps, "one_by_one_ms": 1000 * float(np.median(one_by_one)),
           "bank_ms": 1000 * float(np.median(together)), "seasonal_bank_ms": 1000 * float(np.median(with_season)),
           "seasonal_bank_p99_ms": 1000 * float(np.percentile(with_season, 99))}
    console.print(f"every KPI of the bundled network ({out['kpis']}) per tick: one detector each "
                  f"{out['one_by_one_ms']:.2f} ms, DetectorBank {out['bank_ms']:.2f} ms "
                  f"({out['one_by_one_ms'] / out['bank_ms']:.1f}x), same scores; with a season and the hold "
                  f"{out['seasonal_bank_ms']:.2f} ms (p99 {out['seasonal_bank_p99_ms']:.2f} ms)")
    return out


# --- Sustained faults injected into real cell and KPI series ------------------------------------------------------

SUSTAINED_KINDS = ("outage", "collapse", "shift", "flapping")
# Fault lengths and the spacing between faults, in samples, per family: LTE at 2 min (an hour, 80 min for the
# collapse, events at least 12 h apart), the 5G traces at 1 s (half a minute), RAN updates at a day (a week).
SUSTAINED_FAMILIES = {"lte_barcelona": {"outage": 30, "collapse": 40, "shift": 30, "flapping": 30, "gap": 360},
                      "5g_ireland": {"outage": 30, "collapse": 40, "shift": 30, "flapping": 30, "gap": 120},
                      "ran_updates": {"outage": 5, "collapse": 7, "shift": 7, "flapping": 8, "gap": 16}}
SUSTAINED_TUNING_SEEDS = (0, 1)  # parameters were chosen looking at these only
SUSTAINED_HELD_OUT_SEEDS = (2, 3, 4)
SUSTAINED_WITHIN = 7  # an event counts as found when an alarm falls in its first 7 points after onset
SUSTAINED_VISIBLE = 3.0  # a fault that moves the series by fewer noise deviations is also reported apart
RUNS_PER_DAY, MIN_SCORE = 1.0, 4.0  # the CLI's defaults: the threshold from the first half, without labels


def _sustained_series() -> list[tuple[str, str, np.ndarray, float]]:
    """(family, name, values, step seconds) for every real cell and KPI series: LTE Barcelona's 3 eNodeBs x 11
    KPIs (train and test splits joined), the 5G traces' 6 radio/throughput KPIs x 83 sessions, RAN updates' DL
    and UL x 882 carriers (daily)."""
    import zipfile

    out = []
    for site in ("ElBorn", "LesCorts", "PobleSec"):
        frame = pd.concat([pd.read_csv(DATA / "lte_barcelona" / f"{site}.csv"),
                           pd.read_csv(DATA / "lte_barcelona" / f"{site}_test.csv")])
        for column in frame.columns.drop("time"):
            out.append(("lte_barcelona", f"{site}/{column}", frame[column].to_numpy(dtype=float), 120.0))
    with zipfile.ZipFile(DATA / "5g_ireland_uccmisl" / "5G-production-dataset.zip") as archive:
        for name in sorted(n for n in archive.namelist() if n.endswith(".csv") and "MACOSX" not in n):
            frame = pd.read_csv(archive.open(name), na_values="-")
            for column in ("DL_bitrate", "UL_bitrate", "RSRP", "RSRQ", "SNR", "CQI"):
                values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
                out.append(("5g_ireland", f"{name.split('/', 1)[1]}/{column}", values, 1.0))
    ran = pd.read_parquet(DATA / "ran_updates_imdea" / "traffic_dataset_daily_v1.parquet").drop_duplicates()
    for uuid, frame in ran.sort_values(["UUID", "deltaT"]).groupby("UUID", sort=True):
        for column in ("DL", "UL"):
            out.append(("ran_updates", f"{uuid}/{column}", frame[column].to_numpy(dtype=float), 86_400.0))
    return out


def _inject(values: np.ndarray, family: str, seed: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Faults in the second half, one per slot of ``gap`` samples or more, kinds in turn from ``seed``. A fault
    is relative to the series' floor f (for a non-negative counter its first half's 0.5th percentile, else
    four robust standard deviations under its median: dBm, dB, z-scores): outage -> f, collapse -> f + 15 %
    of (x - f), shift -> f + 180 % of (x - f), flapping -> outage 2 samples, normal 2, in turn."""
    spec = SUSTAINED_FAMILIES[family]
    rng = np.random.default_rng([seed, len(values)])
    n, half = len(values), len(values) // 2
    finite = values[:half][np.isfinite(values[:half])]
    if len(finite) and finite.min() >= 0:
        floor = float(np.quantile(finite, 0.005))
    else:  # no natural zero (dBm, dB, z-scores): four robust standard deviations under the median
        median = float(np.median(finite)) if len(finite) else 0.0
        floor = median - 4 * 1.4826 * float(np.median(np.abs(finite - median))) if len(finite) else 0.0
    faulty = values.copy()
    events = []
    slots = max(1, min(8, (n - half) // spec["gap"]))
    slot = (n - half) // slots
    for j in range(slots):
        kind = SUSTAINED_KINDS[(seed + j) % len(SUSTAINED_KINDS)]
        length = spec[kind]
        room = slot - length - SUSTAINED_WITHIN
        if room <= 0:
            continue
        start = half + j * slot + int(rng.integers(0, room))
        end = start + length
        x = faulty[start:end]
        if kind == "outage":
            x[:] = floor
        elif kind == "collapse":
            x[:] = floor + 0.15 * (x - floor)
        elif kind == "shift":
            x[:] = floor + 1.8 * (x - floor)
        else:
            x[(np.arange(length) % 4) < 2] = floor
        events.append((start, end, kind))
    return faulty, events


def _effect(values: np.ndarray, faulty: np.ndarray, start: int, end: int) -> float:
    """How far a fault moves the series, in noise standard deviations: the median |change| over the fault
    against the first half's sample-to-sample noise (robust, 1.4826 MAD of differences / sqrt 2)."""
    half = values[:len(values) // 2]
    steps = np.diff(half[np.isfinite(half)])
    noise = 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2) if len(steps) else 0.0
    change = np.abs(faulty[start:end] - values[start:end])
    change = change[np.isfinite(change)]
    return float(np.median(change)) / noise if noise > 0 and len(change) else float("inf")


def _score_injected(scores: np.ndarray, threshold: float, events: list[tuple[int, int, str]]) -> tuple[
        dict[str, list[int]], int, int, int]:
    """Per kind, [found, injected]; the false alarm runs in the second half (alarms outside every fault and
    the 7 samples after it; alarms fewer than 7 samples apart are one run); and the alarmed samples among the
    second half's normal ones, and how many normal ones there are: runs alone would let a detector that stays
    alarmed for hours (one long run) "find" every fault inside that time at no cost."""
    n, half = len(scores), len(scores) // 2
    alarms = scores >= threshold
    found: dict[str, list[int]] = {k: [0, 0] for k in SUSTAINED_KINDS}
    fault_zone = np.zeros(n, dtype=bool)
    for start, end, kind in events:
        hit = bool(alarms[start:start + SUSTAINED_WITHIN + 1].any())
        found[kind][0] += hit
        found[kind][1] += 1
        fault_zone[start:end + SUSTAINED_WITHIN] = True
    false = np.flatnonzero(alarms[half:] & ~fault_zone[half:])
    runs = int(len(false) > 0) + int((np.diff(false) >= SUSTAINED_WITHIN).sum()) if len(false) else 0
    return found, runs, len(false), int((~fault_zone[half:]).sum())


def _calibrate_runs(scores: np.ndarray, step: float) -> float:
    """The first helper's rule: at most one alarm run per wall-time day of the history."""
    return calibrate_runs(scores, runs=RUNS_PER_DAY * len(scores) * step / 86_400.0, min_threshold=MIN_SCORE).value


def _calibrate_days(scores: np.ndarray, step: float) -> float:
    """The CLI's rule now: the quantile of 3-hour (or 180-sample) block maxima one block a series-day exceeds."""
    return calibrate_days(scores, step_seconds=step, runs_per_day=RUNS_PER_DAY, min_threshold=MIN_SCORE).value


def _sustained_run(series, seeds, scorer, calibrator=_calibrate_days) -> dict[str, dict[str, float]]:
    out = {}
    for family in SUSTAINED_FAMILIES:
        found = {k: [0, 0] for k in SUSTAINED_KINDS}
        visible = [0, 0]
        runs = days = wall_days = points = false_samples = normal_samples = 0.0
        for fam, _, values, step in series:
            if fam != family:
                continue
            for seed in seeds:
                faulty, events = _inject(values, family, seed)
                scores = np.nan_to_num(scorer(faulty, step))
                half = len(faulty) // 2
                threshold = calibrator(scores[:half], step)
                f, r, alarmed, normal = _score_injected(scores, threshold, events)
                false_samples += alarmed
                normal_samples += normal
                for k in SUSTAINED_KINDS:
                    found[k][0] += f[k][0]
                    found[k][1] += f[k][1]
                for start, end, _ in events:
                    if _effect(values, faulty, start, end) >= SUSTAINED_VISIBLE:
                        visible[0] += bool((scores[start:start + SUSTAINED_WITHIN + 1] >= threshold).any())
                        visible[1] += 1
                runs += r
                wall_days += (len(faulty) - half) * step / 86_400.0
                days += series_days(len(faulty) - half, step)
                points += len(faulty) - half
        total = sum(v[0] for v in found.values()), sum(v[1] for v in found.values())
        out[family] = {"recall": total[0] / max(total[1], 1), "events": total[1],
                       "recall_visible": visible[0] / max(visible[1], 1), "visible_events": visible[1],
                       **{f"recall_{k}": v[0] / max(v[1], 1) for k, v in found.items()},
                       "false_runs_per_series_day": runs / max(days, 1e-9),
                       "false_runs_per_wall_day": runs / max(wall_days, 1e-9),
                       "false_runs_per_1000_points": 1000 * runs / max(points, 1),
                       "normal_alarmed_share": false_samples / max(normal_samples, 1)}
    return out


def _ours(values: np.ndarray, step: float) -> np.ndarray:
    return settings_for(values, step).score(values)


def _ours_cusum(values: np.ndarray, step: float) -> np.ndarray:
    """Tried and dropped: the CLI's settings with a CUSUM (allowance 0.5 noise sd) beside the three detectors."""
    return dataclasses.replace(settings_for(values, step), cusum=0.5).score(values)


def _first(values: np.ndarray, step: float) -> np.ndarray:
    """The first helper's detector: the CLI's settings without the collapse detector."""
    return dataclasses.replace(settings_for(values, step), collapse_fraction=0.0, cusum=0.0).score(values)


def _before(values: np.ndarray, step: float) -> np.ndarray:
    return score_series(values)


def sustained() -> None:
    """Outages, partial collapses (to 15 % for 80 min on LTE), level shifts (+80 %) and flapping injected into
    the second half of every real cell and KPI series (LTE Barcelona 33, 5G Ireland 498, RAN updates 1,764),
    several faults per series, at seeds 0-1 (parameters chosen looking at these) and 2-4 (held out). Each
    series is scored causally with the CLI's defaults; the threshold comes from its clean first half without
    labels (rate 0.2 %, never below 4). Found: an alarm within 7 samples of the onset. False alarm runs: alarms
    in the second half outside every fault and the 7 samples after it (alarms under 7 samples apart are one
    run), per series-day and per 1,000 samples. Faults that move the series by fewer than 3 noise standard
    deviations (a collapse at night, an outage of a bursty counter that is often near zero) are counted in
    "found" and also left out of a second recall. "before" is the detector as it was (no season, no hold)."""
    series = _sustained_series()
    table = Table("family", "seeds", "detector", "events", "found <= 7", "outage / collapse / shift / flapping",
                  "found, faults >= 3 noise sd", "false runs / series-day", "/ wall-time day", "per 1,000 samples",
                  "normal samples alarmed")
    out: dict[str, object] = {"series": {f: sum(s[0] == f for s in series) for f in SUSTAINED_FAMILIES}}
    t0 = time.perf_counter()
    detectors = {"ours": (_ours, _calibrate_days), "first helper": (_first, _calibrate_runs),
                 "before": (_before, _calibrate_runs), "ours + CUSUM 0.5": (_ours_cusum, _calibrate_days)}
    for label, seeds in (("tuning", SUSTAINED_TUNING_SEEDS), ("held_out", SUSTAINED_HELD_OUT_SEEDS)):
        for name, (scorer, calibrator) in detectors.items():
            if (name == "before" and label == "tuning") or (name == "ours + CUSUM 0.5" and label == "held_out"):
                continue  # the CUSUM was dropped on the tuning seeds: it stays alarmed for hours
            res = _sustained_run(series, seeds, scorer, calibrator)
            out[f"{label}/{name}"] = res
            for family, r in res.items():
                table.add_row(family, f"{label} {seeds}", name, str(r["events"]), f"{r['recall']:.1%}",
                              " / ".join(f"{r[f'recall_{k}']:.0%}" for k in SUSTAINED_KINDS),
                              f"{r['recall_visible']:.1%} of {r['visible_events']}",
                              f"{r['false_runs_per_series_day']:.2f}", f"{r['false_runs_per_wall_day']:.2f}",
                              f"{r['false_runs_per_1000_points']:.3f}", f"{r['normal_alarmed_share']:.2%}")
    out["seconds"] = time.perf_counter() - t0
    console.print(table)
    results["sustained"] = out


SECTIONS = {"nab": nab, "aiops": aiops, "lte": lte, "ranupdates": ranupdates, "alarms": alarms, "rca": rca,
            "speed": speed, "sustained": sustained}

if __name__ == "__main__":
    run("analytics", SECTIONS, sys.argv[1:] or list(SECTIONS), results)
