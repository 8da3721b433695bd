"""Safe-change benchmarks: verification of a change on the twin, with the whole single-failure what-if; a
change of explicit paths verified by routing again only the pairs it touches; and the routing kernels compiled
with Numba against their NumPy versions (the ``fast`` extra).

    python bench/change.py [whatif] [policies] [kernels]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from rich.console import Console

from _results import run
from netpilot.change.intents import SetMetric, apply_intents
from netpilot.change.verify import VerificationSettings, _state, failure_scenarios, verify_change, what_if
from netpilot.model.formats import attach_demands, import_demands, import_network

REPETITA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "te" / "repetita"
console = Console(width=250, soft_wrap=True)
results: dict[str, object] = {}


def section_whatif() -> None:
    rows, records = [], []
    for folder, name in (("2016RocketFuelUCL", "rf1239_real_hard"), ("2016TopologyZooUCL_inverseCapacity", "Cogentco"),
                         ("2016TopologyZooUCL_inverseCapacity", "UsCarrier")):
        graph = REPETITA / folder / f"{name}.graph"
        network = import_network(graph)
        network = attach_demands(network, import_demands(REPETITA / folder / f"{name}.0000.demands", network))
        pairs, volume = network.arrays().demand_pairs()
        state = _state(network, pairs, volume)
        scenarios = failure_scenarios(state.arrays)
        timings = []
        for _ in range(5):  # shared 2-core machine: the median of five runs
            started = time.perf_counter()
            what_if(state.arrays, state.routing, volume, scenarios)
            timings.append(time.perf_counter() - started)
        seconds = statistics.median(timings)
        link = network.links[0]
        after = apply_intents(network, [SetMetric(intent="set_metric", source=link.source, target=link.target,
                                                  metric=min(65535, link.metric * 2))])
        report = verify_change(network, after)
        records.append({"topology": name, "nodes": len(network.nodes), "links": len(network.links),
                        "scenarios": len(scenarios), "whatif_seconds": seconds, "whatif_runs": timings,
                        "full_verification_seconds": report.seconds})
        rows.append(f"| {name} | {len(network.nodes)} | {len(network.links)} | {len(scenarios)} | {seconds:.2f} | "
                    f"{report.seconds:.2f} | ≤ 1 s (what-if) |")
    results["whatif"] = records
    console.print("\n### Verification with every single link failure (IGP reconvergence, ECMP)\n")
    console.print("| topology | nodes | links | failure scenarios | what-if s (median of 5) | whole verification s "
                  "(before and "
                  "after) | target |\n|---|---|---|---|---|---|---|")
    for row in rows:
        console.print(row)


def section_policies() -> None:
    """A change of explicit paths on the autopilot's 124-node network, verified as the loop does (the before
    state's failures cached): every pair routed again under each failure, against only the pairs it touches."""
    import numpy as np

    from netpilot.change.intents import SetPolicies
    from netpilot.change.verify import WhatIfCache, _failure_outcomes, _failure_outcomes_after, _failure_results
    from netpilot.model.io import load_network
    from netpilot.model.policies import compile_policies, to_policies
    from netpilot.model.sample import bundled_network_path
    from netpilot.optimize.te.tactical import plan_tactical
    from netpilot.telemetry.sim.simulator import Simulator

    network = load_network(bundled_network_path())
    sim = Simulator(network, noise=0.0)
    arrays = network.arrays()
    expected = sim.expected()
    capacity = np.where(expected.capacity > 0, expected.capacity, np.inf)
    volume = expected.volume * 1.3  # the busy hour, raised until the IGP overloads it
    first = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, capacity, max_pairs=24)
    before = apply_intents(network, [SetPolicies(intent="set_policies", policies=to_policies(arrays, first.paths))])
    second = plan_tactical(arrays, sim.pairs, volume * 1.1, arrays.metric, arrays.up, capacity, max_pairs=24,
                           current=compile_policies(arrays, before.policies))
    after = apply_intents(before, [SetPolicies(intent="set_policies", policies=to_policies(arrays, second.paths))])
    now_before, now_after = _state(before, sim.pairs, volume), _state(after, sim.pairs, volume)
    scenarios = failure_scenarios(now_after.arrays)
    cached = _failure_results(now_before)
    every, touched = [], []
    for _ in range(7):  # alternating, the median of seven each
        started = time.perf_counter()
        _failure_outcomes(now_after, scenarios)
        every.append(time.perf_counter() - started)
        started = time.perf_counter()
        _failure_outcomes_after(now_before, now_after, cached, scenarios)
        touched.append(time.perf_counter() - started)
    cache = WhatIfCache()
    cache.baseline(before, sim.pairs, volume)
    whole = []
    for _ in range(7):
        started = time.perf_counter()
        verify_change(before, after, VerificationSettings(failure_share=0.01), demand=(sim.pairs, volume),
                      cache=cache)
        whole.append(time.perf_counter() - started)
    record = {"pairs": len(sim.pairs), "policies_before": len(before.policies), "policies_after": len(after.policies),
              "scenarios": len(scenarios), "every_pair_ms": 1000 * statistics.median(every),
              "touched_pairs_ms": 1000 * statistics.median(touched),
              "verification_ms": 1000 * statistics.median(whole)}
    results["policies"] = record
    console.print("\n### A change of explicit paths, verified with the before state cached (the autopilot's case)\n")
    console.print("| network | pairs | policies before / after | failure scenarios | after-state what-if, every pair "
                  "(ms) | touched pairs only (ms) | whole verification (ms) |\n|---|---|---|---|---|---|---|")
    console.print(f"| bundled (124 nodes) | {record['pairs']} | {record['policies_before']} / "
                  f"{record['policies_after']} | {record['scenarios']} | {record['every_pair_ms']:.1f} | "
                  f"{record['touched_pairs_ms']:.1f} | {record['verification_ms']:.1f} |")


