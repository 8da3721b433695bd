"""Why the loop proposes nothing: a scenario replayed with the planners traced, tick by tick (the MLU, whether the
loop planned, the metric search's best plan against the failures verification named, the explicit-path LP):

    python bench/issue25/why_no_plan.py SCENARIO.yaml [--ticks N]

A diagnostic: it wraps the loop's private planning methods, so it follows their names."""

import argparse

import numpy as np

from netpilot.autopilot import loop, planners
from netpilot.scenarios.scenario import load_scenario, run_scenario

parser = argparse.ArgumentParser()
parser.add_argument("scenario")
parser.add_argument("--ticks", type=int, default=60)
args = parser.parse_args()

plan_tick, plan_igp, plan_paths = loop.Autopilot._plan, planners.IgpMetricPlanner.plan, \
    planners.ExplicitPathPlanner.plan


def traced_tick(self, frame, n, mlu, stages):
    change = plan_tick(self, frame, n, mlu, stages)
    if n < args.ticks:
        memory = self.memory
        print(f"tick {n}: MLU {mlu:.3f}, forecast {self.forecaster.peak():.3f}, localising "
              f"{self.watch.localising is not None}, beliefs {sorted(self.beliefs)}, failures named "
              f"{len(memory.critical)}, search gave up {memory.paths_for is not None}, stopped "
              f"{memory.no_plan is not None} -> {change}", flush=True)
    return change


def traced_igp(self, context):
    plan = plan_igp(self, context)
    targets, incumbent = context.targets, context.memory.incumbent
    if incumbent is not None:
        u = targets.utilisation_of(incumbent[1])
        excess = planners.bound_excess(u, *targets.bounds)
        print(f"  metric search: now {targets.now:.3f}, best {u[0].max():.3f}, over bounds "
              f"{np.round(excess, 3).tolist()[:6]} -> {None if plan is None else plan.action}", flush=True)
    return plan


def traced_paths(self, context):
    plan = plan_paths(self, context)
    print(f"  explicit paths -> {None if plan is None else plan.action}", flush=True)
    return plan


loop.Autopilot._plan, planners.IgpMetricPlanner.plan, planners.ExplicitPathPlanner.plan = \
    traced_tick, traced_igp, traced_paths
out = run_scenario(load_scenario(args.scenario))
print(f"changes proposed {out['changes_proposed']}, applied {out['changes_applied']}")
