"""RAN slicing: the fast allocator equals the LP, is optimal against enumeration, keeps SLAs, and the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from netpilot.cli import app
from netpilot.optimize.ran.slicing import (
    Slice,
    allocate_fast,
    allocate_lp,
    allocate_proportional,
    allocate_static,
    evaluate,
    reservations,
)

runner = CliRunner()
SLICES = [Slice("eMBB", 1.0, 0.5), Slice("URLLC", 10.0, 0.2), Slice("mMTC", 2.0, 0.15)]


def test_fast_equals_the_lp_on_random_cells():
    rng = np.random.default_rng(3)
    prbs = rng.choice([50.0, 100.0, 273.0], 500)
    demand = rng.uniform(0, 1.2, (500, 3)) * prbs[:, None] * np.array([0.8, 0.2, 0.3])
    fast, lp = allocate_fast(prbs, demand, SLICES), allocate_lp(prbs, demand, SLICES)
    assert np.allclose(fast.objective(demand, SLICES), lp.objective(demand, SLICES), atol=1e-6)
    for decision in (fast, lp):
        assert np.allclose(decision.allocation.sum(axis=1), prbs)  # no PRB left idle
        assert (decision.allocation >= decision.reserved - 1e-9).all()


def test_fast_is_optimal_against_enumeration():
    rng = np.random.default_rng(5)
    for _ in range(25):
        prbs = 20.0  # guarantees of 10, 4 and 3 PRBs: whole numbers, so the optimum is too
        demand = rng.integers(0, 16, 3).astype(float)
        fast = allocate_fast(np.array([prbs]), demand[None, :], SLICES, margin=0.0)
        reserve = reservations(np.array([prbs]), demand[None, :], SLICES, 0.0)[0]
        weights = np.array([s.priority for s in SLICES])
        best = max(float(weights @ np.minimum(a, demand)) for a in itertools.product(range(21), repeat=3)
                   if sum(a) <= prbs and all(x >= r - 1e-9 for x, r in zip(a, reserve)))
        assert fast.objective(demand[None, :], SLICES)[0] == pytest.approx(best)


def test_sla_always_met_when_the_forecast_is_right_and_baselines_miss_it():
    prbs = np.array([100.0, 100.0])
    demand = np.array([[90.0, 15.0, 5.0], [20.0, 19.0, 14.0]])
    fast = allocate_fast(prbs, demand, SLICES, margin=0.0)
    assert evaluate(fast.allocation, demand, prbs, SLICES).satisfaction == 1.0
    static = evaluate(allocate_static(prbs, demand, SLICES).allocation, demand, prbs, SLICES)
    proportional = evaluate(allocate_proportional(prbs, demand, SLICES).allocation, demand, prbs, SLICES)
    assert static.satisfaction < 1.0  # eMBB's 50 guaranteed PRBs do not fit an equal third
    assert proportional.satisfaction_by_slice["URLLC"] < 1.0 or proportional.satisfaction < 1.0


def test_urllc_bursts_find_their_guarantee_reserved():
    prbs = np.array([100.0])
    forecast = np.array([[40.0, 1.0, 5.0]])
    burst = np.array([[40.0, 18.0, 5.0]])  # URLLC jumps far above its forecast
    fast = allocate_fast(prbs, forecast, SLICES)
    assert evaluate(fast.allocation, burst, prbs, SLICES).satisfaction == 1.0


@pytest.mark.parametrize(("slices", "demand", "message"), [
    ([Slice("a", 1, 0.7), Slice("b", 1, 0.5)], [[1.0, 1.0]], "add up to"),
    (SLICES, [[1.0, -1.0, 1.0]], "non-negative"),
    (SLICES, [[1.0, 1.0]], "shape"),
])
def test_bad_input_is_refused(slices, demand, message):
    with pytest.raises(ValueError, match=message):
        allocate_fast(np.array([100.0]), np.array(demand), slices)


def test_cli_writes_a_checkable_allocation(tmp_path):
    out = tmp_path / "s.json"
    result = runner.invoke(app, ["ran", "slice", "--cells", "examples/cells.yaml", "--slices", "examples/slices.yaml",
                                 "--json", str(out), "--method", "lp"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    for cell in doc["cells"]:
        assert sum(cell["allocation"].values()) == pytest.approx(cell["prbs"])
        assert all(cell["allocation"][s] >= cell["reserved"][s] - 1e-9 for s in cell["allocation"])
        assert cell["guarantees_covered"]


def test_cli_names_the_bad_field(tmp_path):
    slices = tmp_path / "slices.yaml"
    slices.write_text("- {name: a, priority: 1, guaranteed_share: 0.5}\n"
                      "- {name: b, priority: 0, guaranteed_share: 0.1}\n")
    cells = tmp_path / "cells.yaml"
    cells.write_text("- {cell: c, prbs: 100, demand: {a: 1}}\n")
    result = runner.invoke(app, ["ran", "slice", "--cells", str(cells), "--slices", str(slices), "--json",
                                 str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "slices.yaml:2" in result.output and "priority" in result.output
    slices.write_text("- {name: a, priority: 1, guaranteed_share: 0.5}\n")
    cells.write_text("- {cell: c, prbs: 100, demand: {zz: 1}}\n")
    result = runner.invoke(app, ["ran", "slice", "--cells", str(cells), "--slices", str(slices), "--json",
                                 str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "zz" in result.output and "Traceback" not in result.output
