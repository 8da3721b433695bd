"""Per-scenario solver time of every single failure of Cogentco (which scenarios dominate)."""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import te
from netpilot.optimize.te.failures import _ScenarioContext, _scenarios, failure_groups
from netpilot.optimize.te.fast import solve_fast
from netpilot.optimize.te.problem import build_problem

network = dict(te.repetita_instances())["Cogentco"]
t = time.perf_counter()
problem = build_problem(network, k=4)
print("build", time.perf_counter() - t)
t = time.perf_counter()
routing = solve_fast(problem)
print("base solve", time.perf_counter() - t, routing.mlu, routing.iterations)
groups = failure_groups(problem.arrays, bidirectional=False)
ctx = _ScenarioContext.of(routing, 0.01, 0.01)
sc = _scenarios(problem, groups)
times = []
its = []
for f in sc:
    t = time.perf_counter()
    a = ctx.solve(f)
    times.append(time.perf_counter() - t)
    its.append(a[4])
times = np.array(times)
its = np.array(its)
print("scenarios", len(sc), "total", times.sum(), "kept", (its == 0).sum())
o = np.argsort(-times)
print("top 20 times", np.round(times[o[:20]], 3), its[o[:20]])
print("time in scenarios with >30 it", times[its > 30].sum(), (its > 30).sum(), "median it", np.median(its[its > 0]))
print("per-iteration s", times[its > 0].sum() / its.sum())
np.save("/tmp/speed/fail_times.npy", np.stack([times, its]))
