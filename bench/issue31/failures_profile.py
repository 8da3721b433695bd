"""cProfile of the single-failure re-optimisation of Cogentco."""

import cProfile
import pstats
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
problem = build_problem(network, k=4)
routing = solve_fast(problem)
groups = failure_groups(problem.arrays, bidirectional=False)
ctx = _ScenarioContext.of(routing, 0.01, 0.01)
sc = _scenarios(problem, groups)
ti = np.load("/tmp/speed/fail_times.npy")
its = ti[1]
light = [sc[i] for i in np.flatnonzero((its > 0) & (its <= 10))][:80]
heavy = [sc[i] for i in np.flatnonzero(its > 100)][:4]
print(problem.paths.n_paths, problem.paths.n_pairs, problem.arrays.n_links)
for name, s in (("light", light), ("heavy", heavy)):
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    out = [ctx.solve(f) for f in s]
    pr.disable()
    print(name, len(s), time.perf_counter() - t, "iters", sum(o[4] for o in out))
    pstats.Stats(pr).sort_stats("tottime").print_stats(18)
