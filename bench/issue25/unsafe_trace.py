"""Why an applied change failed the hindsight re-check: a replay with the loop's verification recorded, and
for each change a re-check refuses (on the demand carried, and on the profile's demand: each one its block), the
network or the demand to blame (the true networks on the loop's demand, the loop's networks on the true demand),
the MLU now, today's worst single failure and the moved failures' worst after, and every single failure the
re-check refuses, before and after, on the true demand, verification's and the estimate's. The loop's side is
its last verification that passed at or before the change's minute (the change applied, or the plan it was):

    python bench/issue25/unsafe_trace.py TOPOLOGY:LOAD:SEED     # as bench/suite.py names its runs

A diagnostic (BENCHMARKS.md, issue 25, session 28): it wraps the loop's verifier and the re-check, so it follows
their names."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from netpilot.autopilot import planners
from netpilot.autopilot.settings import AutopilotSettings
from netpilot.change import verify
from netpilot.model import twin
from netpilot.scenarios import scenario

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import suite

LOOP = AutopilotSettings().verification
CHECKS = ("on the demand carried", "on the profile's demand")  # the re-checks under the loop's rule, in order
checks = [0]
verified: list[tuple[float, Any, Any, np.ndarray, np.ndarray, np.ndarray, float]] = []
minute_checked = [0.0]


def recording_verify_on(self, believed, after, volume, beliefs, mlu, forecast_peak, stages):
    report = verify_on(self, believed, after, volume, beliefs, mlu, forecast_peak, stages)
    if report.ok:
        (pairs, demand), *_ = self.demands(volume, beliefs)
        verified.append((self.estimate.twin.minute, believed, after, pairs, demand.copy(), volume.copy(),
                         self.estimate.margin))
    return report


def failures(before, after, pairs, demand):
    """(each single failure's MLU before, after; the MLU now before, after) on ``demand``."""
    now_before, now_after = verify._state(before, pairs, demand), verify._state(after, pairs, demand)
    cases = verify.failure_scenarios(now_after.arrays)
    results = verify._failure_results(now_before)
    mlu_after, *_ = verify._failure_outcomes_after(now_before, now_after, results, cases)
    mlu_before = np.array([results.get(verify._scenario_key(now_after.arrays, c), (0.0,))[0] for c in cases])
    return mlu_before, mlu_after, float(now_before.utilisation.max()), float(now_after.utilisation.max())


def tracing_check(before, after, settings, demand=None, **kw):
    report = verify_change(before, after, settings, demand=demand, **kw)
    if report.ok or settings.failure_rule == verify.PER_FAILURE:  # the loop's own rule, as the re-check counts
        return report
    checks[0] += 1
    minute = max(v[0] for v in verified if v[0] <= minute_checked[0])
    _, believed, planned, _, demand_verified, estimate, margin = [v for v in verified if v[0] == minute][-1]
    pairs, true = demand
    print(f"change applied at {minute_checked[0]:g} ({CHECKS[(checks[0] - 1) % 2]}), last verified at "
          f"{minute:g}, margin {margin:.3f}; "
          f"demand total estimate / true {estimate.sum() / true.sum():.3f}")
    for label, b, a, d in (("true networks, the loop's demand", before, after, demand_verified),
                           ("the loop's networks, the true demand", believed, planned, true)):
        print(f"  {label}: {'passes' if verify_change(b, a, settings, demand=(pairs, d)).ok else 'refused'}")
    t, v, e = (failures(before, after, pairs, true), failures(believed, planned, pairs, demand_verified),
               failures(believed, planned, pairs, estimate))
    print(f"  MLU now: true {t[2]:.3f} -> {t[3]:.3f}, verification's {v[2]:.3f} -> {v[3]:.3f}, "
          f"estimate {e[2]:.3f} -> {e[3]:.3f}")
    moved_t, moved_v = np.abs(t[1] - t[0]) > 1e-9, np.abs(v[1] - v[0]) > 1e-9
    ceiling = verify.failure_allowance(v[0].max(), settings.max_utilisation, LOOP.failure_tolerance,
                                       getattr(LOOP, "worst_share", None) or LOOP.failure_share)
    print(f"  the loop's ceiling on a moved failure {float(ceiling):.3f}")
    print(f"  today's worst failure / moved failures' worst after: true {t[0].max():.3f} / "
          f"{t[1][moved_t].max(initial=0.0):.3f}, verification's {v[0].max():.3f} / "
          f"{v[1][moved_v].max(initial=0.0):.3f}")
    for i in np.flatnonzero(moved_t & (t[1] > np.maximum(settings.max_utilisation, t[0]) + 1e-9)):
        print(f"  failure {i}: true {t[0][i]:.3f} -> {t[1][i]:.3f}; verification's {v[0][i]:.3f} -> "
              f"{v[1][i]:.3f}; estimate {e[0][i]:.3f} -> {e[1][i]:.3f}")
    return report


def expected_at(self):
    minute_checked[0] = self.minute  # the re-check sets the true twin's minute to each change's
    return expected(self)


verify_on, verify_change, expected = planners.Verifier.verify_on, scenario.verify_change, twin.Twin.expected
planners.Verifier.verify_on, scenario.verify_change, twin.Twin.expected = \
    recording_verify_on, tracing_check, expected_at
out = scenario.run_scenario(scenario.load_scenario(suite.scenario_path(sys.argv[1])))
print(f"unsafe: {out['unsafe_changes']}")
