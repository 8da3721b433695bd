"""Safe-change benchmarks: verification of a change on the twin, with the whole single-failure what-if.

    python bench/change.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from rich.console import Console

from _results import run
from netpilot.change.intents import SetMetric, apply_intents
from netpilot.change.verify import _state, failure_scenarios, verify_change, what_if
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


SECTIONS = {"whatif": section_whatif}

if __name__ == "__main__":
    run("change", SECTIONS, sys.argv[1:] or list(SECTIONS), results)
