"""Edge inference placement: every placement feasible, the MIP optimal against enumeration, the greedy close,
what cannot be served reported, re-placement preferring models already loaded, and the CLI."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from typer.testing import CliRunner

from netpilot.cli import app
from netpilot.model.sample import bundled_network_path
from netpilot.optimize.ran.placement import (
    LATENCY,
    UNSERVED,
    Placement,
    PlacementProblem,
    Service,
    place_fast,
    place_mip,
)

runner = CliRunner()


def _random_problem(seed: int, cells: int = 12, sites: int = 4, load: float = 1.0) -> PlacementProblem:
    rng = np.random.default_rng(seed)
    services = [Service("vision", 4, 0.004, 25), Service("speech", 8, 0.04, 215), Service("llm", 20, 0.2, 1010)]
    rate = rng.uniform(0, 1, (cells, 3)) * np.array([100, 8, 1]) * load
    return PlacementProblem([f"c{i}" for i in range(cells)], [f"k{i}" for i in range(sites)], services, rate,
                            rng.uniform(0.5, 4, (cells, sites)), np.full(sites, 4.0), np.full(sites, 40.0),
                            rng.uniform(0.1, 0.5, sites))


@pytest.mark.parametrize("seed", range(4))
def test_every_placement_is_feasible_and_fast_is_close(seed):
    problem = _random_problem(seed)
    fast, mip = place_fast(problem), place_mip(problem, time_limit=60)
    assert fast.violations(problem) == [] and mip.violations(problem) == []
    assert mip.objective(problem) <= fast.objective(problem) + 1e-6
    assert fast.objective(problem) <= 1.25 * mip.objective(problem)


def _best_by_enumeration(problem: PlacementProblem) -> float:
    """For each choice of models loaded and GPUs on, the best shares by LP; the cheapest choice overall."""
    n_c, n_s, n_k = problem.rate.shape[0], len(problem.services), len(problem.sites)
    allowed = problem.allowed()
    best = np.inf
    for loaded_bits in itertools.product([0, 1], repeat=n_s * n_k):
        loaded = np.array(loaded_bits, dtype=bool).reshape(n_s, n_k)
        for gpus in itertools.product(*(range(int(g) + 1) for g in problem.available_gpus)):
            gpus = np.array(gpus, dtype=float)
            if ((loaded.astype(float).T @ problem.memory) > gpus * problem.gpu_memory_gb).any():
                continue
            # Variables: share[c, s, k] then unserved[c, s].
            n_x = n_c * n_s * n_k
            cost = np.concatenate([(LATENCY * problem.rate[:, :, None] * 2 * problem.latency_ms[:, None, :]).ravel(),
                                   (UNSERVED * problem.rate).ravel()])
            a_eq = np.zeros((n_c * n_s, n_x + n_c * n_s))
            for c, s in itertools.product(range(n_c), range(n_s)):
                a_eq[c * n_s + s, (c * n_s + s) * n_k:(c * n_s + s + 1) * n_k] = 1
                a_eq[c * n_s + s, n_x + c * n_s + s] = 1
            a_ub = np.zeros((n_k, n_x + n_c * n_s))
            for c, s, k in itertools.product(range(n_c), range(n_s), range(n_k)):
                a_ub[k, (c * n_s + s) * n_k + k] = problem.rate[c, s] * problem.gpu_seconds[s]
            bounds = [(0, 1 if allowed[c, s, k] and loaded[s, k] else 0)
                      for c, s, k in itertools.product(range(n_c), range(n_s), range(n_k))] + [(0, 1)] * (n_c * n_s)
            result = linprog(cost, A_ub=a_ub, b_ub=problem.max_utilisation * gpus, A_eq=a_eq,
                             b_eq=np.ones(n_c * n_s), bounds=bounds)
            if result.status == 0:
                best = min(best, result.fun + gpus.sum())
    return best


def test_mip_is_optimal_against_enumeration():
    rng = np.random.default_rng(9)
    services = [Service("a", 30, 0.01, 60), Service("b", 50, 0.05, 300)]
    problem = PlacementProblem(["c0", "c1"], ["k0", "k1"], services, rng.uniform(10, 40, (2, 2)),
                               np.array([[1.0, 9.0], [9.0, 1.0]]), np.array([3.0, 3.0]), np.array([40.0, 40.0]),
                               np.array([0.0, 0.34]))
    mip = place_mip(problem)
    assert mip.objective(problem) == pytest.approx(_best_by_enumeration(problem), abs=0.06)


def test_demand_beyond_all_capacity_is_reported_not_crashed():
    problem = _random_problem(1, load=50.0)
    for placement in (place_fast(problem), place_mip(problem, time_limit=60)):
        assert placement.violations(problem) == []
        assert placement.unserved(problem).sum() > 0
    impossible = replace(problem, services=[Service("x", 4, 0.5, 10)] * 3)  # 2.5 s of compute, 10 ms SLO
    assert place_fast(impossible).unserved(impossible).sum() == pytest.approx(impossible.rate.sum())


def test_replacement_keeps_models_where_they_are():
    problem = _random_problem(2)
    first = place_mip(problem)
    again = place_mip(replace(problem, previous=first.loaded, migration_cost=5.0))
    assert not (again.loaded & ~first.loaded).any() or again.objective(problem) < first.objective(problem)


def test_cli_places_on_the_bundled_network(tmp_path):
    out = tmp_path / "p.json"
    result = runner.invoke(app, ["edge", "place", "--network", str(bundled_network_path()), "--services",
                                 "examples/services.yaml", "--demand", "examples/edge_demand.yaml", "--json",
                                 str(out), "--method", "mip"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["violations"] == [] and doc["unserved_rate"] == 0
    for site in doc["sites"]:
        assert site["gpus_on"] <= site["gpus_available"]
        assert site["compute"] <= doc["max_utilisation"] * site["gpus_on"] + 1e-9
    services = {"vision": 40, "speech": 250, "llm-chat": 1100}
    for a in doc["assignments"]:
        assert a["rtt_ms"] + a["response_ms_at_cap"] <= services[a["service"]] + 1e-9


def test_cli_explains_what_it_cannot_serve(tmp_path):
    demand = tmp_path / "d.yaml"
    demand.write_text("demand:\n- {cell: UK-cell1, service: vision, rate: 1e6}\n")
    out = tmp_path / "p.json"
    result = runner.invoke(app, ["edge", "place", "--network", str(bundled_network_path()), "--services",
                                 "examples/services.yaml", "--demand", str(demand), "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["unserved"] and "no GPU room" in doc["unserved"][0]["why"]
    demand.write_text("demand:\n- {cell: nowhere, service: vision, rate: 1}\n")
    result = runner.invoke(app, ["edge", "place", "--network", str(bundled_network_path()), "--services",
                                 "examples/services.yaml", "--demand", str(demand), "--json", str(out)])
    assert result.exit_code == 2 and "demand[0].cell" in result.output


def _stranded_problem(**changes) -> PlacementProblem:
    """Two cells, two sites: cell 0's home site k0 has no GPU for inference (the RAN holds them all), and k1 is
    0.6 ms further than the 80 % cap's response leaves for vision's round trip (25 ms SLO, 4 ms of GPU time:
    20 ms response, so a round trip of 5 ms; k1 is 2.8 ms away, 5.6 ms there and back)."""
    services = [Service("vision", 4, 0.004, 25)]
    problem = PlacementProblem(["c0", "c1"], ["k0", "k1"], services, np.array([[200.0], [100.0]]),
                               np.array([[1.0, 2.8], [2.8, 1.0]]), np.array([4.0, 4.0]), np.array([40.0, 40.0]),
                               np.array([1.0, 0.0]))
    return replace(problem, **changes)


def test_a_cooler_site_reaches_what_no_site_serves_at_the_cap():
    from netpilot.optimize.ran.placement import cooler_caps, place_cooler

    problem = _stranded_problem()
    first = place_fast(problem)
    assert first.unserved(problem)[0, 0] == pytest.approx(200.0) and first.unserved(problem)[1, 0] == 0.0
    caps = cooler_caps(problem, first, 0.5)
    # k1 meets c0's SLO at a cap of 1 - 4 / (25 - 5.6) = 0.7938: on the 1 % grid, 79 %; k0 (no GPUs) stays.
    assert caps == pytest.approx([0.8, 0.79])
    cooler = replace(problem, site_utilisation=caps)
    assert cooler.allowed()[0, 0, 1] and not problem.allowed()[0, 0, 1]
    for placement in (place_fast(cooler), place_mip(cooler, time_limit=60)):
        assert placement.violations(cooler) == []
        assert placement.unserved(cooler).sum() == pytest.approx(0.0, abs=1e-6)
        # 1.2 GPU-s/s at k1 under its 79 % cap: two GPUs (at 80 % it would also be two; at 50 %, three).
        assert placement.compute(cooler)[1] <= 0.79 * placement.gpus_on[1] + 1e-9
    # The planner's call: both passes, the cooled problem kept since it serves more.
    solved, placed = place_cooler(problem, 0.5)
    assert solved.caps == pytest.approx([0.8, 0.79]) and placed.unserved(solved).sum() == pytest.approx(0.0, abs=1e-6)
    assert place_cooler(problem, 0.8)[0] is problem
    # Nothing to reach, a floor at the cap, or a site too far even at the floor: no cap moves.
    assert cooler_caps(cooler, place_fast(cooler), 0.5) is None
    assert cooler_caps(problem, first, 0.8) is None
    far = _stranded_problem(latency_ms=np.array([[1.0, 9.0], [9.0, 1.0]]))  # needs 1 - 4 / 7 = 0.43 < 0.5
    assert cooler_caps(far, place_fast(far), 0.5) is None
    # A site without room at the lower cap is not cooled: the RAN leaves k1 a single GPU, and c1's own 0.792
    # GPU-s/s fill it past 79 %.
    full = _stranded_problem(ran_share=np.array([1.0, 0.75]), rate=np.array([[200.0], [198.0]]))
    assert cooler_caps(full, place_fast(full), 0.5) is None
    with pytest.raises(ValueError, match="site_utilisation"):
        _stranded_problem(site_utilisation=np.array([0.8, 0.9]))


def test_fast_makes_room_for_a_demand_that_reaches_one_site(monkeypatch):
    """The packing fills a site with whatever reaches it first: here c1's vision (cheap, so placed first, and
    nearest k1) fills k1's one GPU, and c0's speech, which reaches k1 alone, finds no room. The repair moves
    part of c1's vision to k0, which it also reaches, and serves c0 at k1; without it c0 stays unserved."""
    import netpilot.optimize.ran.placement as placement

    services = [Service("vision", 4, 0.004, 25), Service("speech", 8, 0.04, 205)]
    problem = PlacementProblem(["c0", "c1"], ["k0", "k1"], services, np.array([[0.0, 5.0], [200.0, 0.0]]),
                               np.array([[50.0, 1.0], [2.0, 1.0]]), np.array([4.0, 4.0]), np.array([40.0, 40.0]),
                               np.array([0.5, 0.75]))
    fast = place_fast(problem)
    assert fast.violations(problem) == [] and fast.unserved(problem).sum() == pytest.approx(0.0, abs=1e-9)
    # c0's speech all at k1; of c1's vision, what c0 needed of k1's GPU (0.2 of 0.8 GPU-s/s) moved to k0.
    assert fast.share[0, 1, 1] == pytest.approx(1.0) and fast.share[1, 0] == pytest.approx([0.25, 0.75])
    assert fast.objective(problem) <= place_mip(problem, time_limit=60).objective(problem) + 1e-6
    monkeypatch.setattr(placement, "_repair", lambda problem, share, loaded, allowed: (share, loaded))
    assert place_fast(problem).unserved(problem)[0, 1] == pytest.approx(5.0)


