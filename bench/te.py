"""Traffic-engineering benchmarks on every staged topology and traffic matrix (figures go to BENCHMARKS.md).

    python bench/te.py                 # every section
    python bench/te.py repetita kdl    # named sections: repetita, cli, teal, kdl, sndlib, figret, failures, flow
    python bench/te.py gpu             # the PyTorch backend (needs the [gpu] extra; CUDA when present)

Prints Markdown tables and writes bench/results/te.json. Ratios compare methods measured in the same run on
the same machine, which is what a shared, noisy machine allows.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from _results import run
from netpilot.model.demands import gravity_matrix
from netpilot.model.formats import attach_demands, import_demands, import_network, read_demand_npz
from netpilot.optimize.te.failures import evaluate_failures, failure_groups, reoptimise_failures
from netpilot.optimize.te.fast import solve_fast, solve_fast_flow
from netpilot.optimize.te.grow import solve_growing
from netpilot.optimize.te.igp import hop_metrics, inverse_capacity_metrics, optimise_metrics, routing_from_metrics
from netpilot.optimize.te.lp import solve_lp, unrestricted_mlu
from netpilot.optimize.te.problem import build_problem, problem_from_pairs

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "te"
REPETITA = SHARED / "repetita"
console = Console(width=250, soft_wrap=True)
results: dict[str, object] = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                              "python": platform.python_version()}


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    console.print(f"\n### {title}\n")
    console.print("| " + " | ".join(header) + " |")
    console.print("|" + "---|" * len(header))
    for row in rows:
        console.print("| " + " | ".join(str(c) for c in row) + " |")


def repetita_instances():
    graphs = sorted(REPETITA.rglob("*.graph"), key=lambda p: -p.stat().st_size)
    for graph in graphs:
        demands = sorted(graph.parent.glob(f"{graph.stem}.*.demands"))[0]
        network = import_network(graph)
        yield graph.stem, attach_demands(network, import_demands(demands, network), source=demands)


def section_repetita() -> None:
    rows, records = [], []
    instances = list(repetita_instances())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Repetita", total=len(instances))
        for name, network in instances:
            progress.update(task, description=f"Repetita {name}")
            problem, path_seconds = timed(build_problem, network, k=4)
            lp = solve_lp(problem, time_limit=600)
            fast, fast_seconds = timed(solve_fast, problem)
            big = problem.paths.n_pairs > 50_000
            if big:
                optimum, mcf_seconds = float("nan"), float("nan")
            else:
                (optimum, mcf_seconds) = unrestricted_mlu(problem, time_limit=600)
            grown, grow_seconds = timed(solve_growing, problem,
                                        lambda p, **kw: solve_fast(p, **kw), warm=True, margin=0.05)
            hop = routing_from_metrics(problem, hop_metrics(problem.arrays)).mlu
            inverse = routing_from_metrics(problem, inverse_capacity_metrics(problem.arrays)).mlu
            igp = optimise_metrics(problem, start=problem.arrays.metric, time_limit=10.0, max_evaluations=10_000)
            record = {
                "topology": name, "nodes": problem.arrays.n_nodes, "links": problem.arrays.n_links,
                "pairs": problem.paths.n_pairs, "paths": problem.paths.n_paths, "path_seconds": path_seconds,
                "lp_mlu": lp.mlu, "lp_seconds": lp.solve_seconds, "fast_mlu": fast.mlu, "fast_seconds": fast_seconds,
                "fast_iterations": fast.iterations, "fast_certified_gap": fast.gap, "mcf_mlu": optimum,
                "mcf_seconds": mcf_seconds, "grown_mlu": grown.mlu, "grown_seconds": grow_seconds,
                "grown_paths_added": grown.info["paths_added"], "grown_unrestricted_bound":
                    grown.info["unrestricted_bound"], "igp_hop_mlu": hop, "igp_inverse_capacity_mlu": inverse,
                "igp_search_mlu": igp.mlu, "igp_evaluations": igp.info["evaluations"],
            }
            records.append(record)
            reference = optimum if np.isfinite(optimum) else grown.info["unrestricted_bound"]
            rows.append([name, record["nodes"], record["pairs"], f"{lp.mlu:.4f}", f"{lp.solve_seconds:.2f}",
                         f"{fast.mlu:.4f}", f"{fast_seconds * 1000:.0f}", f"**{fast.mlu / lp.mlu:.4f}**",
                         f"{100 * fast.gap:.2f} %", f"**{lp.solve_seconds / fast_seconds:.1f}×**",
                         f"{optimum:.4f}" if np.isfinite(optimum) else "—", f"{lp.mlu / reference:.3f}",
                         f"{grown.mlu / reference:.4f}", f"{hop / lp.mlu:.3f}", f"{inverse / lp.mlu:.3f}",
                         f"{igp.mlu / lp.mlu:.3f}"])
            progress.advance(task)
    results["repetita"] = records
    table("Repetita (k = 4 edge-disjoint min-hop paths, matrix .0000)",
          ["topology", "nodes", "pairs", "LP MLU", "LP s", "fast MLU", "fast ms", "fast/LP", "certified gap",
           "LP s / fast s", "MCF MLU", "k-path LP / MCF", "fast+grow / MCF", "IGP hop / LP", "IGP inv-cap / LP",
           "IGP search / LP"], rows)


def section_teal() -> None:
    network = import_network(SHARED / "teal" / "topologies" / "B4.json")
    series = import_demands(SHARED / "teal" / "derived" / "B4_real_tms_36x12x12.npy", network)
    ratios, lp_times, fast_times = [], [], []
    for t in range(len(series)):
        problem = build_problem(attach_demands(network, series, matrix=t), k=4)
        lp = solve_lp(problem)
        fast, seconds = timed(solve_fast, problem)
        ratios.append(fast.mlu / lp.mlu)
        lp_times.append(lp.solve_seconds)
        fast_times.append(seconds)
    results["teal_b4"] = {"matrices": len(series), "max_ratio": max(ratios), "lp_ms_median": 1000 * np.median(lp_times),
                          "fast_ms_median": 1000 * np.median(fast_times)}
    table("Teal B4, 36 real matrices", ["matrices", "max fast/LP", "LP ms (median)", "fast ms (median)"],
          [[len(series), f"{max(ratios):.4f}", f"{1000 * np.median(lp_times):.1f}",
            f"{1000 * np.median(fast_times):.1f}"]])


def _gravity_problem(name: str, seed: int, noise: float = 0.5):
    network = import_network(SHARED / "teal" / "topologies" / f"{name}.json")
    arrays = network.arrays()
    capacity_out = np.bincount(arrays.src, weights=arrays.capacity, minlength=arrays.n_nodes)
    matrix = gravity_matrix(capacity_out, noise=noise, seed=seed)
    i, j = np.nonzero(matrix)
    problem = problem_from_pairs(arrays, np.stack([i, j], axis=1), matrix[i, j], k=4)
    # Scale so that routing everything on its shortest path would load the busiest link to exactly 100 %.
    shortest = np.zeros(problem.paths.n_paths)
    shortest[problem.pair_starts] = 1.0
    return problem.with_volume(problem.volume / problem.mlu(shortest))


def section_kdl() -> None:
    rows, records = [], []
    problem, path_seconds = timed(_gravity_problem, "Kdl", 0)
    previous = None
    for seed in range(3):
        if seed:
            problem = problem.with_volume(_gravity_problem("Kdl", seed).volume)
        fast, seconds = timed(solve_fast, problem, time_limit=60)
        warm, warm_seconds = (None, float("nan")) if previous is None else timed(solve_fast, problem, x0=previous)
        previous = fast.x
        records.append({"seed": seed, "pairs": problem.paths.n_pairs, "paths": problem.paths.n_paths,
                        "fast_mlu": fast.mlu, "fast_seconds": seconds, "fast_gap": fast.gap,
                        "iterations": fast.iterations, "warm_seconds": warm_seconds,
                        "warm_mlu": None if warm is None else warm.mlu})
        rows.append([seed, problem.paths.n_pairs, problem.paths.n_paths, f"{fast.mlu:.4f}", f"{seconds:.2f}",
                     f"{100 * fast.gap:.2f} %", fast.iterations,
                     "—" if warm is None else f"{warm_seconds:.2f} ({warm.mlu:.4f})"])
    limit = 600
    try:
        lp = solve_lp(problem, time_limit=limit)
        lp_text = f"LP {lp.mlu:.4f} in {lp.solve_seconds:.1f} s → fast/LP {records[-1]['fast_mlu'] / lp.mlu:.4f}"
        lp_record = {"lp_mlu_last": lp.mlu, "lp_seconds_last": lp.solve_seconds}
    except RuntimeError as exc:
        lp_text = f"HiGHS found no solution within {limit} s ({exc})"
        lp_record = {"lp_error": str(exc), "lp_time_limit": limit}
    results["kdl"] = {"path_seconds_first_run": path_seconds, "matrices": records, **lp_record}
    rows[-1].append(lp_text)
    table("Kdl (754 nodes, 1,790 links), gravity matrices (capacity-weighted, log-normal noise 0.5, scaled so "
          "shortest-path MLU = 1)", ["seed", "pairs", "paths", "fast MLU", "fast s", "certified gap", "iterations",
                                    "warm s (MLU)", "LP on the last matrix"], rows)
    console.print(f"fast-method records: {json.dumps(records)}")


def section_sndlib() -> None:
    network = import_network(SHARED / "sndlib" / "topologies" / "abilene.xml")
    series = read_demand_npz(SHARED / "sndlib" / "derived" / "abilene_sndlib_5min.npz")
    arrays = network.arrays()
    index = np.array([arrays.index[n] for n in series.nodes])
    volume = series.volume.astype(float)
    nonzero = volume.sum(axis=0) > 0
    i, j = np.nonzero(nonzero)
    pairs = np.stack([index[i], index[j]], axis=1)
    per_matrix = volume[:, i, j]
    problem = problem_from_pairs(arrays, pairs, per_matrix.max(axis=0), k=4)
    x = None
    times, mlus = [], []
    started = time.perf_counter()
    for t in range(len(series)):
        step = problem.with_volume(np.maximum(per_matrix[t], 0.0))
        routing, seconds = timed(solve_fast, step, start=x, tolerance=0.01)
        x = routing
        times.append(seconds)
        mlus.append(routing.mlu)
    total = time.perf_counter() - started
    sample = list(range(0, len(series), 97))
    ratios = [mlus[t] / solve_lp(problem.with_volume(np.maximum(per_matrix[t], 0.0))).mlu for t in sample]
    results["sndlib_abilene"] = {"matrices": len(series), "total_seconds": total,
                                 "ms_per_matrix_median": 1000 * np.median(times),
                                 "ms_per_matrix_p99": 1000 * np.percentile(times, 99),
                                 "max_ratio_to_lp_sampled": max(ratios), "sampled": len(sample)}
    table("SNDlib Abilene, 4,896 real 5-minute matrices, each warm-started from the previous answer",
          ["matrices", "total s", "ms/matrix median", "ms/matrix p99", f"max fast/LP ({len(sample)} sampled)"],
          [[len(series), f"{total:.2f}", f"{1000 * np.median(times):.2f}", f"{1000 * np.percentile(times, 99):.2f}",
            f"{max(ratios):.4f}"]])


def section_figret() -> None:
    base = SHARED / "figret" / "GEANT"
    network = import_network(base / "GEANT.json", unit="bit/s")
    series = import_demands(base / "test" / "7.hist", network, unit="bit/s")
    arrays = network.arrays()
    index = np.array([arrays.index[n] for n in series.nodes])
    volume = series.volume.astype(float)
    i, j = np.nonzero(volume.sum(axis=0) > 0)
    per_matrix = volume[:, i, j]
    problem = problem_from_pairs(arrays, np.stack([index[i], index[j]], axis=1), per_matrix.max(axis=0), k=4)
    ratios_opt, ratios_lp, times = [], [], []
    x = None
    for t in range(len(series)):
        step = problem.with_volume(per_matrix[t])
        routing, seconds = timed(solve_fast, step, start=x)
        x = routing
        times.append(seconds)
        ratios_opt.append(routing.mlu / series.optimal_mlu[t])
        if t % 25 == 0:
            ratios_lp.append(routing.mlu / solve_lp(step).mlu)
    results["figret_geant"] = {"matrices": len(series), "median_ratio_to_published_opt": float(np.median(ratios_opt)),
                               "max_ratio_to_published_opt": float(max(ratios_opt)),
                               "max_ratio_to_lp_sampled": float(max(ratios_lp)),
                               "ms_per_matrix_median": 1000 * float(np.median(times))}
    table("FIGRET/DOTE GEANT (22 nodes), 677 real matrices with published optimal MLU (unrestricted)",
          ["matrices", "fast / published opt (median)", "(max)", "max fast / k-path LP (sampled)",
           "ms/matrix median"],
          [[len(series), f"{np.median(ratios_opt):.4f}", f"{max(ratios_opt):.4f}", f"{max(ratios_lp):.4f}",
            f"{1000 * np.median(times):.2f}"]])


def section_failures() -> None:
    """Every single failure of Cogentco re-optimised: each scenario solved over the whole network, warm-started
    (the method before issue 31, kept here as the baseline), against ``reoptimise_failures`` (certified reroutes
    kept, the rest solved) on one and two processes, in the same run. ``NETPILOT_BENCH_SHORT=1``: directed links
    only (the issue's target); ``NETPILOT_BENCH_TOUCHED=1`` adds the touched-pairs scope."""
    network = dict(repetita_instances())["Cogentco"]
    problem = build_problem(network, k=4)
    routing = solve_fast(problem)
    rows = []
    modes = (("both directions (fibre cut)", failure_groups(problem.arrays)),
             ("each directed link", failure_groups(problem.arrays, bidirectional=False)))
    for label, groups in modes[-1:] if os.environ.get("NETPILOT_BENCH_SHORT") else modes:
        moved = evaluate_failures(routing, groups)
        scenarios = moved.failed
        started = time.perf_counter()
        whole = np.array([solve_fast(problem, start=routing, failed_links=f, tolerance=0.01).mlu for f in scenarios])
        whole_seconds = time.perf_counter() - started
        report, answers = reoptimise_failures(routing, groups, workers=1)
        parallel, _ = reoptimise_failures(routing, groups, workers=2)
        touched, _ = reoptimise_failures(routing, groups, workers=1, scope="touched") \
            if os.environ.get("NETPILOT_BENCH_TOUCHED") else (None, None)
        results.setdefault("failures_cogentco", []).append({
            "scenarios": len(scenarios), "mode": label, "evaluate_seconds": moved.seconds,
            "whole_network_seconds": whole_seconds, "restricted_seconds": report.seconds,
            "restricted_two_processes_seconds": parallel.seconds,
            "touched_scope_seconds": None if touched is None else touched.seconds,
            "worst_mlu_rerouted": float(moved.mlu.max()), "worst_mlu_whole": float(whole.max()),
            "worst_mlu_restricted": float(report.mlu.max()),
            "restricted_over_whole_max": float((report.mlu / whole).max()),
            "restricted_over_whole_median": float(np.median(report.mlu / whole)),
            "kept_reroute_certified": int(sum(a.moved_pairs == 0 for a in answers)),
            "moved_pairs_median": float(np.median([a.moved_pairs for a in answers]))})
        rows.append([label, len(scenarios), f"{moved.seconds:.2f}", f"{whole_seconds:.2f}", f"{report.seconds:.2f}",
                     f"{parallel.seconds:.2f}", f"{moved.mlu.max():.3f}", f"{whole.max():.3f}",
                     f"{report.mlu.max():.3f}",
                     f"{np.median(report.mlu / whole):.4f} / {(report.mlu / whole).max():.4f}",
                     int(sum(a.moved_pairs == 0 for a in answers))])
    table("Cogentco, every single failure re-optimised", [
        "failure unit", "scenarios", "evaluate s", "whole network s (before)", "now s, 1 process",
        "now s, 2 processes", "worst MLU rerouted", "worst MLU before", "worst MLU now",
        "now / before MLU median / max", "reroutes kept (certified)"], rows)


def section_flow() -> None:
    rows, records = [], []
    for name, network in repetita_instances():
        if name not in ("Cogentco", "UsCarrier", "GtsCe", "Geant2012"):
            continue
        problem = build_problem(network, k=4)
        problem = problem.with_volume(problem.volume * 1.5)  # oversubscribed, so not everything fits
        lp = solve_lp(problem, "flow", time_limit=600)
        fast, seconds = timed(solve_fast_flow, problem)
        records.append({"topology": name, "lp_flow": lp.total_flow, "lp_seconds": lp.solve_seconds,
                        "fast_flow": fast.total_flow, "fast_seconds": seconds, "fast_certified_gap": fast.gap})
        rows.append([name, f"{lp.total_flow:.5g}", f"{lp.solve_seconds:.2f}", f"{fast.total_flow:.5g}",
                     f"{seconds:.2f}", f"{fast.total_flow / lp.total_flow:.4f}", f"{100 * fast.gap:.2f} %",
                     f"{lp.solve_seconds / seconds:.1f}×"])
    results["flow"] = records
    table("Total-flow objective (Teal/NCFlow/POP's), matrix .0000 × 1.5", [
        "topology", "LP flow", "LP s", "fast flow", "fast s", "fast/LP", "certified gap", "LP s / fast s"], rows)


def section_gpu() -> None:
    """The PyTorch backend (CUDA when present, else the CPU build) against the LP, same run."""
    from netpilot.optimize.te.fast_torch import TorchInstance, default_device, solve_fast_torch

    device = default_device()
    rows, records = [], []
    for name, network in repetita_instances():
        if name not in ("rf1239_real_hard", "Cogentco", "UsCarrier", "GtsCe", "TataNld", "Deltacom"):
            continue
        problem = build_problem(network, k=4)
        lp = solve_lp(problem)
        instance = TorchInstance(problem, device)
        solve_fast_torch(problem, instance=instance, max_iterations=3)  # warm-up: kernels, allocator
        routing, seconds = timed(solve_fast_torch, problem, instance=instance)
        records.append({"topology": name, "device": device, "lp_mlu": lp.mlu, "lp_seconds": lp.solve_seconds,
                        "torch_mlu": routing.mlu, "torch_seconds": seconds, "iterations": routing.iterations,
                        "certified_gap": routing.gap})
        rows.append([name, device, f"{lp.solve_seconds:.2f}", f"{seconds * 1000:.0f}", routing.iterations,
                     f"**{routing.mlu / lp.mlu:.4f}**", f"{100 * routing.gap:.2f} %",
                     f"**{lp.solve_seconds / seconds:.1f}×**"])
    results["gpu"] = records
    table(f"PyTorch backend on {device}", ["topology", "device", "LP s", "torch ms", "iterations", "torch/LP",
                                           "certified gap", "LP s / torch s"], rows)


def _cli_matrix(graph: Path, seed: int, out: Path) -> np.ndarray:
    """A gravity matrix for ``graph`` no earlier run has seen (log-normal noise, seed ``seed``), scaled so that
    shortest-path routing loads the busiest link to 100 %; saved as ``out`` (.npy, the CLI reads it)."""
    arrays = import_network(graph).arrays()
    matrix = gravity_matrix(np.bincount(arrays.src, weights=arrays.capacity, minlength=arrays.n_nodes),
                            noise=0.5, seed=seed)
    i, j = np.nonzero(matrix)
    problem = problem_from_pairs(arrays, np.stack([i, j], axis=1), matrix[i, j], k=1, cache_dir="")
    shortest = np.zeros(problem.paths.n_paths)
    shortest[problem.pair_starts] = 1.0
    matrix = matrix / problem.mlu(shortest)
    np.save(out, matrix)
    return matrix


def section_cli(rounds: int = 3) -> None:
    """`netpilot te solve` as a user runs it, on Cogentco with a gravity matrix it has not seen: the default
    (fast, growing paths until certified within 1 %) against `--method lp`, each with a cold path cache (first
    call) and a warm one (cached call), alternating, ``rounds`` times; wall time of the process beside the
    solver-only time from the document."""
    import subprocess
    import tempfile

    graph = REPETITA / "2016TopologyZooUCL_inverseCapacity" / "Cogentco.graph"
    netpilot = Path(sys.executable).with_name("netpilot")
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        matrix_file = Path(tmp) / "gravity.npy"
        matrix = _cli_matrix(graph, 20261206, matrix_file)
        arrays = import_network(graph).arrays()
        i, j = np.nonzero(matrix)
        problem = problem_from_pairs(arrays, np.stack([i, j], axis=1), matrix[i, j], k=4, cache_dir="")
        optimum, mcf_seconds = unrestricted_mlu(problem, time_limit=900)
        variants = {"default": [], "--method lp": ["--method", "lp"]}
        for round_ in range(rounds):
            for label, extra in variants.items():
                cache = Path(tmp) / f"cache-{label.replace(' ', '')}-{round_}"
                for call in ("first call", "cached call"):
                    out = Path(tmp) / "out.json"
                    env = {**os.environ, "NETPILOT_CACHE": str(cache)}
                    started = time.perf_counter()
                    subprocess.run([str(netpilot), "te", "solve", "--network", str(graph), "--demands",
                                    str(matrix_file), "--json", str(out), *extra], check=True, env=env,
                                   stdout=subprocess.DEVNULL)
                    wall = time.perf_counter() - started
                    doc = json.loads(out.read_text())
                    runs.setdefault(f"{label}, {call}", []).append(
                        {"wall_s": wall, "solver_s": doc["solve_seconds"], "mlu": doc["mlu"],
                         "paths_added": doc.get("paths_added"), "paths_reused": doc.get("paths_reused")})
    rows, summary = [], {}
    lp_wall = {call: float(np.median([r["wall_s"] for r in runs[f"--method lp, {call}"]]))
               for call in ("first call", "cached call")}
    for key, records in runs.items():
        wall = float(np.median([r["wall_s"] for r in records]))
        solver = float(np.median([r["solver_s"] for r in records]))
        mlu = records[-1]["mlu"]
        call = key.split(", ")[1]
        summary[key] = {"runs": records, "wall_s_median": wall, "solver_s_median": solver, "mlu": mlu,
                        "mlu_over_optimum": mlu / optimum, "lp_wall_over_this": lp_wall[call] / wall}
        rows.append([key, f"{wall:.2f}", f"{solver:.2f}", f"{mlu:.4f}", f"**{mlu / optimum:.4f}**",
                     f"**{lp_wall[call] / wall:.2f}×**", records[-1]["paths_added"] or 0,
                     records[-1]["paths_reused"] or 0])
    results["cli_cogentco"] = {"optimum_mlu": optimum, "mcf_lp_seconds": mcf_seconds, "rounds": rounds,
                               "calls": summary}
    table(f"`netpilot te solve`, Cogentco, unseen gravity matrix, median of {rounds} alternating rounds "
          f"(unrestricted optimum {optimum:.4f})",
          ["command, call", "wall s", "solver s", "MLU", "MLU / optimum", "LP wall / this wall", "paths added",
           "paths reused"], rows)


SECTIONS = {"repetita": section_repetita, "cli": section_cli,
            "teal": section_teal, "sndlib": section_sndlib, "figret": section_figret,
            "failures": section_failures, "flow": section_flow, "kdl": section_kdl,
            "gpu": section_gpu}


def main(argv: list[str]) -> None:
    if not SHARED.is_dir():
        raise SystemExit(f"staged data not found at {SHARED}")
    run("te", SECTIONS, argv or [name for name in SECTIONS if name != "gpu"], results)


if __name__ == "__main__":
    main(sys.argv[1:])
