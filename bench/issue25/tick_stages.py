"""Where a replay's slow ticks spend their time: each tick's decision latency and stages, for the ticks over a
limit (BENCHMARKS.md, issue 25, session 18):

    python bench/issue25/tick_stages.py SCENARIO [...] [--over 100] [--options key=value,...]

SCENARIO: a scenario file, or TOPOLOGY:LOAD:SEED as in `failure_rules.py`. Each run also prints a digest of its
decisions (every change with its intents and state, every incident with its ranked causes, each tick's MLU and
change), to tell whether two versions of the code decide the same (change ids, which are random, left out).
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from netpilot.scenarios.scenario import RunTrace, load_scenario, run_scenario

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _ab import parse_options  # bench/issue25/_ab.py (this script's folder is on the path)

import suite  # bench/suite.py: the suite's topologies and scenario files

parser = argparse.ArgumentParser()
parser.add_argument("scenarios", nargs="+")
parser.add_argument("--over", type=float, default=100.0)
parser.add_argument("--options", default="")
args = parser.parse_args()
options = parse_options(args.options)
for spec in args.scenarios:
    scenario = load_scenario(suite.scenario_path(spec))
    trace = RunTrace()
    run_scenario(scenario, settle=True, trace=trace, options=options)  # the suite's replay, as it runs there
    pilot, wall = trace.pilot, trace.loop_seconds
    store = pilot.changes
    latency = np.array([t.latency_ms for t in pilot.ticks])
    changes = {c.id: i for i, c in enumerate(store.list())}
    decisions = [[(t.minute, repr(t.mlu), changes.get(t.change), t.incident is not None) for t in pilot.ticks],
                 [(c.state, c.intents, c.why) for c in store.list()],
                 [(i.minute, i.causes[:3]) for i in pilot.incidents]]
    digest = hashlib.sha256(json.dumps(decisions, sort_keys=True, default=str).encode()).hexdigest()[:16]
    print(f"{scenario.name}: {len(latency)} ticks, {wall:.1f} s; latency p50 {np.percentile(latency, 50):.0f} "
          f"p99 {np.percentile(latency, 99):.0f} max {latency.max():.0f} ms; over {args.over:g} ms: "
          f"{int((latency > args.over).sum())}; applied {len(pilot.applied)}; decisions {digest}")
    for t in pilot.ticks:
        if t.latency_ms > args.over:
            stages = ", ".join(f"{k} {v:.0f}" for k, v in sorted(t.stages_ms.items(), key=lambda kv: -kv[1])
                               if v >= 1.0)
            print(f"  minute {t.minute:5.0f}  {t.latency_ms:6.0f} ms  {stages}")
