"""Decision latency of two versions of the loop that may decide differently (`latency_ab.py` is for two that
must not), alternating run by run in one sitting (BENCHMARKS.md, issue 25, session 22): p50, p99 and the p99 of
the verification and baseline stages, per run and version. Each run is a fresh process with its version's
netpilot on PYTHONPATH.

    python bench/issue25/stage_latency_ab.py OLD/src NEW/src SCENARIO[@SEED] [...]

SCENARIO: a scenario file or a suite run named TOPOLOGY:LOAD:SEED (as `bench/suite.py` generates it); @SEED replays
a scenario file at another seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
ONE_RUN = """
import json, sys
sys.path.insert(0, {bench!r})
import suite
from netpilot.autopilot.loop import settle_heap
from netpilot.scenarios.scenario import load_scenario, run_scenario
spec, _, seed = {spec!r}.partition("@")
scenario = load_scenario(suite.scenario_path(spec))
if seed:
    scenario = scenario.model_copy(update={{"seed": int(seed)}})
latency = run_scenario(scenario, settle=True)["decision_latency_ms"]
stages = latency["stages_p99"]
print(json.dumps({{"p50": latency["p50"], "p99": latency["p99"], "verify_p99": stages.get("decide.verify"),
                  "baseline_p99": stages.get("baseline")}}))
"""


def one(src: str, spec: str) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", ONE_RUN.format(bench=str(BENCH), spec=spec)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(old: str, new: str, specs: list[str]) -> None:
    for spec in specs:
        for name, src in (("old", old), ("new", new)):
            figures = one(src, spec)
            print(f"{spec:40s} {name}: " + ", ".join(f"{k} {v:.1f}" if v is not None else f"{k} -"
                                                     for k, v in figures.items()), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