def test_fast_turns_off_a_gpu_along_a_path_of_moves():
    """One-hop moves cannot help here, a path can: k0 carries 0.9 GPU-s/s on two GPUs (0.1 past one at the
    80 % cap), c0 also reaches k1 alone, and k1's two GPUs are full with c1, which also reaches k2, where c2
    leaves room (one service of 1 GPU-s per request, 5,010 ms SLO: sites 1-2 ms away qualify, 1 s away not).
    Moving 0.1 of c1 from k1 to k2 and 0.1 of c0 from k0 to k1 turns a GPU off (5 -> 4, the
    optimum: 2.9 GPU-s/s need 4 GPUs at 80 %)."""
    import netpilot.optimize.ran.placement as placement

    far = 1e3
    problem = PlacementProblem(["c0", "c1", "c2"], ["k0", "k1", "k2"], [Service("model", 4, 1.0, 5010)],
                               np.array([[0.9], [1.6], [0.4]]),
                               np.array([[1.0, 2.0, far], [far, 1.0, 2.0], [far, far, 1.0]]), np.full(3, 4.0),
                               np.full(3, 40.0), np.zeros(3))
    share = np.zeros((3, 1, 3))
    share[0, 0, 0] = share[1, 0, 1] = share[2, 0, 2] = 1.0
    loaded = np.ones((1, 3), dtype=bool)
    before = Placement(share, loaded, np.array([2.0, 2.0, 1.0]), "hand", 0.0)
    assert before.violations(problem) == []
    moved, moved_loaded = placement._drop_gpus(problem, share, loaded, problem.allowed())
    compute = np.einsum("csk,cs,s->k", moved, problem.rate, problem.gpu_seconds)
    after = Placement(moved, moved_loaded, placement._gpus_needed(compute, problem.memory * moved_loaded[0], problem),
                      "dropped", 0.0)
    assert after.violations(problem) == [] and after.gpus_on.sum() == 4
    assert moved.sum(axis=2) == pytest.approx(share.sum(axis=2))  # every request still served
    assert moved[0, 0] == pytest.approx([0.8 / 0.9, 0.1 / 0.9, 0]) and moved[1, 0] == pytest.approx([0, 1.5 / 1.6,
                                                                                                      0.1 / 1.6])
    assert place_fast(problem).objective(problem) == pytest.approx(place_mip(problem).objective(problem), abs=0.05)


