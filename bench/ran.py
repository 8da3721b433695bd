"""AI-RAN benchmarks: RAN slicing on the real LTE Barcelona cells (figures go to BENCHMARKS.md).

    python bench/ran.py            # every section
    python bench/ran.py slicing    # sections: slicing, speed

Protocol (slicing). Each of the three CTTC eNodeBs (ElBorn, LesCorts, PobleSec; train and test files joined, 2-min
intervals) gives its measured downlink PRB use ``rb_down``. A cell of 100 PRBs carries that load scaled so its
99th percentile total demand is 110 % of the cell (a busy cell that saturates at peaks). The stated slice mix:
eMBB 70 % of the load (the measured series itself), mMTC 20 % (its 6-hour moving average: machine traffic is
steady), URLLC 10 % with log-normal bursts (sigma 0.6, seed 0). Slices: eMBB priority 1, guaranteed 50 %;
URLLC priority 10, guaranteed 20 %; mMTC priority 2, guaranteed 15 %. Each interval is decided on a forecast: the
previous interval's demand (the analytics stage's forecasts are not wired in yet), with a 20 % margin on
reservations. The SLA of a slice is met when it gets min(actual demand, guaranteed PRBs).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from netpilot.optimize.ran.slicing import (
    Slice,
    allocate_fast,
    allocate_lp,
    allocate_proportional,
    allocate_static,
    evaluate,
)

ROOT = Path(__file__).resolve().parents[1]
LTE = ROOT.parent / "shared" / "data" / "telemetry" / "lte_barcelona"
OUT = ROOT / "bench" / "results"
console = Console(width=250, soft_wrap=True)
results: dict[str, object] = {}
SLICES = [Slice("eMBB", 1.0, 0.5), Slice("URLLC", 10.0, 0.2), Slice("mMTC", 2.0, 0.15)]
PRBS = 100.0


def cell_load(site: str) -> np.ndarray:
    values = []
    for name in (f"{site}.csv", f"{site}_test.csv"):
        with open(LTE / name, newline="") as handle:
            values += [float(row["rb_down"] or "nan") for row in csv.DictReader(handle)]
    series = np.array(values)
    # Fill the few NaN intervals with the previous value (causal).
    for i in np.flatnonzero(~np.isfinite(series)):
        series[i] = series[i - 1] if i else 0.0
    return series


def slice_demand(series: np.ndarray, seed: int = 0) -> np.ndarray:
    """(T, 3) PRB demand per slice for one cell (see the module docstring)."""
    rng = np.random.default_rng(seed)
    window = 180  # 6 hours of 2-minute intervals
    smooth = np.convolve(series, np.ones(window) / window, mode="full")[:len(series)]
    smooth[:window] = np.cumsum(series[:window]) / np.arange(1, window + 1)
    raw = np.stack([0.7 * series, 0.1 * series * rng.lognormal(-0.18, 0.6, len(series)), 0.2 * smooth], axis=1)
    scale = 1.1 * PRBS / np.percentile(raw.sum(axis=1), 99)
    return raw * scale


def section_slicing() -> None:
    rows, records = [], []
    for site in ("ElBorn", "LesCorts", "PobleSec"):
        actual = slice_demand(cell_load(site))
        forecast = np.vstack([actual[:1], actual[:-1]])  # last interval's demand
        prbs = np.full(len(actual), PRBS)
        decisions = {
            "fast": allocate_fast(prbs, forecast, SLICES, margin=0.2),
            "LP": allocate_lp(prbs, forecast, SLICES, margin=0.2),
            "static equal split": allocate_static(prbs, forecast, SLICES),
            "proportional share": allocate_proportional(prbs, forecast, SLICES),
        }
        for method, decision in decisions.items():
            report = evaluate(decision.allocation, actual, PRBS, SLICES)
            records.append({"cell": site, "method": method, "intervals": report.intervals,
                            "feasible_intervals": report.feasible_intervals, "satisfaction": report.satisfaction,
                            "by_slice": report.satisfaction_by_slice, "efficiency": report.efficiency,
                            "served_share": report.served_share})
            rows.append([site, method, report.intervals, report.feasible_intervals,
                         f"**{100 * report.satisfaction:.2f} %**",
                         " / ".join(f"{100 * v:.1f}" for v in report.satisfaction_by_slice.values()),
                         f"{100 * report.served_share:.1f} %", f"{100 * report.efficiency:.1f} %"])
    results["slicing"] = records
    console.print("\n### RAN slicing on the LTE Barcelona cells (2-minute intervals, forecast = last interval)\n")
    console.print("| cell | method | intervals | SLA feasible | SLA met (feasible intervals) | "
                  "eMBB / URLLC / mMTC % | demand served | PRB efficiency |\n|---|---|---|---|---|---|---|---|")
    for row in rows:
        console.print("| " + " | ".join(str(c) for c in row) + " |")


def section_speed() -> None:
    rng = np.random.default_rng(1)
    cells = 100_000
    demand = rng.uniform(0, 60, (cells, len(SLICES)))
    prbs = np.full(cells, 273.0)
    allocate_fast(prbs[:10], demand[:10], SLICES)
    started = time.perf_counter()
    allocate_fast(prbs, demand, SLICES)
    fast_seconds = time.perf_counter() - started
    sample = 20_000
    lp = allocate_lp(prbs[:sample], demand[:sample], SLICES)
    head = allocate_fast(prbs[:sample], demand[:sample], SLICES)
    gap = float(np.abs(head.objective(demand[:sample], SLICES) - lp.objective(demand[:sample], SLICES)).max())
    results["slicing_speed"] = {"cells": cells, "fast_seconds": fast_seconds, "decisions_per_s": cells / fast_seconds,
                                "lp_cells": sample, "lp_seconds": lp.seconds,
                                "lp_decisions_per_s": sample / lp.seconds, "max_objective_difference": gap}
    console.print("\n### Slicing speed\n")
    console.print("| method | cells | seconds | cell decisions/s | target |\n|---|---|---|---|---|")
    console.print(f"| fast | {cells:,} | {fast_seconds:.3f} | **{cells / fast_seconds:,.0f}** | ≥ 10,000/s |")
    console.print(f"| LP (HiGHS, all cells in one LP) | {sample:,} | {lp.seconds:.2f} | {sample / lp.seconds:,.0f} | |")
    console.print(f"\nLargest difference in objective between fast and LP over {sample:,} cells: {gap:.2e} PRBs.")


SECTIONS = {"slicing": section_slicing, "speed": section_speed}


def main(argv: list[str]) -> None:
    for name in argv or list(SECTIONS):
        SECTIONS[name]()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "ran.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(results)
    path.write_text(json.dumps(existing, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
