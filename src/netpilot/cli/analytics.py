"""`netpilot forecast`, `netpilot detect` and `netpilot rca`: the analytics stage from files."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from netpilot.cli.common import reports_errors, stdout
from netpilot.errors import InputError

InputOption = Annotated[Path, typer.Option("--input", help="CSV with timestamp,value[,label], or telemetry Parquet "
                                                           "(timestamp, entity, metric, value).")]
RUNS_PER_DAY = 1.0  # detect's defaults: alarm runs a series-day, and the lowest score that alarms
MIN_SCORE = 4.0
JsonOption = Annotated[Path, typer.Option("--json", help="Where to write the result.")]


def _write(out: Path, data: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")


def _finite(values) -> list[float | None]:
    return [float(v) if v == v and abs(v) != float("inf") else None for v in values]


@reports_errors
def forecast(
    input_file: InputOption,
    horizon: Annotated[int, typer.Option(help="Steps ahead (a step is the series' median spacing).")],
    json_out: JsonOption,
    season: Annotated[int, typer.Option(help="Season length in steps (e.g. 1440 for a day of minutes); "
                                             "0 infers a day from the spacing.")] = 0,
    levels: Annotated[str, typer.Option(help="Interval levels in percent, comma-separated.")] = "80,95",
    threshold: Annotated[float | None, typer.Option(help="Also give P(value > threshold) per step.")] = None,
) -> None:
    """Forecast every series with the model its own backtest picks, with intervals."""
    from netpilot.analytics.forecast import Forecaster
    from netpilot.analytics.inputs import read_series

    if horizon < 1:
        raise InputError.at("must be at least 1", field="--horizon")
    try:
        level_list = [int(x) for x in levels.split(",") if x.strip()]
    except ValueError:
        raise InputError.at(f"{levels!r} is not a comma-separated list of integers", field="--levels") from None
    if not level_list or not all(0 < x < 100 for x in level_list):
        raise InputError.at("levels must lie strictly between 0 and 100", field="--levels")
    series = read_series(input_file)
    out = []
    for s in series:
        step = s.step_seconds()
        season_length = season or max(1, round(86400 / step))
        finite = int(sum(v == v for v in s.values))
        if finite < 2 * horizon + 2:
            raise InputError.at(f"series {s.name}: {finite} values, need at least {2 * horizon + 2} to backtest a "
                                f"{horizon}-step horizon", file=input_file)
        windows = max(1, min(8, (len(s.values) - horizon) // horizon - 1))
        forecaster = Forecaster(horizon, season_length, levels=level_list, backtest_windows=windows,
                                max_history=max(3 * season_length, 10 * horizon)).fit([s.values], [s.name])
        result = forecaster.predict([s.values], [s.name])
        last = s.timestamps[-1]
        entry = {"series": s.name, "entity": s.entity, "metric": s.metric, "model": result.model[0],
                 "step_seconds": step, "season_length": season_length,
                 "backtest_mae": forecaster.backtest_mae_[0],
                 "timestamps": [(last + timedelta(seconds=step * (k + 1))).isoformat() for k in range(horizon)],
                 "mean": _finite(result.mean[0])}
        for level in level_list:
            entry[f"lower_{level}"] = _finite(result.lower[level][0])
            entry[f"upper_{level}"] = _finite(result.upper[level][0])
        if threshold is not None:
            entry["threshold"] = threshold
            entry["exceedance_probability"] = _finite(result.exceedance_probability(threshold)[0])
        out.append(entry)
    _write(json_out, {"horizon": horizon, "series": out})
    stdout().print(f"{len(out)} series forecast {horizon} steps ahead -> {json_out}")


@reports_errors
def detect(
    input_file: InputOption,
    json_out: JsonOption,
    train_fraction: Annotated[float, typer.Option(help="Share of the series (from its start) that sets the "
                                                       "threshold and in which the season is looked for.")] = 0.5,
    runs_per_day: Annotated[float, typer.Option(help="Alarm runs a series-day the threshold allows on that part "
                                                     "(a day of wall time, or 1,440 samples when sampled "
                                                     "faster than a minute).")] = RUNS_PER_DAY,
    alarm_rate: Annotated[float | None, typer.Option(help="Instead of --runs-per-day: a share of alarmed samples "
                                                          "on that part.")] = None,
    min_score: Annotated[float, typer.Option(help="Never alarm below this score (noise standard deviations).")]
    = MIN_SCORE,
    explain: Annotated[bool, typer.Option("--explain", help="For each alarm, say which detector fired (point: "
                                                            "this sample; shift: a sustained change; collapse: "
                                                            "a fall to under 40 % of it) and what "
                                                            "was expected.")] = False,
    collapse_hold: Annotated[float | None, typer.Option(
        help="Hours a counter that keeps collapsing (under 40 % of its expectation, within the last season) stays "
             "a fault before its new level is taken as normal; 'inf': until it recovers. Default: the usual hold "
             "(6 h). Longer finds multi-day outages whole but raises more false alarm runs on bursty cells "
             "(BENCHMARKS.md, issue 30).")] = None,
    detector: Annotated[str, typer.Option(
        help="'expectation': scores in noise deviations from an expectation (KPIs, cells: level shifts, "
             "outages, collapses); 'context': how new the context of each value is, 0 to 1, one alarm an "
             "episode at --context-threshold (series whose anomalies are patterns never seen; NAB's kind).")]
    = "expectation",
    context_threshold: Annotated[float | None, typer.Option(
        help="With --detector context: the score that alarms (and starts the rest after an alarm); default 0.75.")]
    = None,
) -> None:
    """Score every sample causally (no look-ahead) against an expectation that knows the series' daily or weekly
    season (found in its first part by autocorrelation), with point, sustained-shift and collapse detectors, and raise
    alarms above a threshold set from the series' start; or, with --detector context, by how new each value's
    context is. A label column, when present, is never read."""
    from netpilot.analytics.detect import calibrate, calibrate_days, explain_series, settings_for
    from netpilot.analytics.inputs import read_series

    if not 0 < train_fraction <= 1:
        raise InputError.at("must be in (0, 1]", field="--train-fraction")
    if alarm_rate is not None and not 0 < alarm_rate < 1:
        raise InputError.at("must be in (0, 1)", field="--alarm-rate")
    if runs_per_day <= 0:
        raise InputError.at("must be positive", field="--runs-per-day")
    if collapse_hold is not None and not collapse_hold > 0:
        raise InputError.at("must be a positive number of hours, or inf", field="--collapse-hold")
    if detector not in ("expectation", "context"):
        raise InputError.at(f"must be 'expectation' or 'context', got {detector!r}", field="--detector")
    if context_threshold is not None and not 0 < context_threshold <= 1:
        raise InputError.at("must be in (0, 1]", field="--context-threshold")
    if context_threshold is not None and detector != "context":
        raise InputError.at("applies to --detector context only", field="--context-threshold")
    series = read_series(input_file)
    if detector == "context":
        for option, given in (("--runs-per-day", runs_per_day != RUNS_PER_DAY),
                              ("--alarm-rate", alarm_rate is not None), ("--min-score", min_score != MIN_SCORE),
                              ("--collapse-hold", collapse_hold is not None)):
            if given:
                raise InputError.at("applies to --detector expectation only (the context detector alarms at "
                                    "--context-threshold)", field=option)
        _detect_context(series, json_out, input_file, train_fraction, context_threshold, explain)
        return
    results = []
    for s in series:
        step = s.step_seconds()
        settings = settings_for(s.values, step, train_fraction=train_fraction)
        if collapse_hold is not None:
            settings = dataclasses.replace(settings, collapse_hold_seconds=collapse_hold * 3600.0)
        explained = explain_series(settings.transform(s.values), settings.detector())
        scores = explained.scores
        cut = max(1, int(len(scores) * train_fraction))
        if alarm_rate is None:
            threshold = calibrate_days(scores[:cut], step_seconds=step, runs_per_day=runs_per_day,
                                       min_threshold=min_score)
        else:
            threshold = calibrate(scores[:cut], alarm_rate=alarm_rate, min_threshold=min_score)
        expected = settings.untransform(explained.expected)
        points = []
        for k, (t, sc) in enumerate(zip(s.timestamps, scores, strict=True)):
            point = {"timestamp": t.isoformat(), "score": float(sc), "alarm": bool(sc >= threshold.value)}
            if explain and point["alarm"]:
                point |= {"detector": explained.fired(k), "expected": _finite([expected[k]])[0]}
            points.append(point)
        results.append({"series": s.name, "entity": s.entity, "metric": s.metric, "threshold": threshold.value,
                        "season_samples": settings.season, "log_scale": settings.log_offset is not None,
                        "points": points})
    data = ({k: results[0][k] for k in ("threshold", "season_samples", "log_scale", "points")}
            if input_file.suffix.lower() != ".parquet" else {"series": results})
    _write(json_out, data)
    console = stdout()
    if explain:
        for r in results:
            for p in r["points"]:
                if p["alarm"]:
                    expected_text = "nothing" if p["expected"] is None else f"{p['expected']:.6g}"
                    console.print(f"{r['series']} {p['timestamp']}: {p['detector']} detector, score "
                                  f"{p['score']:.1f} (threshold {r['threshold']:.1f}), expected {expected_text}")
    _print_summary(console, results, json_out)


def _detect_context(series, json_out: Path, input_file: Path, train_fraction: float, threshold: float | None,
                    explain: bool) -> None:
    """``detect --detector context``: the contextual novelty score, its range learnt from the first part."""
    from netpilot.analytics.context import THRESHOLD, context_detector

    threshold = THRESHOLD if threshold is None else threshold
    results = []
    for s in series:
        scorer = context_detector(s.values, train_fraction=train_fraction, threshold=threshold)
        points = []
        for t, v in zip(s.timestamps, s.values.tolist(), strict=True):
            foreseen = scorer.foreseen()
            score = scorer.update(v)
            point = {"timestamp": t.isoformat(), "score": score, "alarm": score >= threshold}
            if explain and point["alarm"]:
                point |= {"detector": "context", "expected": [_finite(span) for span in foreseen]}
            points.append(point)
        results.append({"series": s.name, "entity": s.entity, "metric": s.metric, "detector": "context",
                        "threshold": threshold, "rest_samples": scorer.rest, "points": points})
    data = ({k: results[0][k] for k in ("detector", "threshold", "rest_samples", "points")}
            if input_file.suffix.lower() != ".parquet" else {"series": results})
    _write(json_out, data)
    console = stdout()
    if explain:
        for r, s in zip(results, series, strict=True):
            for p, v in zip(r["points"], s.values, strict=True):
                if p["alarm"]:
                    expected = ", ".join("under " + f"{high:.6g}" if low is None else f"over {low:.6g}"
                                         if high is None else f"{low:.6g} to {high:.6g}"
                                         for low, high in p["expected"]) or "nothing"
                    console.print(f"{r['series']} {p['timestamp']}: context detector, score {p['score']:.2f} "
                                  f"(threshold {threshold:.2f}): {v:.6g} where the contexts learnt so far foresaw "
                                  f"{expected}; no alarm for the next {r['rest_samples']} samples")
    _print_summary(console, results, json_out)


def _print_summary(console, results: list[dict], json_out: Path) -> None:
    alarms = sum(p["alarm"] for r in results for p in r["points"])
    console.print(f"{sum(len(r['points']) for r in results)} points in {len(results)} series, {alarms} alarms "
                  f"-> {json_out}")


def _canonical_metrics(samples):
    """The US spelling ``utilization`` read as the catalogue's ``utilisation``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = samples.column_names.index("metric")
    return samples.set_column(column, "metric", pc.replace_substring(samples["metric"].cast(pa.string()),
                                                                     "utilization", "utilisation"))