def test_replacing_empties_a_site_whose_models_were_loaded_before():
    """Re-placement starts with every site that ran a model powered; two cells that both sites reach, and
    work that fits one GPU: the placement turns the second site off, as the MIP does (the memory a site frees
    is judged after its requests move, so a site's last GPU can come off)."""
    problem = PlacementProblem(["c0", "c1"], ["k0", "k1"], [Service("model", 4, 0.01, 200)],
                               np.array([[20.0], [20.0]]), np.array([[1.0, 1.5], [1.5, 1.0]]), np.full(2, 4.0),
                               np.full(2, 40.0), np.zeros(2), previous=np.ones((1, 2), dtype=bool))
    fast, mip = place_fast(problem), place_mip(problem)
    assert fast.violations(problem) == [] and mip.gpus_on.sum() == 1
    assert fast.gpus_on.sum() == 1
    assert fast.objective(problem) <= mip.objective(problem) * 1.01


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 6), st.floats(0.1, 6.0), st.booleans(),
       st.booleans())
def test_dropping_gpus_never_costs_and_breaks_nothing(seed, cells, sites, load, previous, tight_memory):
    """On random instances (models loaded before or not, memory that binds or not, a service that takes no GPU
    time): the GPU-dropping pass keeps every request served where it was served, leaves no violation, and never
    raises the objective; ``place_fast`` as a whole is never worse than before the pass."""
    import netpilot.optimize.ran.placement as placement

    rng = np.random.default_rng(seed)
    services = [Service("vision", 4, 0.004, 25), Service("speech", 8, 0.04, 215), Service("llm", 20, 0.2, 1010),
                Service("free", 2, 0.0, 30)]
    rate = rng.uniform(0, 1, (cells, 4)) * np.array([100, 8, 1, 5]) * load * (rng.random((cells, 4)) < 0.8)
    problem = PlacementProblem([f"c{i}" for i in range(cells)], [f"k{i}" for i in range(sites)], services, rate,
                               rng.uniform(0.5, 4, (cells, sites)), rng.integers(0, 8, sites).astype(float),
                               np.full(sites, 22.0 if tight_memory else 80.0), rng.uniform(0, 0.9, sites),
                               previous=rng.random((4, sites)) < 0.4 if previous else None,
                               site_utilisation=rng.uniform(0.5, 0.8, sites))
    allowed = problem.allowed()
    share, loaded = placement._repair(problem, *placement._pack(problem, allowed), allowed)

    def placed(sh, ld):
        compute = np.einsum("csk,cs,s->k", sh, problem.rate, problem.gpu_seconds)
        return Placement(sh, ld, placement._gpus_needed(compute, ld.astype(float).T @ problem.memory, problem), "", 0)

    before = placed(share, loaded)
    after = placed(*placement._drop_gpus(problem, share, loaded, allowed))
    assert before.violations(problem) == [] and after.violations(problem) == []
    assert after.share.sum(axis=2) == pytest.approx(before.share.sum(axis=2), abs=1e-9)
    assert after.objective(problem) <= before.objective(problem) + 1e-9
    fast = place_fast(problem)
    assert fast.violations(problem) == [] and fast.objective(problem) == pytest.approx(after.objective(problem))


def test_the_kernels_give_the_same_placement_uncompiled(monkeypatch):
    """Without Numba the kernels run as plain Python: the same placement, bit for bit."""
    import netpilot.optimize.ran.placement as placement
    from netpilot.model import kernels

    if not kernels.AVAILABLE:
        pytest.skip("numba not installed")
    base = _random_problem(3, cells=20, sites=6, load=2.0)
    # Plain, and again with sites run cooler and the models of a first placement loaded (a re-placement).
    problems = [base, replace(base, site_utilisation=np.array([0.8, 0.6, 0.7, 0.8, 0.5, 0.75]),
                              previous=place_fast(base).loaded)]
    compiled = [place_fast(problem) for problem in problems]
    for name in ("_pack_kernel", "_repair_kernel", "_drop_kernel", "_drop_all", "_gpus_for", "_put"):
        monkeypatch.setattr(placement, name, getattr(placement, name).py_func)
    for problem, fast in zip(problems, compiled, strict=True):
        plain = place_fast(problem)
        assert np.array_equal(fast.share, plain.share) and np.array_equal(fast.gpus_on, plain.gpus_on)
        assert np.array_equal(fast.loaded, plain.loaded)
