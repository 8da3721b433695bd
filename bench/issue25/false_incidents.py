"""Where a version's false incidents fall (BENCHMARKS.md, issue 25, session 21): every incident of each replay,
its minute, alarms and top cause beside the scenario's faults, and each false one (outside every fault's detection
window) classed as at a fault's end (a minute before to 15 after it), during a fault already detected, or before
the first fault (the day's ramp):

    python bench/issue25/false_incidents.py run OUT.jsonl TOPOLOGY:LOAD:SEED [...]   # the netpilot on PYTHONPATH
    python bench/issue25/false_incidents.py classify OUT.jsonl

Scenarios are generated as `bench/suite.py` generates them under build/suite/ when missing."""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

END_BEFORE, END_AFTER = 1.0, 15.0  # minutes around a fault's end that count as "at its end"


def run(out: Path, specs: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import suite  # bench/suite.py: the suite's scenario files
    from netpilot.scenarios.scenario import DETECTION_WINDOW_MINUTES, RunTrace, load_scenario, run_scenario

    with out.open("a") as sink:
        for spec in specs:
            scenario = load_scenario(suite.scenario_path(spec))
            trace = RunTrace()
            run_scenario(scenario, trace=trace)
            faults = [{"kind": f.kind, "at_minute": f.at_minute, "duration_minutes": f.duration_minutes}
                      for f in scenario.faults]
            incidents = [{"minute": i.minute, "alarms": i.alarms[:6], "closed_at": i.closed_at,
                          "top": f"{i.causes[0]['kind']}@{i.causes[0]['target']}" if i.causes else None,
                          "false": not any(f.at_minute <= i.minute <= f.at_minute + DETECTION_WINDOW_MINUTES
                                           for f in scenario.faults)}
                         for i in trace.pilot.incidents]
            sink.write(json.dumps({"scenario": spec, "faults": faults, "incidents": incidents}) + "\n")
            sink.flush()
            print(spec, sum(i["false"] for i in incidents), flush=True)


def where(minute: float, faults: list[dict]) -> str:
    """A false incident's place: at a fault's end, during a fault, or before (none)."""
    ends = [f["at_minute"] + (f["duration_minutes"] or 0.0) for f in faults]
    if any(end - END_BEFORE <= minute <= end + END_AFTER for end in ends):
        return "at a fault's end"
    if any(f["at_minute"] <= minute < f["at_minute"] + (f["duration_minutes"] or 0.0) for f in faults):
        return "during a fault"
    return "no fault (the ramp)"


def classify(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    kinds: collections.Counter[str] = collections.Counter()
    for row in rows:
        for incident in row["incidents"]:
            if incident["false"]:
                kinds[where(incident["minute"], row["faults"])] += 1
    print(f"{len(rows)} replays, {sum(kinds.values())} false incidents: "
          + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(Path(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "classify":
        classify(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
