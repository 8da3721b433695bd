"""Autopilot benchmarks: every shipped scenario replayed with the loop acting and with static shortest-path
routing (overload cut, detection, root-cause rank, unsafe changes), and the decision latency per tick on the
124-node bundled network. Replays are deterministic (a fixed amount of work per tick), so only the latency
figures move between runs.

    python bench/autopilot.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _results import run
from netpilot.autopilot.scenario import compare, load_scenario

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=200)
results: dict[str, object] = {}


def scenarios() -> None:
    table = Table("scenario", "overload static / autopilot (Gbit)", "cut", "faults detected", "rank 1",
                  "applied / proposed / refused", "unsafe applied (carried / profile demand)",
                  "latency p50 / p99 / max (ms)",
                  "stage p99 (ms)", "localised after (s)")
    out = {}
    for file in sorted((ROOT / "examples" / "scenarios").glob("*.yaml")):
        r = compare(load_scenario(file))
        o, lat, faults = r["overload_traffic"], r["decision_latency_ms"], r["faults"]
        table.add_row(r["scenario"], f"{o['baseline_gbit']:.0f} / {o['autopilot_gbit']:.0f}",
                      "n/a" if o["cut"] is None else f"{o['cut']:.1%}",
                      f"{sum(f['detected'] for f in faults)}/{len(faults)}",
                      f"{sum(f['root_cause_rank'] == 1 for f in faults)}/{len(faults)}",
                      f"{r['changes_applied']} / {r['changes_proposed']} / {r['changes_refused']}",
                      f"{r['unsafe_changes_applied']} / {r['unsafe_at_profile_demand']}",
                      f"{lat['p50']:.1f} / {lat['p99']:.0f} / {lat['max']:.0f}",
                      ", ".join(f"{k} {v:.0f}" for k, v in lat["stages_p99"].items() if v >= 5),
                      ", ".join("-" if f["seconds_to_localise"] is None else f"{f['seconds_to_localise']:.0f}"
                                for f in faults))
        out[r["scenario"]] = r
        console.print(table)
    results["scenarios"] = out


if __name__ == "__main__":
    run("autopilot", {"scenarios": scenarios}, sys.argv[1:] or ["scenarios"], results)
