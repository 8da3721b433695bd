"""All single failures of Cogentco re-optimised with WORKERS processes; writes the MLUs and wall time under TAG."""

import json
import sys
import time
from pathlib import Path

import numpy as np

workers = int(sys.argv[1])
tag = sys.argv[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import netpilot  # noqa: E402 - after the sys.path line that finds bench/
import te  # noqa: E402 - after the sys.path line that finds bench/
from netpilot.optimize.te.failures import failure_groups, reoptimise_failures  # noqa: E402 - after the sys.path line that finds bench/
from netpilot.optimize.te.fast import solve_fast  # noqa: E402 - after the sys.path line that finds bench/
from netpilot.optimize.te.problem import build_problem  # noqa: E402 - after the sys.path line that finds bench/

network = dict(te.repetita_instances())["Cogentco"]
problem = build_problem(network, k=4)
routing = solve_fast(problem)
groups = failure_groups(problem.arrays, bidirectional=False)
t = time.perf_counter()
report, answers = reoptimise_failures(routing, groups, workers=workers)
wall = time.perf_counter() - t
np.save(f"/tmp/speed/fail_{tag}_w{workers}.npy", report.mlu)
print(
    json.dumps(
        {
            "tag": tag,
            "src": netpilot.__file__,
            "workers": workers,
            "seconds": report.seconds,
            "wall": wall,
            "scenarios": len(answers),
            "worst": float(report.mlu.max()),
            "base_mlu": routing.mlu,
            "kept": int(sum(a.moved_pairs == 0 for a in answers)),
            "iterations": int(sum(a.iterations for a in answers)),
        }
    ),
    flush=True,
)
