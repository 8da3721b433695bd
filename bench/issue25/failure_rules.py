"""Each scenario replayed with the loop's single-failure rule ("each", the default) and with the aggregate rule
(`VerificationSettings.failure_rule`), against static routing and the hindsight oracle (BENCHMARKS.md, issue 25,
session 16):

    python bench/issue25/failure_rules.py SCENARIO.yaml [...] [--rules each,aggregate]
"""

import argparse
import json

from netpilot.scenarios.scenario import compare, load_scenario

parser = argparse.ArgumentParser()
parser.add_argument("scenarios", nargs="+")
parser.add_argument("--rules", default="each,aggregate")
args = parser.parse_args()
for path in args.scenarios:
    scenario = load_scenario(path)
    for rule in args.rules.split(","):
        out = compare(scenario, options={"failure_rule": rule})
        traffic = out["overload_traffic"]
        print(json.dumps({"scenario": scenario.name, "rule": rule, "static_gbit": round(traffic["baseline_gbit"]),
                          "autopilot_gbit": round(traffic["autopilot_gbit"]),
                          "oracle_gbit": round(traffic["oracle_gbit"]),
                          "share": traffic["share_of_achievable_cut"], "applied": out["changes_applied"],
                          "unsafe": out["unsafe_changes_applied"],
                          "unsafe_at_profile_demand": out["unsafe_at_profile_demand"],
                          "unsafe_by_the_default_rule": out.get("unsafe_by_the_default_rule", 0),
                          "decision_p99_ms": round(out["decision_latency_ms"]["p99"])}), flush=True)