def section_kernels() -> None:
    """Each routing kernel, NumPy and compiled alternating in one process (median of nine each), on the
    autopilot's 124-node network with 24 pairs on explicit paths and on the largest staged backbone."""
    from netpilot.change.intents import SetPolicies
    from netpilot.model import kernels
    from netpilot.model.io import load_network
    from netpilot.model.policies import to_policies
    from netpilot.model.sample import bundled_network_path
    from netpilot.optimize.te.tactical import plan_tactical
    from netpilot.telemetry.sim.simulator import Simulator

    if not kernels.AVAILABLE:
        console.print("numba is not installed (pip install netpilot[fast]): nothing to compare")
        return
    kernels.warm_up()
    bundled = load_network(bundled_network_path())
    sim = Simulator(bundled, noise=0.0)
    arrays = bundled.arrays()
    volume = sim.expected().volume * 1.3
    plan = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, arrays.capacity, max_pairs=24)
    with_paths = apply_intents(bundled, [SetPolicies(intent="set_policies", policies=to_policies(arrays, plan.paths))])
    folder = REPETITA / "2016RocketFuelUCL"
    backbone = import_network(folder / "rf1239_real_hard.graph")
    backbone = attach_demands(backbone, import_demands(folder / "rf1239_real_hard.0000.demands", backbone))
    records = _time_kernels("bundled, 24 pairs on paths", with_paths, sim.pairs, volume) + \
        _time_kernels("rf1239 (RocketFuel)", backbone, *backbone.arrays().demand_pairs())
    results["kernels"] = records
    console.print("\n### Routing kernels: NumPy against Numba (`fast` extra), alternating in one process\n")
    console.print("| network | nodes | pairs | work | NumPy ms | Numba ms | NumPy / Numba |\n"
                  "|---|---|---|---|---|---|---|")
    for r in records:
        console.print(f"| {r['network']} | {r['nodes']} | {r['pairs']} | {r['work']} | {r['numpy_ms']:.1f} | "
                      f"{r['numba_ms']:.1f} | {r['ratio']:.1f}× |")


def _time_kernels(name: str, network, pairs, demand) -> list[dict]:
    from netpilot.model.routing import ecmp_flows

    state = _state(network, pairs, demand)
    scenarios = failure_scenarios(state.arrays)
    a = state.arrays
    work = {
        "ECMP routing of every pair": lambda compiled: ecmp_flows(a, a.metric, pairs, demand, compiled=compiled),
        "routing matrix (links × pairs)": lambda compiled: ecmp_flows(
            a, a.metric, pairs, demand, compiled=compiled).routing_matrix(compiled=compiled),
        "what-if, every single failure": lambda compiled: what_if(a, state.routing, state.igp_volume, scenarios,
                                                                  compiled=compiled),
        "verification baseline (what-if, paths moved, fallbacks)": lambda compiled: _baseline(state, compiled),
    }
    records = []
    for label, job in work.items():
        timings = {False: [], True: []}
        for _ in range(9):
            for compiled in (False, True):
                started = time.perf_counter()
                job(compiled)
                timings[compiled].append(time.perf_counter() - started)
        numpy_ms, numba_ms = (1000 * statistics.median(timings[c]) for c in (False, True))
        records.append({"network": name, "nodes": a.n_nodes, "pairs": len(pairs), "work": label,
                        "numpy_ms": numpy_ms, "numba_ms": numba_ms, "ratio": numpy_ms / numba_ms})
    return records


def _baseline(state, compiled: bool) -> None:
    """The verification baseline with the kernels on or off (the module's switch, as an uninstalled Numba
    leaves it)."""
    from netpilot.change.verify import _failure_results
    from netpilot.model import kernels

    available = kernels.AVAILABLE
    kernels.AVAILABLE = compiled
    try:
        _failure_results(state)
    finally:
        kernels.AVAILABLE = available


SECTIONS = {"whatif": section_whatif, "policies": section_policies, "kernels": section_kernels}

if __name__ == "__main__":
    run("change", SECTIONS, sys.argv[1:] or list(SECTIONS), results)
