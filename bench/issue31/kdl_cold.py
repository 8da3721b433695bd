"""Kdl cold per matrix (gravity, seeds 0-2) as bench/te.py's kdl section, without the 600 s LP; paths from the cache."""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import te

t = time.perf_counter()
problem = te._gravity_problem("Kdl", 0)
print("paths+problem s", round(time.perf_counter() - t, 1), problem.paths.n_paths, problem.paths.n_pairs, flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "paths":
    sys.exit()
from netpilot.optimize.te.fast import solve_fast  # noqa: E402 - after the sys.path line that finds bench/

prev = None
for seed in range(3):
    if seed:
        problem = problem.with_volume(te._gravity_problem("Kdl", seed).volume)
    t = time.perf_counter()
    fast = solve_fast(problem, time_limit=60)
    cold = time.perf_counter() - t
    warm_s = None
    if prev is not None:
        t = time.perf_counter()
        warm = solve_fast(problem, x0=prev)
        warm_s = time.perf_counter() - t
    prev = fast.x
    print(
        json.dumps(
            {
                "seed": seed,
                "mlu": fast.mlu,
                "cold_s": cold,
                "gap": fast.gap,
                "iterations": fast.iterations,
                "warm_s": warm_s,
            }
        ),
        flush=True,
    )
