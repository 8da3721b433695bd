"""Autopilot benchmarks: every shipped scenario replayed with the loop acting and with static shortest-path
routing (overload cut, detection, root-cause rank, unsafe changes), and the decision latency per tick on the
124-node bundled network; then the same scenarios at other seeds (``seeds``), to show the figures are not the
shipped runs' alone. Replays are deterministic (a fixed amount of work per tick), so only the latency figures
move between runs.

    python bench/autopilot.py [scenarios] [seeds]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _results import run
from netpilot.scenarios.scenario import compare, load_scenario

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=200)
results: dict[str, object] = {}


def scenarios() -> None:
    table = Table("scenario", "overload static / autopilot (Gbit)", "cut", "faults detected", "rank 1",
                  "applied (explicit paths) / proposed / refused", "unsafe applied (carried / profile demand)",
                  "decision latency p50 / p99 / max (ms)", "whole tick p99 / max (ms)",
                  "stage p99 (ms)", "localised after (s)")
    out = {}
    for file in sorted((ROOT / "examples" / "scenarios").glob("*.yaml")):
        r = compare(load_scenario(file), settle=True)
        o, lat, faults = r["overload_traffic"], r["decision_latency_ms"], r["faults"]
        paths = sum("set_policies" in c["intents"] for c in r["changes"] if c["state"] == "done")
        table.add_row(r["scenario"], f"{o['baseline_gbit']:.0f} / {o['autopilot_gbit']:.0f}",
                      "n/a" if o["cut"] is None else f"{o['cut']:.1%}",
                      f"{sum(f['detected'] for f in faults)}/{len(faults)}",
                      f"{sum(f['root_cause_rank'] == 1 for f in faults)}/{len(faults)}",
                      f"{r['changes_applied']} ({paths}) / {r['changes_proposed']} / {r['changes_refused']}",
                      f"{r['unsafe_changes_applied']} / {r['unsafe_at_profile_demand']}",
                      f"{lat['p50']:.1f} / {lat['p99']:.0f} / {lat['max']:.0f}",
                      f"{lat['tick_p99']:.0f} / {lat['tick_max']:.0f}",
                      ", ".join(f"{k} {v:.0f}" for k, v in lat["stages_p99"].items() if v >= 5),
                      ", ".join("-" if f["seconds_to_localise"] is None else f"{f['seconds_to_localise']:.0f}"
                                for f in faults))
        out[r["scenario"]] = r
        console.print(f"{r['scenario']}: cut {o['cut']:.1%}")
    console.print(table)
    results["scenarios"] = out


#: Seeds other than the shipped ones: the same faults over other demand noise, so a setting tuned to the shipped
#: runs shows here whether it carries over.
OTHER_SEEDS = (11, 12, 13)


def seeds() -> None:
    table = Table("scenario", "seed", "overload static / autopilot (Gbit)", "cut", "applied (explicit paths)",
                  "unsafe applied (carried / profile demand)", "decision latency p99 (ms)", "whole tick p99 (ms)")
    out, total = [], {"baseline_gbit": 0.0, "autopilot_gbit": 0.0, "unsafe": 0, "unsafe_at_profile": 0,
                      "applied": 0}
    for file in sorted((ROOT / "examples" / "scenarios").glob("*.yaml")):
        shipped = load_scenario(file)
        for seed in OTHER_SEEDS:
            r = compare(shipped.model_copy(update={"seed": seed}), settle=True)
            o = r["overload_traffic"]
            paths = sum("set_policies" in c["intents"] for c in r["changes"] if c["state"] == "done")
            table.add_row(r["scenario"], str(seed), f"{o['baseline_gbit']:.0f} / {o['autopilot_gbit']:.0f}",
                          "n/a" if o["cut"] is None else f"{o['cut']:.1%}", f"{r['changes_applied']} ({paths})",
                          f"{r['unsafe_changes_applied']} / {r['unsafe_at_profile_demand']}",
                          f"{r['decision_latency_ms']['p99']:.0f}", f"{r['decision_latency_ms']['tick_p99']:.0f}")
            out.append({"scenario": r["scenario"], "seed": seed, "cut": o["cut"], "applied": r["changes_applied"],
                        "applied_explicit_paths": paths, "unsafe": r["unsafe_changes_applied"],
                        "unsafe_at_profile": r["unsafe_at_profile_demand"],
                        "p99_ms": r["decision_latency_ms"]["p99"],
                        "tick_p99_ms": r["decision_latency_ms"]["tick_p99"]})
            total["baseline_gbit"] += o["baseline_gbit"]
            total["autopilot_gbit"] += o["autopilot_gbit"]
            total["unsafe"] += r["unsafe_changes_applied"]
            total["unsafe_at_profile"] += r["unsafe_at_profile_demand"]
            total["applied"] += r["changes_applied"]
            console.print(f"{r['scenario']} seed {seed}: cut {o['cut']:.1%}")
    console.print(table)
    total["cut"] = 1.0 - total["autopilot_gbit"] / total["baseline_gbit"]
    console.print(f"all runs: cut {total['cut']:.1%}, {total['applied']} changes applied, unsafe "
                  f"{total['unsafe']} / {total['unsafe_at_profile']}")
    results["seeds"] = {"runs": out, "total": total}


if __name__ == "__main__":
    run("autopilot", {"scenarios": scenarios, "seeds": seeds}, sys.argv[1:] or ["scenarios", "seeds"], results)