def _same_network(samples, net, telemetry: Path, network: Path) -> None:
    """Telemetry of entities the network does not have is telemetry of another network: refused, with examples."""
    import pyarrow.compute as pc

    from netpilot.telemetry.schema import known_entities

    seen = set(pc.unique(samples["entity"]).to_pylist())
    unknown = sorted(seen - known_entities(net))
    if unknown:
        raise InputError.at(f"{len(unknown)} of its {len(seen)} entities are not in {network} (e.g. "
                            f"{', '.join(unknown[:3])}): telemetry of another network?", file=telemetry,
                            field="entity")


@reports_errors
def rca(
    telemetry: Annotated[Path, typer.Option(help="Telemetry Parquet (timestamp, entity, metric, value), e.g. from "
                                                 "`netpilot sim run`.")],
    network: Annotated[Path, typer.Option(help="The network the telemetry comes from.")],
    json_out: JsonOption,
    top: Annotated[int, typer.Option(help="Causes to list per incident.")] = 5,
    before_steps: Annotated[int, typer.Option(help="Steps before an onset that describe the healthy state.")] = 15,
    after_steps: Annotated[int, typer.Option(help="Steps after an onset that describe the incident.")] = 5,
) -> None:
    """Find where incidents start and rank their candidate root causes on the topology."""
    import pyarrow.parquet as pq

    from netpilot.analytics.rca import incident_onsets, incident_window_causes, require_columns
    from netpilot.model.io import load_network

    net = load_network(network)
    if not telemetry.exists():
        raise InputError.at("no such file", file=telemetry)
    try:
        samples = pq.read_table(telemetry)
    except Exception as exc:
        raise InputError.at(f"not a readable Parquet file ({exc})", file=telemetry) from None
    require_columns(samples, str(telemetry))
    samples = _canonical_metrics(samples)
    _same_network(samples, net, telemetry, network)
    onsets = incident_onsets(samples)
    incidents = []
    for onset in onsets:
        causes = incident_window_causes(net, samples, onset, before_steps=before_steps, after_steps=after_steps,
                                        top=top)
        incidents.append({"start": onset.isoformat(), "causes": [c.as_dict() for c in causes]})
    _write(json_out, {"incidents": incidents})
    console = stdout()
    for incident in incidents:
        best = incident["causes"][0] if incident["causes"] else None
        console.print(f"{incident['start']}: " + (f"{best['kind']} at {best['target']} (explains "
                                                   f"{best['score']:.0%})" if best else "no cause explains it"))
    console.print(f"{len(incidents)} incident(s) -> {json_out}")
