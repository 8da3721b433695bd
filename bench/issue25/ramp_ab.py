"""What two versions of the loop do on ramp-only days (no fault; shortest paths cross into overload half-way
through): per run the first overloaded minute under static routing, the minutes the loop applied changes, whether
the first came before that minute (pre-emptive), the overload left, false incidents and unsafe changes. No oracle,
so it is much cheaper than `bench/suite.py`; decisions are deterministic, so the versions need not alternate.

    python bench/issue25/ramp_ab.py run OUT.jsonl TOPOLOGY:LOAD:SEED [...]      # the netpilot on PYTHONPATH
    python bench/issue25/ramp_ab.py compare BEFORE.jsonl AFTER.jsonl

``run ... --options key=value,...`` sets the loop's settings by name (``expected_congestion_loss=true``).

The ramp-only scenario of TOPOLOGY:LOAD:SEED (1.5 hours) is generated as `bench/suite.py` generates it under
build/suite/ when missing. ``run`` appends to OUT; ``compare`` takes the last row of a scenario. Pre-emptive is
judged as `bench/suite.py` judges it (`pre_emptive`); a change applied and later rolled back counts (it was applied
in time). Each version replays static routing too (a few seconds to a minute a run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _ab import main, read_rows


def run(out: Path, specs: list[str], options: dict[str, Any]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import suite  # bench/suite.py: the suite's topologies and scenario files
    from netpilot.scenarios.scenario import RunTrace, load_scenario, run_scenario, scenario_network

    by_name = {t.name: t for t in suite.topologies()}
    with out.open("a") as sink:
        for spec in specs:
            name, load, seed = spec.split(":")
            path = suite.prepare_scenario(by_name[name], float(load), int(seed), 1.5, ramp_only=True)
            scenario = load_scenario(path)
            network = scenario_network(scenario)
            static_trace = RunTrace()
            static = run_scenario(scenario, autopilot=False, network=network, trace=static_trace)
            first_over = static_trace.first_overloaded_minute(scenario.step_seconds)
            result = run_scenario(scenario, network=network, options=options)
            applied = result["applied_minutes"]
            row = {"scenario": spec, "static_gbit": round(static["overload_traffic_gbit"], 3),
                   "overload_gbit": round(result["overload_traffic_gbit"], 3),
                   "first_overloaded_minute": first_over, "applied_minutes": applied,
                   "preemptive": suite.pre_emptive(applied, first_over),
                   "false_incidents": result["false_incidents"], "applied": result["changes_applied"],
                   "unsafe": result["unsafe_changes_applied"],
                   "p99_ms": round(result["decision_latency_ms"]["p99"], 1)}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            print(json.dumps(row), flush=True)


def compare(before: Path, after: Path) -> None:
    rows = [read_rows(before), read_rows(after)]
    common = [s for s in rows[0] if s in rows[1]]
    for s in common:
        b, a = rows[0][s], rows[1][s]
        first = [min(r["applied_minutes"], default=None) for r in (b, a)]
        print(f"{s}: first overload {b['first_overloaded_minute']}, first change {first[0]} -> {first[1]}; "
              f"overload {b['overload_gbit']} -> {a['overload_gbit']} (static {b['static_gbit']}); "
              f"false {b['false_incidents']} -> {a['false_incidents']}; unsafe {b['unsafe']} -> {a['unsafe']}")
    total = {k: [sum(rows[i][s][k] for s in common) for i in (0, 1)]
             for k in ("overload_gbit", "static_gbit", "false_incidents", "applied", "unsafe")}
    qualifying = [s for s in common if rows[0][s]["preemptive"] is not None]
    pre = [sum(bool(rows[i][s]["preemptive"]) for s in qualifying) for i in (0, 1)]
    print(f"{len(common)} ramp runs: pre-emptive {pre[0]} -> {pre[1]} of {len(qualifying)}; " +
          ", ".join(f"{k} {v[0]:g} -> {v[1]:g}" for k, v in total.items()))


if __name__ == "__main__":
    main(run, compare, __doc__)
