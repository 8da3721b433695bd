"""AI-RAN benchmarks: RAN slicing on the real LTE Barcelona cells (figures go to BENCHMARKS.md).

    python bench/ran.py            # every section
    python bench/ran.py slicing    # sections: slicing, speed, placement, replacement, loop, loop_mip, live

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
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from _results import run
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


EDGE = ROOT.parent / "shared" / "data" / "edge"
#: Services (stated, not measured): a video-analytics detector, speech recognition, and an LLM chat model whose
#: GPU time per request follows the Azure LLM conversation trace (0.02 ms per prompt token, 1.5 ms per output
#: token on one GPU).
ACCESS_MS, PER_HOP_MS = 1.0, 0.5


def _services(llm_gpu_seconds: float):
    from netpilot.optimize.ran.placement import Service

    return [Service("vision", 4.0, 0.004, 25.0), Service("speech", 8.0, 0.04, 205.0),
            Service("llm-chat", 20.0, llm_gpu_seconds, 1000.0 * llm_gpu_seconds / 0.2 + 6.0)]


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def eua_scenario(n_sites: int = 12, seed: int = 0):
    """The EUA Melbourne CBD scenario (generator, fixed seed): 125 real Optus sites as cells, ``n_sites`` of them
    (farthest-point picks) hosting 8 x 80 GB GPUs behind an aggregation router; each cell on a fibre to its
    nearest router; routers meshed to their 3 nearest peers and to the nearest router picked before them
    (1 ms access + 0.5 ms per hop + propagation). Users: the 816 EUA user points, each on its nearest cell,
    asking vision 1.5, speech 0.15 and LLM chat 0.03 requests/s. Returns (network, cells, sites, users per
    cell, services)."""
    from netpilot.model.network import CellSite, EdgeSite, Link, Location, Network, Router
    from netpilot.model.units import fibre_latency_ms, great_circle_km

    sites = _read_csv(EDGE / "eua" / "site-optus-melbCBD.csv")
    users = _read_csv(EDGE / "eua" / "users-melbcbd-generated.csv")
    conv = _read_csv(EDGE / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv")
    llm_seconds = float(np.mean([0.00002 * int(r["ContextTokens"]) + 0.0015 * int(r["GeneratedTokens"])
                                 for r in conv]))
    lat = np.array([float(r["LATITUDE"]) for r in sites])
    lon = np.array([float(r["LONGITUDE"]) for r in sites])
    km = np.array([[great_circle_km(a, b, c, d) for c, d in zip(lat, lon)] for a, b in zip(lat, lon)])
    chosen = [int(np.argmin((lat - lat.mean()) ** 2 + (lon - lon.mean()) ** 2))]
    while len(chosen) < n_sites:
        chosen.append(int(np.argmax(km[:, chosen].min(axis=1))))
    nodes, links = [], []
    cell_ids = [f"cell-{r['SITE_ID']}" for r in sites]
    for i in range(len(sites)):
        nodes.append(CellSite(id=cell_ids[i], location=Location(lat=lat[i], lon=lon[i]), prbs=273))
    router_ids, site_ids = [], []
    for j, i in enumerate(chosen):
        router_ids.append(f"agg-{j}")
        site_ids.append(f"edge-{j}")
        nodes.append(Router(id=router_ids[-1], location=Location(lat=lat[i], lon=lon[i])))
        nodes.append(EdgeSite(id=site_ids[-1], location=Location(lat=lat[i], lon=lon[i]), gpus=8, gpu_memory_gb=80))

    def both(a: str, b: str, ms: float, capacity: float) -> None:
        links.extend([Link(source=a, target=b, capacity=capacity, latency_ms=ms),
                      Link(source=b, target=a, capacity=capacity, latency_ms=ms)])

    nearest = np.argmin(km[:, chosen], axis=1)
    for i, j in enumerate(nearest):
        both(cell_ids[i], router_ids[j], ACCESS_MS + fibre_latency_ms(1.4 * km[i, chosen[j]]), 10_000)
    meshed: set[tuple[int, int]] = set()
    for j, i in enumerate(chosen):
        both(router_ids[j], site_ids[j], 0.01, 400_000)
        peers = set(np.argsort(km[i, chosen])[1:4].tolist())
        if j:  # and the nearest router picked before it, which keeps the mesh connected
            peers.add(int(np.argmin(km[i, chosen[:j]])))
        for other in peers:
            if (min(j, other), max(j, other)) not in meshed:
                meshed.add((min(j, other), max(j, other)))
                both(router_ids[j], router_ids[other], fibre_latency_ms(1.4 * km[i, chosen[other]]), 100_000)
    network = Network(name="eua-melbourne-cbd", origin="EUA (Lai et al., ICSOC 2018) sites and users",
                      nodes=nodes, links=links)
    ulat = np.array([float(r["Latitude"]) for r in users])
    ulon = np.array([float(r["Longitude"]) for r in users])
    home = np.argmin((ulat[:, None] - lat[None, :]) ** 2 + ((ulon[:, None] - lon[None, :]) *
                                                           np.cos(np.radians(lat.mean()))) ** 2, axis=1)
    per_cell = np.bincount(home, minlength=len(sites)).astype(float)
    return network, cell_ids, site_ids, per_cell, _services(llm_seconds)


def placement_problem(n_sites: int = 12, ran_share: np.ndarray | None = None, load: float = 1.0):
    from netpilot.model.routing import latency_matrix
    from netpilot.optimize.ran.placement import PlacementProblem

    network, cells, sites, users, services = eua_scenario(n_sites)
    arrays = network.arrays()
    latency = latency_matrix(arrays, [arrays.index[c] for c in cells], [arrays.index[s] for s in sites],
                             per_hop_ms=PER_HOP_MS)
    per_user = np.array([1.5, 0.15, 0.03]) * load
    rate = users[:, None] * per_user[None, :]
    share = np.full(len(sites), 0.5) if ran_share is None else ran_share
    return PlacementProblem(cells, sites, services, rate, latency, np.full(len(sites), 8.0),
                            np.full(len(sites), 80.0), share)


def section_placement() -> None:
    from netpilot.optimize.ran.placement import place_fast, place_mip

    rows, records = [], []
    for n_sites, load in ((12, 1.0), (12, 3.0), (24, 3.0), (40, 4.0), (80, 6.0), (125, 8.0)):
        problem = placement_problem(n_sites, load=load)
        place_fast(problem)  # warm: the first call loads (or compiles) the Numba kernels
        fast = place_fast(problem)
        mip = place_mip(problem, time_limit=600)
        record = {"sites": n_sites, "load": load, "cells": len(problem.cells),
                  "demand_gpu_s_per_s": float((problem.rate * problem.gpu_seconds).sum()),
                  "fast_objective": fast.objective(problem), "mip_objective": mip.objective(problem),
                  "fast_seconds": fast.seconds, "mip_seconds": mip.seconds, "mip_status": mip.info["status"],
                  "fast_gpus": float(fast.gpus_on.sum()), "mip_gpus": float(mip.gpus_on.sum()),
                  "fast_unserved": float(fast.unserved(problem).sum()),
                  "mip_unserved": float(mip.unserved(problem).sum()),
                  "fast_violations": len(fast.violations(problem)), "mip_violations": len(mip.violations(problem))}
        records.append(record)
        rows.append([n_sites, f"{load:g}", f"{record['demand_gpu_s_per_s']:.1f}",
                     f"{record['mip_gpus']:g} / {record['fast_gpus']:g}",
                     f"{record['mip_unserved']:.2f} / {record['fast_unserved']:.2f}",
                     f"**{record['fast_objective'] / record['mip_objective']:.4f}**",
                     f"{mip.seconds:.2f} ({mip.info['status']})", f"{fast.seconds * 1000:.1f}",
                     f"**{mip.seconds / fast.seconds:.0f}×**", record["fast_violations"]])
    results["placement"] = records
    console.print("\n### Inference placement, EUA Melbourne CBD (125 cells, 816 users)\n")
    console.print("| edge sites | load × | GPU-s/s asked | GPUs on MIP / fast | unserved req/s MIP / fast | "
                  "fast / MIP objective | MIP s | fast ms | MIP s / fast s | fast violations |")
    console.print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        console.print("| " + " | ".join(str(c) for c in row) + " |")


def section_replacement() -> None:
    """An hour of RAN load moving the GPUs' RAN share: re-place every 2 minutes with a migration cost."""
    from dataclasses import replace

    from netpilot.optimize.ran.placement import place_fast

    problem = placement_problem(12, load=3.0)
    series = cell_load("PobleSec")[:30 * 24]
    rng = np.random.default_rng(0)
    phases = rng.integers(0, len(series) - 30, len(problem.sites))
    previous = None
    times, migrations, unserved = [], [], []
    place_fast(problem)  # warm: the first call loads (or compiles) the Numba kernels
    for t in range(30):
        ran = 0.25 + 0.6 * series[phases + t] / series.max()
        step = replace(problem, ran_share=np.asarray(ran, dtype=float), previous=previous)
        placement = place_fast(step)
        times.append(placement.seconds)
        if previous is not None:
            migrations.append(int((placement.loaded & ~previous).sum()))
        unserved.append(float(placement.unserved(step).sum()))
        previous = placement.loaded
    results["replacement"] = {"steps": 30, "ms_per_step_median": 1000 * float(np.median(times)),
                              "ms_per_step_max": 1000 * float(np.max(times)),
                              "model_loads_per_step_mean": float(np.mean(migrations)),
                              "unserved_max": float(max(unserved))}
    console.print(f"\n### Re-placement every 2 minutes as the RAN share moves (12 sites, load × 3, 30 steps)\n\n"
                  f"| ms per step (median / max) | models loaded per step (mean) | most unserved req/s | target |\n"
                  f"|---|---|---|---|\n| {1000 * np.median(times):.1f} / {1000 * np.max(times):.1f} | "
                  f"{np.mean(migrations):.2f} | {max(unserved):.2f} | ≤ 100 ms per step |")


