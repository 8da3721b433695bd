"""All single directed-link failures of one Repetita network (matrix 0000) re-optimised on WORKERS processes; prints
the wall time and saves the per-scenario MLUs under /tmp/speed/ (TAG), so two code trees can be compared:

    python bench/issue31/failures_network.py NETWORK WORKERS TAG
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import te
from netpilot.optimize.te.failures import failure_groups, reoptimise_failures
from netpilot.optimize.te.fast import solve_fast
from netpilot.optimize.te.problem import build_problem


def run(name: str, workers: int):
    """(the base routing, the failure report, the re-optimised answers, wall seconds of the re-optimisation)."""
    problem = build_problem(dict(te.repetita_instances())[name], k=4)
    routing = solve_fast(problem)
    groups = failure_groups(problem.arrays, bidirectional=False)
    started = time.perf_counter()
    report, answers = reoptimise_failures(routing, groups, workers=workers)
    return routing, report, answers, time.perf_counter() - started


if __name__ == "__main__":
    name, workers, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    _, report, answers, wall = run(name, workers)
    np.save(f"/tmp/speed/net_{name}_{tag}.npy", report.mlu)
    print(json.dumps({"network": name, "tag": tag, "workers": workers, "wall": round(wall, 3),
                      "scenarios": len(answers), "worst": float(report.mlu.max()),
                      "iterations": int(sum(a.iterations for a in answers))}), flush=True)
