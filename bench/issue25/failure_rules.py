"""Each scenario replayed with the per-failure single-failure rule ("each") and with the aggregate rule (the loop's
default since session 17; `VerificationSettings.failure_rule`), against static routing and the hindsight oracle
(BENCHMARKS.md, issue 25, sessions 16 and 17):

    python bench/issue25/failure_rules.py SCENARIO [...] [--rules each,aggregate]

SCENARIO: a scenario file, or a suite run named TOPOLOGY:LOAD:SEED (say ``Deltacom:0.75:1``; 1.5 hours, three
faults), generated as `bench/suite.py` generates it under build/suite/ when missing.
"""

import argparse
import json
import sys
from pathlib import Path

from netpilot.scenarios.scenario import compare, load_scenario

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import suite  # bench/suite.py: the suite's topologies and scenario files

parser = argparse.ArgumentParser()
parser.add_argument("scenarios", nargs="+")
parser.add_argument("--rules", default="each,aggregate")
args = parser.parse_args()
for spec in args.scenarios:
    scenario = load_scenario(suite.scenario_path(spec))
    for rule in args.rules.split(","):
        out = compare(scenario, options={"failure_rule": rule})
        traffic = out["overload_traffic"]
        print(json.dumps({"scenario": scenario.name, "rule": rule, "static_gbit": round(traffic["baseline_gbit"]),
                          "autopilot_gbit": round(traffic["autopilot_gbit"]),
                          "oracle_gbit": round(traffic["oracle_gbit"]),
                          "share": traffic["share_of_achievable_cut"], "applied": out["changes_applied"],
                          "unsafe": out["unsafe_changes_applied"],
                          "unsafe_at_profile_demand": out["unsafe_at_profile_demand"],
                          "unsafe_by_the_per_failure_rule": out.get("unsafe_by_the_per_failure_rule", 0),
                          "decision_p99_ms": round(out["decision_latency_ms"]["p99"])}), flush=True)