def section_loop() -> None:
    """Both RAN planners in the loop on 2,000 cells and 40 edge sites (generator seeds 0-2: a network and its
    demand each), each shipped scenario, against a static split and placement on the same demand; decision time
    per tick (both planners, verification included). ``RAN_LOOP_TICKS`` and ``RAN_LOOP_SEEDS`` shorten it."""
    import os

    from netpilot.scenarios.ran import run_ran_scenario, shipped_scenarios
    from netpilot.telemetry.sim.airan import generate, read_llm_trace

    trace = read_llm_trace(EDGE / "azure_llm_2023")
    ticks = int(os.environ.get("RAN_LOOP_TICKS", "60"))
    seeds = [int(x) for x in os.environ.get("RAN_LOOP_SEEDS", "0,1,2").split(",")]
    records, decide = [], []
    console.print(f"\n### AI-RAN in the loop: 2,000 cells, 40 edge sites, {ticks} one-minute ticks per scenario\n")
    console.print("| seed | scenario | SLA met loop / static | SLO met loop / static | unserved requests loop / static "
                  "| GPUs powered loop / static | decide ms p50 / p99 | placement ticks | changes applied | "
                  "rolled back | unsafe | reservation misses |")
    console.print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    per_slice, per_service = [], []
    for seed in seeds:
        network, topology = generate(2000, 40, seed=seed, trace=trace)
        for name, events in shipped_scenarios(topology, ticks).items():
            report = run_ran_scenario(name, network, topology, events, ticks=ticks, seed=seed, trace=trace)
            decide += report.decide_ms[1:]
            p50, p99 = np.percentile(report.decide_ms[1:], [50, 99])
            loop, static = report.loop, report.static
            records.append({"seed": seed, "scenario": name, "loop": loop.__dict__, "static": static.__dict__,
                            "decide_ms_p50": p50, "decide_ms_p99": p99, "applied": report.changes_applied,
                            "rolled_back": report.rolled_back, "unsafe": report.unsafe,
                            "reservation_misses": report.reservation_misses,
                            "placement_ticks": report.placement_ticks})
            console.print(f"| {seed} | {name} | **{100 * loop.sla_all:.2f} %** / {100 * static.sla_all:.2f} % | "
                          f"**{100 * loop.slo_all:.2f} %** / {100 * static.slo_all:.2f} % | "
                          f"{loop.unserved_requests:,.0f} / {static.unserved_requests:,.0f} | "
                          f"{loop.gpus_powered:.1f} / {static.gpus_powered:.1f} | {p50:.1f} / {p99:.1f} | "
                          f"{report.placement_ticks} | {report.changes_applied} | {report.rolled_back} | "
                          f"{report.unsafe} | {report.reservation_misses} |")
            per_slice.append(f"{seed} {name}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in loop.sla_met.items()))
            per_service.append(f"{seed} {name}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in loop.slo_met.items()))
    p50, p99 = np.percentile(decide, [50, 99])
    results["loop"] = {"cells": 2000, "sites": 40, "ticks": ticks, "seeds": seeds, "scenarios": records,
                       "decide_ms_p50": p50, "decide_ms_p99": p99}
    console.print("\nSLA met per slice (loop, %): " + "; ".join(per_slice))
    console.print("\nSLO met per service (loop, %): " + "; ".join(per_service))
    console.print(f"\nBoth planners per tick over all runs (first tick, the initial placement, left out): "
                  f"p50 **{p50:.1f} ms**, p99 **{p99:.1f} ms** (target ≤ 100 ms p99).")


def section_loop_mip() -> None:
    """The placement the loop solves at 2,000 cells and 40 sites (its 40 cell groups, a tick's forecast with the
    margin, the RAN's forecast need reserved), by place_fast and by the MIP (HiGHS, to within 0.05 GPU), for
    several seeds and loads, and with edge-0 down: then the loop's placement is ``place_cooler`` (place_fast, and
    again under cooler caps where that reaches what it left unserved; both passes timed), and the MIP solves the
    problem it solved."""
    from netpilot.autopilot.ran import PlacementPlanner, RanSettings
    from netpilot.optimize.ran.placement import PlacementProblem, place_cooler, place_mip
    from netpilot.telemetry.sim.airan import AiRanSimulator, generate, read_llm_trace

    trace = read_llm_trace(EDGE / "azure_llm_2023")
    rows, records = [], []
    for seed, load, down in ((0, 1.0, False), (1, 1.0, False), (2, 1.5, False), (0, 1.0, True), (1, 1.0, True),
                             (2, 1.0, True)):
        _, topo = generate(2000, 40, seed=seed, trace=trace)
        sim = AiRanSimulator(topo, seed=seed, trace=trace, ai_load=load)
        demand, rate, cell_up, _ = sim.demand_now()
        settings = RanSettings()
        planner = PlacementPlanner(topo, settings)
        need = topo.ran_gpus(np.minimum(demand, topo.prbs[:, None]), cell_up) * (1 + settings.ran_margin)
        group_rate = np.zeros((planner.group_latency.shape[0], rate.shape[1]))
        np.add.at(group_rate, planner.group, rate * (1 + settings.rate_margin))
        up = np.ones(len(topo.sites), dtype=bool)
        up[0] = not down
        problem = PlacementProblem([str(g) for g in range(len(group_rate))], topo.sites, list(topo.services),
                                   group_rate, np.where(up[None, :], planner.group_latency, 1e6),
                                   np.where(up, topo.gpus, 0.0), topo.gpu_memory_gb,
                                   np.where(up, np.minimum(need / topo.gpus, 1.0), 0.0))

        place_cooler(problem, settings.min_utilisation)  # warm
        solved, fast = place_cooler(problem, settings.min_utilisation)
        fast_seconds = fast.seconds
        mip = place_mip(solved, time_limit=300)
        at_cap = place_mip(problem, time_limit=300) if solved is not problem else mip
        cooled = int((solved.caps < settings.max_utilisation - 1e-9).sum())
        ratio = fast.objective(solved) / mip.objective(solved)
        records.append({"seed": seed, "load": load, "site_down": "edge-0" if down else None,
                        "sites_cooled": cooled, "fast_objective": fast.objective(solved),
                        "mip_objective": mip.objective(solved), "fast_gpus": float(fast.gpus_on.sum()),
                        "mip_gpus": float(mip.gpus_on.sum()), "fast_seconds": fast_seconds,
                        "mip_seconds": mip.seconds, "mip_status": mip.info["status"],
                        "mip_unserved_at_cap": float(at_cap.unserved(problem).sum()),
                        "fast_violations": len(fast.violations(solved))})
        rows.append(f"| {seed} | {load:g} | {'edge-0' if down else '–'} | {cooled} | "
                    f"{float((group_rate * problem.gpu_seconds).sum()):.1f} | "
                    f"{mip.gpus_on.sum():g} / {fast.gpus_on.sum():g} | "
                    f"{float(at_cap.unserved(problem).sum()):.2f} | "
                    f"{float(mip.unserved(solved).sum()):.2f} / {float(fast.unserved(solved).sum()):.2f} | "
                    f"**{ratio:.4f}** | {mip.seconds:.2f} ({mip.info['status']}) | {1000 * fast_seconds:.1f} | "
                    f"**{mip.seconds / fast_seconds:.0f}×** | {len(fast.violations(solved))} |")
    results["loop_mip"] = records
    console.print("\n### The loop's placement against the MIP (2,000 cells in 40 groups, 40 sites)\n")
    console.print("| seed | AI load × | site down | sites cooled | GPU-s/s asked | GPUs on MIP / fast | "
                  "unserved req/s, MIP at the 80 % cap | unserved req/s MIP / fast | fast / MIP objective | MIP s | "
                  "fast ms | MIP s / fast s | fast violations |")
    console.print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        console.print(row)


def section_live() -> None:
    """The demo's live loop (bundled network, seed 1, BG-GR down at minute 20, the demo's start and a change
    database on disk) stepped back to back for ``RAN_LIVE_TICKS`` ticks (default 180), without and with the
    AI-RAN part (its 80 cells and 4 edge sites; the demo's policy: slicing approved by policy, placement waiting
    for a person): the whole tick, and the RAN part's share of it (telemetry, both planners, verification,
    workflow and commit). The first 5 ticks (compilation, first placement) are left out."""
    import os
    import tempfile

    from netpilot.autopilot.loop import settle_heap
    from netpilot.change.workflow import Policy
    from netpilot.cli.autopilot import DEMO_START
    from netpilot.model.faults import Fault
    from netpilot.model.io import load_network
    from netpilot.model.sample import bundled_network_path
    from netpilot.scenarios.live import LiveAutopilot

    ticks = int(os.environ.get("RAN_LIVE_TICKS", "180"))
    network = load_network(bundled_network_path())
    settle_heap()
    rows, records = [], {}
    for ran in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            live = LiveAutopilot(network, faults=[Fault(kind="link_down", target=["BG", "GR"], at_minute=20,
                                                        duration_minutes=120)],
                                 seed=1, start=DEMO_START, changes_db=Path(tmp) / "changes.db", ran=ran,
                                 policy=Policy(auto_approve=["set_slices"]))
            whole = []
            for _ in range(ticks):
                began = time.perf_counter()
                live.step()
                whole.append((time.perf_counter() - began) * 1000.0)
            part = list(live.ran.step_ms)[5:] if live.ran else []
            states = {}
            for change in live.changes.list():
                kind = change.intents[0]["intent"] if change.intents else "?"
                states.setdefault(kind, {}).setdefault(change.state, 0)
                states[kind][change.state] += 1
            live.changes.close()
        tick = np.percentile(whole[5:], [50, 99])
        ran_ms = np.percentile(part, [50, 99]) if part else [float("nan")] * 2
        records["with RAN" if ran else "without RAN"] = {"tick_ms": list(tick), "ran_ms": list(ran_ms),
                                                         "changes": states, "ticks": ticks}
        rows.append(f"| {'with' if ran else 'without'} | {tick[0]:.1f} / {tick[1]:.1f} | "
                    + (f"{ran_ms[0]:.1f} / {ran_ms[1]:.1f}" if part else "–") + f" | {states} |")
    results["live"] = records
    console.print(f"\n### The live demo loop with and without the AI-RAN part ({ticks} ticks)\n")
    console.print("| AI-RAN part | whole tick ms p50 / p99 | RAN part ms p50 / p99 | changes by kind and state |")
    console.print("|---|---|---|---|")
    for row in rows:
        console.print(row)


SECTIONS = {"slicing": section_slicing, "speed": section_speed, "placement": section_placement,
            "replacement": section_replacement, "loop": section_loop, "loop_mip": section_loop_mip,
            "live": section_live}


def main(argv: list[str]) -> None:
    run("ran", SECTIONS, argv or list(SECTIONS), results)


if __name__ == "__main__":
    main(sys.argv[1:])
