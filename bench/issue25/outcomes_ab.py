"""What two versions of the loop do on the same scenarios, without the oracle (BENCHMARKS.md, issue 25, session
19): per replay the overload left, faults detected and localised first, false incidents, changes applied and
those the hindsight re-check refuses (unsafe), which faults were missed and what was active when each
unsafe change was applied, and each applied change's MLU before, predicted and measured at its post-check.
Decisions are deterministic, so the two versions need not alternate; latency is not measured.

    python bench/issue25/outcomes_ab.py run OUT.jsonl SCENARIO [...]      # the netpilot on PYTHONPATH
    python bench/issue25/outcomes_ab.py compare BEFORE.jsonl AFTER.jsonl

``run ... --options key=value,...`` sets the loop's settings by name (``expected_congestion_loss=true``).

SCENARIO: a scenario file, or a suite run named TOPOLOGY:LOAD:SEED (1.5 hours, three faults), generated as
`bench/suite.py` generates it under build/suite/ when missing. Two versions side by side:

    PYTHONPATH=OLD/src python bench/issue25/outcomes_ab.py run before.jsonl Abilene:0.9:6 ...
    PYTHONPATH=NEW/src python bench/issue25/outcomes_ab.py run after.jsonl Abilene:0.9:6 ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _ab import main, read_rows

FIGURES = ("overload_gbit", "faults", "detected", "rank1", "false_incidents", "applied", "unsafe")


def run(out: Path, specs: list[str], options: dict[str, Any]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import suite  # bench/suite.py: the suite's topologies and scenario files
    from netpilot.scenarios.scenario import load_scenario, run_scenario

    with out.open("a") as sink:
        for spec in specs:
            result = run_scenario(load_scenario(suite.scenario_path(spec)), options=options)
            faults = result["faults"]
            row = {"scenario": spec, "overload_gbit": round(result["overload_traffic_gbit"], 3),
                   "faults": len(faults), "detected": sum(f["detected"] for f in faults),
                   "rank1": sum(f["root_cause_rank"] == 1 for f in faults),
                   "false_incidents": result["false_incidents"], "applied": result["changes_applied"],
                   "unsafe": result["unsafe_changes_applied"],
                   "missed": [f"{f['kind']}@{f['at_minute']:g}" for f in faults if not f["detected"]],
                   "unobservable": [f"{f['kind']}@{f['at_minute']:g}" for f in faults
                                    if not f.get("observable", True)],
                   "unsafe_changes": result["unsafe_changes"],
                   "outcomes": [{k: o[k] for k in ("mlu_before", "predicted_mlu", "measured_mlu")}
                                for o in result["outcomes"]]}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            print(json.dumps({k: row[k] for k in ("scenario", *FIGURES)}), flush=True)


def compare(before_path: Path, after_path: Path) -> None:
    before, after = read_rows(before_path), read_rows(after_path)
    common = [s for s in before if s in after]
    totals = {f: [0.0, 0.0] for f in FIGURES}
    for spec in common:
        b, a = before[spec], after[spec]
        for f in FIGURES:
            totals[f][0] += b[f]
            totals[f][1] += a[f]
        moved = {f: (b[f], a[f]) for f in FIGURES if b[f] != a[f]}
        if moved:
            print(f"{spec}: " + ", ".join(f"{f} {x:g} -> {y:g}" for f, (x, y) in moved.items()))
    print(f"{len(common)} scenarios: " + ", ".join(f"{f} {x:g} -> {y:g}" for f, (x, y) in totals.items()))
    worse = sum(after[s]["overload_gbit"] > before[s]["overload_gbit"] * 1.001 for s in common)
    better = sum(after[s]["overload_gbit"] < before[s]["overload_gbit"] / 1.001 for s in common)
    print(f"overload lower in {better}, higher in {worse}, the same in {len(common) - better - worse}")
    for label, rows in (("before", before), ("after", after)):
        active = [c["active"] for s in common for c in rows[s]["unsafe_changes"]]
        with_misconfig = sum(any(k.startswith("misconfig@") for k in a) for a in active)
        print(f"{label}: {len(active)} unsafe changes, {with_misconfig} applied while a misconfiguration was active")


if __name__ == "__main__":
    main(run, compare, __doc__)
