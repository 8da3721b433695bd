"""Traffic engineering: optimality on hand-solvable instances, feasibility on every staged one, certificates,
failure analysis against recomputation from scratch, IGP metrics, and the CLI's document."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from netpilot.cli import app
from netpilot.model.formats import attach_demands, import_demands, import_network
from netpilot.model.io import save_network
from netpilot.model.network import Demand, Link, Network, Router
from netpilot.optimize.te import kernels
from netpilot.optimize.te.failures import (
    evaluate_failures,
    failure_groups,
    reoptimise_failures,
    solve_robust_lp,
)
from netpilot.optimize.te.fast import solve_fast, solve_fast_flow
from netpilot.optimize.te.grow import solve_growing
from netpilot.optimize.te.igp import ecmp, hop_metrics, inverse_capacity_metrics, optimise_metrics, routing_from_metrics
from netpilot.optimize.te.lp import solve_lp, unrestricted_mlu
from netpilot.optimize.te.paths import PathCache, cache_root, k_shortest_paths
from netpilot.optimize.te.problem import build_problem

runner = CliRunner()


@pytest.fixture(autouse=True)
def _private_path_cache(tmp_path, monkeypatch):
    """The CLI caches path sets; each test gets its own cache, never the user's."""
    monkeypatch.setenv("NETPILOT_CACHE", str(tmp_path / "cache"))
REPETITA = "repetita/2016TopologyZooUCL_inverseCapacity"


def _net(links: list[tuple[str, str, float]], demands: list[tuple[str, str, float]], *, both: bool = True,
         down: set[tuple[str, str]] = frozenset()) -> Network:
    nodes = sorted({n for a, b, _ in links for n in (a, b)})
    all_links = []
    for a, b, c in links:
        pairs = [(a, b), (b, a)] if both else [(a, b)]
        all_links += [Link(source=s, target=t, capacity=c, state="down" if (s, t) in down else "up")
                      for s, t in pairs]
    return Network(name="t", nodes=[Router(id=n) for n in nodes], links=all_links,
                   demands=[Demand(source=s, target=t, volume=v) for s, t, v in demands])


def _triangle(direct: float, via: float) -> Network:
    return _net([("a", "b", direct), ("a", "c", via), ("c", "b", via)], [("a", "b", 10.0)])


# --- optimality by hand ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("direct", "via", "expected"), [(10, 10, 0.5), (10, 30, 0.25), (40, 10, 0.2)])
def test_mlu_matches_the_hand_solution(direct, via, expected):
    # Split x direct, 1-x via c: optimum where 10x/direct == 10(1-x)/via, MLU = 10 / (direct + via).
    problem = build_problem(_triangle(direct, via), cache_dir="")
    lp = solve_lp(problem)
    fast = solve_fast(problem, tolerance=1e-4)
    assert lp.mlu == pytest.approx(expected, rel=1e-6)
    assert lp.bound == pytest.approx(expected, rel=1e-6)
    assert fast.mlu == pytest.approx(expected, rel=2e-3)
    assert fast.bound <= expected + 1e-9 and fast.bound >= expected * 0.99


def test_flow_matches_max_flow_by_hand():
    # 50 units a->b over a 10 direct link and a 10 two-hop route: at most 20 fits.
    network = _net([("a", "b", 10.0), ("a", "c", 10.0), ("c", "b", 10.0)], [("a", "b", 50.0)])
    problem = build_problem(network, cache_dir="")
    lp = solve_lp(problem, "flow")
    fast = solve_fast_flow(problem, tolerance=1e-3)
    assert lp.total_flow == pytest.approx(20.0)
    assert lp.bound == pytest.approx(20.0, rel=1e-6)
    assert fast.mlu <= 1.0 + 1e-9
    assert 0.97 * 20.0 <= fast.total_flow <= 20.0 + 1e-9
    assert fast.bound >= 20.0 - 1e-6


def test_growing_paths_reaches_the_unrestricted_optimum():
    # With one path per pair the a->b demand is stuck on the direct link; a second route exists.
    network = _triangle(10.0, 10.0)
    problem = build_problem(network, k=1, cache_dir="")
    assert solve_lp(problem).mlu == pytest.approx(1.0)
    optimum, _ = unrestricted_mlu(problem)
    assert optimum == pytest.approx(0.5)
    grown = solve_growing(problem, solve_lp)
    assert grown.mlu == pytest.approx(0.5, rel=1e-6)
    assert grown.info["paths_added"] == 1
    assert grown.info["unrestricted_bound"] == pytest.approx(0.5, rel=1e-6)


def test_warm_start_needs_fewer_iterations(te_data):
    network = _repetita(te_data, "GtsCe")
    problem = build_problem(network, cache_dir="")
    cold = solve_fast(problem)
    nudged = problem.with_volume(problem.volume * np.random.default_rng(1).uniform(0.97, 1.03, len(problem.volume)))
    warm = solve_fast(nudged, x0=cold.x)
    fresh = solve_fast(nudged)
    assert warm.iterations < fresh.iterations
    assert warm.mlu <= solve_lp(nudged).mlu * 1.01


# --- every staged instance ----------------------------------------------------------------------------------

def _repetita(te_data: Path, name: str, matrix: int = 0) -> Network:
    base = te_data / REPETITA
    network = import_network(base / f"{name}.graph")
    return attach_demands(network, import_demands(base / f"{name}.{matrix:04d}.demands", network))


def _check_routing(routing) -> None:
    """Fractions are a distribution per pair; each path is a walk from its pair's source to its target."""
    problem = routing.problem
    x, paths, arrays = routing.x, problem.paths, problem.arrays
    assert (x >= -1e-12).all()
    assert np.allclose(problem.pair_sum(x), 1.0, atol=1e-9)
    src, dst = arrays.src[paths.path_links], arrays.dst[paths.path_links]
    first, last = paths.path_ptr[:-1], paths.path_ptr[1:] - 1
    assert (src[first] == problem.pairs[paths.path_pair, 0]).all()
    assert (dst[last] == problem.pairs[paths.path_pair, 1]).all()
    inner = np.ones(len(src), dtype=bool)
    inner[last] = False
    assert (dst[inner] == src[np.flatnonzero(inner) + 1]).all()  # consecutive links meet (flow conservation)
    assert arrays.up[paths.path_links].all()


def _staged_instances(te_data: Path):
    for graph in sorted((te_data / REPETITA).glob("*.graph")):
        yield graph.stem, _repetita(te_data, graph.stem)
    figret = te_data / "figret"
    for folder, split, k, unit in (("GEANT", "test", 7, "bit/s"), ("Facebook_pod_a", "test", 5, "Mbit/s"),
                                   ("Facebook_pod_b", "test", 5, "Mbit/s")):
        network = import_network(figret / folder / f"{folder}.json", unit=unit)
        yield folder, attach_demands(network, import_demands(figret / folder / split / f"{k}.hist", network,
                                                             unit=unit))
    b4 = import_network(te_data / "teal" / "topologies" / "B4.json")
    yield "B4", attach_demands(b4, import_demands(te_data / "teal" / "derived" / "B4_real_tms_36x12x12.npy", b4))
    for name, archive in (("abilene", "directed-abilene-zhang-5min-over-6months-ALL.tar.gz"),
                          ("germany50", "directed-germany50-DFN-aggregated-1day-over-1month.tar.gz")):
        network = import_network(te_data / "sndlib" / "topologies" / f"{name}.xml", default_capacity=10000.0)
        yield f"sndlib-{name}", attach_demands(network, import_demands(te_data / "sndlib" / archive, network),
                                               matrix="peak")


def test_fast_is_feasible_and_near_the_lp_on_every_staged_instance(te_data, tmp_path):
    seen = []
    for name, network in _staged_instances(te_data):
        problem = build_problem(network, cache_dir=tmp_path)
        fast = solve_fast(problem)
        _check_routing(fast)
        assert fast.bound <= fast.mlu * (1 + 1e-9), name
        if problem.paths.n_paths <= 80_000:
            lp = solve_lp(problem)
            _check_routing(lp)
            assert lp.mlu <= fast.mlu * (1 + 1e-7), name  # the LP is optimal: nothing beats it
            assert fast.bound <= lp.mlu * (1 + 1e-7), name  # the certificate never overstates
            assert fast.mlu <= lp.mlu * 1.01, name
        seen.append(name)
    assert len(seen) >= 18


def test_geant_unrestricted_optimum_matches_the_published_opt(te_data):
    figret = te_data / "figret" / "GEANT"
    network = import_network(figret / "GEANT.json", unit="bit/s")
    series = import_demands(figret / "test" / "7.hist", network, unit="bit/s")
    for index in (0, 300):
        problem = build_problem(attach_demands(network, series, matrix=index), cache_dir="")
        optimum, _ = unrestricted_mlu(problem)
        assert optimum == pytest.approx(series.optimal_mlu[index], rel=1e-5)
        grown = solve_growing(problem, solve_lp)
        assert grown.mlu == pytest.approx(series.optimal_mlu[index], rel=1e-5)


# --- failures -------------------------------------------------------------------------------------------------

def _loads_from_scratch(network: Network, paths: list[dict]) -> dict[tuple[str, str], float]:
    load: dict[tuple[str, str], float] = {}
    for entry in paths:
        for path in entry["paths"]:
            for a, b in zip(path["nodes"], path["nodes"][1:]):
                load[(a, b)] = load.get((a, b), 0.0) + entry["volume"] * path["fraction"]
    return load


def test_failure_evaluation_matches_recomputation_from_scratch(te_data):
    network = _repetita(te_data, "Geant2012")
    problem = build_problem(network, cache_dir="")
    routing = solve_fast(problem)
    report = evaluate_failures(routing)
    arrays, paths = problem.arrays, problem.paths
    assert len(report.failed) == arrays.n_links // 2
    capacity = {(lk.source, lk.target): lk.capacity for lk in network.links}
    rng = np.random.default_rng(7)
    for s in rng.choice(len(report.failed), size=8, replace=False):
        failed = {(arrays.node_ids[arrays.src[e]], arrays.node_ids[arrays.dst[e]]) for e in report.failed[s]}
        rerouted, stranded = [], 0.0
        for i, (_a, _b) in enumerate(problem.pairs):
            candidates = [(paths.nodes_of(q, arrays), routing.x[q]) for q in range(paths.pair_ptr[i],
                                                                                  paths.pair_ptr[i + 1])]
            alive = [(nodes, f) for nodes, f in candidates
                     if not any(hop in failed for hop in itertools.pairwise(nodes))]
            if not alive:
                stranded += problem.volume[i]
                continue
            total = sum(f for _, f in alive)
            shares = [f / total for _, f in alive] if total > 0 else [1 / len(alive)] * len(alive)
            rerouted.append({"volume": problem.volume[i],
                             "paths": [{"nodes": n, "fraction": x} for (n, _), x in zip(alive, shares)]})
        load = _loads_from_scratch(network, rerouted)
        expected = max(v / capacity[k] for k, v in load.items() if k not in failed)
        assert report.mlu[s] == pytest.approx(expected, rel=1e-9)
        assert report.stranded[s] == pytest.approx(stranded)


def test_failure_groups_pair_both_directions():
    network = _net([("a", "b", 1.0), ("b", "c", 1.0), ("a", "c", 1.0)], [("a", "b", 1.0)])
    groups = failure_groups(network.arrays())
    assert len(set(groups)) == 3
    arrays = network.arrays()
    for g in set(groups):
        members = np.flatnonzero(groups == g)
        assert len(members) == 2
        a, b = members
        assert (arrays.src[a], arrays.dst[a]) == (arrays.dst[b], arrays.src[b])
    assert len(set(failure_groups(arrays, bidirectional=False))) == 6


def test_reoptimising_after_failures_never_does_worse_than_rerouting(te_data):
    network = _repetita(te_data, "Abilene")
    problem = build_problem(network, cache_dir="")
    routing = solve_fast(problem)
    moved = evaluate_failures(routing)
    for workers, scope in ((1, "whole"), (2, "whole"), (1, "touched"), (2, "touched")):
        report, answers = reoptimise_failures(routing, workers=workers, scope=scope)
        assert (report.mlu <= moved.mlu * (1 + 1e-3)).all()
        for failed, answer, mlu in zip(report.failed, answers, report.mlu):
            r = answer.routing()
            assert r.problem.utilisation(r.x)[failed].max() == 0.0
            assert np.allclose(problem.pair_sum(r.x)[problem.pair_sum(r.x) > 0], 1.0)
            assert r.mlu == pytest.approx(mlu, rel=1e-9)  # the report's MLU is the whole network's
            assert answer.bound <= mlu * (1 + 1e-9)



needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="the compiled kernels need the [fast] extra (Numba)")


@needs_numba
def test_the_path_cost_kernel_adds_as_scipy_does(te_data):
    # Bit for bit, on a real path set's incidence and random prices: the solver's decisions must not depend on it.
    problem = build_problem(_repetita(te_data, "GtsCe"), cache_dir="")
    rng = np.random.default_rng(7)
    columns = rng.random((problem.arrays.n_links, 3)) ** 4
    paths = np.sort(rng.choice(problem.paths.n_paths, problem.paths.n_paths // 3, replace=False))
    active = problem.incidence_csc[:, paths]
    assert np.array_equal(kernels.path_sums(active.indptr, active.indices, active.data, columns),
                          active.T @ columns)
    # A path over a link twice (an entry of 2): weighted as SciPy weighs it.
    doubled = active.copy()
    doubled.data[::7] = 2.0
    assert np.array_equal(kernels.path_sums(doubled.indptr, doubled.indices, doubled.data, columns),
                          doubled.T @ columns)


@needs_numba
def test_the_compiled_projection_step_is_the_numpy_step():
    # Ties, zero costs, barred (infinite) paths, idle paths and pairs of up to 19 paths, against fast.numpy_step.
    from netpilot.optimize.te.fast import numpy_step

    rng = np.random.default_rng(3)
    for _ in range(300):
        counts = rng.integers(2, 20, rng.integers(1, 30))
        starts = np.cumsum(counts) - counts
        owner = np.repeat(np.arange(len(counts)), counts)
        n = int(counts.sum())
        cost = np.round(rng.random(n) * 4, 1) * rng.integers(0, 2, n)  # many ties, many zeros
        barred = rng.random(n) < 0.1
        barred[starts] = False  # a pair keeps at least one path, as the solver's active pairs do
        cost[barred] = np.inf
        curvature = rng.random((n, 3))[:, 1] * rng.integers(0, 2, n)
        xa = np.where(rng.random(n) < 0.3, 0.0, rng.random(n))
        xa[barred] = 0.0
        other = rng.random((n, 3))[:, 2]
        cheapest, dx, other_cheapest = kernels.projection_step(starts, cost, curvature, xa, 1.7, other)
        assert np.array_equal(cheapest, np.minimum.reduceat(cost, starts))
        assert np.array_equal(other_cheapest, np.minimum.reduceat(other, starts))
        assert np.array_equal(dx, numpy_step(starts, owner, cost, cheapest, curvature, xa, 1.7))


@needs_numba
def test_a_process_forked_after_the_multi_core_kernel_ran_can_run_it():
    # GNU OpenMP, Numba's default threading layer here, kills a child that starts a parallel kernel after the
    # parent ran one; the layer the kernels choose does not.
    import multiprocessing

    rng = np.random.default_rng(5)
    matrix = __import__("scipy.sparse", fromlist=["csc_matrix"]).random(40, 600, density=0.2, format="csc",
                                                                        random_state=5)
    columns = rng.random((40, 2))
    kernels.path_sums(matrix.indptr, matrix.indices, matrix.data, columns)
    child = multiprocessing.get_context("fork").Process(
        target=kernels.path_sums, args=(matrix.indptr, matrix.indices, matrix.data, columns))
    child.start()
    child.join(60)
    assert child.exitcode == 0


@needs_numba
@pytest.mark.parametrize("name", ["Abilene", "GtsCe"])
def test_the_compiled_solver_gives_the_same_routing_as_numpy(te_data, monkeypatch, name):
    # Every entry count is worth the threads here, so the multi-core kernel runs too, not only the one-pass step.
    monkeypatch.setattr(kernels, "PARALLEL_ENTRIES", 0)
    problem = build_problem(_repetita(te_data, name), cache_dir="")
    cold = {compiled: solve_fast(problem, compiled=compiled) for compiled in (True, False)}
    assert np.array_equal(cold[True].x, cold[False].x)
    assert cold[True].iterations == cold[False].iterations and cold[True].bound == cold[False].bound
    # A failure the base routing's prices cannot certify at once, so that the solver iterates around it.
    for link in np.argsort(-problem.loads(cold[False].x) / problem.capacity)[:20]:
        failed = {False: solve_fast(problem, start=cold[False], failed_links=np.array([link]), compiled=False)}
        if failed[False].iterations > 0:
            break
    assert failed[False].iterations > 0
    failed[True] = solve_fast(problem, start=cold[True], failed_links=np.array([link]), compiled=True)
    assert np.array_equal(failed[True].x, failed[False].x)
    assert np.array_equal(failed[True].info["load"], problem.loads(failed[True].x))


@needs_numba
def test_failures_fork_their_workers_safely_after_the_multi_core_kernel_ran(te_data, monkeypatch):
    # GNU OpenMP, Numba's default threading layer here, kills a process forked after it ran: the workers must
    # live, and answer as one process does.
    monkeypatch.setattr(kernels, "PARALLEL_ENTRIES", 0)
    problem = build_problem(_repetita(te_data, "Abilene"), cache_dir="")
    routing = solve_fast(problem, compiled=True)
    one, _ = reoptimise_failures(routing, workers=1)
    two, _ = reoptimise_failures(routing, workers=2)
    assert np.array_equal(one.mlu, two.mlu)


def test_robust_lp_guarantee_holds_under_every_single_failure():
    ring = [("a", "b", 10.0), ("b", "c", 10.0), ("c", "d", 10.0), ("d", "e", 10.0), ("e", "a", 10.0)]
    demands = [(s, t, 2.0) for s in "abcde" for t in "abcde" if s != t]
    problem = build_problem(_net(ring, demands), cache_dir="")
    robust = solve_robust_lp(problem)
    assert robust.info["unprotected_pairs"] == 0
    worst = evaluate_failures(robust).mlu.max()
    assert worst <= robust.info["guaranteed_mlu"] + 1e-7
    plain = solve_lp(problem)
    assert evaluate_failures(plain).mlu.max() >= worst - 1e-7
    assert robust.mlu >= plain.mlu - 1e-9


# --- IGP metrics ----------------------------------------------------------------------------------------------

def test_ecmp_splits_evenly_over_equal_cost_paths():
    # Square a-b-d, a-c-d: two equal-cost paths a->d, half each.
    network = _net([("a", "b", 10.0), ("b", "d", 10.0), ("a", "c", 10.0), ("c", "d", 10.0)], [("a", "d", 8.0)])
    problem = build_problem(network, cache_dir="")
    routing = routing_from_metrics(problem, hop_metrics(problem.arrays))
    (entry,) = routing.pair_paths()
    assert sorted(p["nodes"] for p in entry["paths"]) == [["a", "b", "d"], ["a", "c", "d"]]
    assert [p["fraction"] for p in entry["paths"]] == [0.5, 0.5]
    assert routing.mlu == pytest.approx(0.4)


def test_ecmp_loads_equal_loads_of_the_enumerated_paths(te_data):
    problem = build_problem(_repetita(te_data, "Geant2012"), cache_dir="")
    metric = problem.arrays.metric
    routing = routing_from_metrics(problem, metric)
    assert np.allclose(routing.problem.loads(routing.x), ecmp(problem, metric).loads, rtol=1e-12, atol=1e-12)
    _check_routing(routing)


def test_metric_search_beats_the_textbook_metrics(te_data):
    problem = build_problem(_repetita(te_data, "Abilene"), cache_dir="")
    found = optimise_metrics(problem, max_evaluations=150, time_limit=None)
    hop = routing_from_metrics(problem, hop_metrics(problem.arrays)).mlu
    inverse = routing_from_metrics(problem, inverse_capacity_metrics(problem.arrays)).mlu
    assert found.mlu < min(hop, inverse)
    assert found.mlu >= solve_lp(problem).mlu * (1 - 1e-9) * 0.5  # sanity: not below any routing's optimum
    metric = found.info["metric"]
    assert metric.min() >= 1 and metric.max() <= 65535


# --- CLI ------------------------------------------------------------------------------------------------------

def _mlu_from_document(network: Network, doc: dict) -> float:
    load = _loads_from_scratch(network, doc["paths"])
    capacity = {(lk.source, lk.target): lk.capacity for lk in network.links}
    return max(v / capacity[k] for k, v in load.items())


@pytest.mark.parametrize("method", ["lp", "fast", "igp"])
def test_cli_document_lets_anyone_recompute_the_mlu(te_data, tmp_path, method):
    base = te_data / REPETITA
    out = tmp_path / "te.json"
    result = runner.invoke(app, ["te", "solve", "--network", str(base / "Abilene.graph"), "--demands",
                                 str(base / "Abilene.0000.demands"), "--method", method, "--json", str(out),
                                 "--failures", "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    network = _repetita(te_data, "Abilene")
    assert doc["objective"] == "mlu" and doc["solve_seconds"] > 0
    assert _mlu_from_document(network, doc) == pytest.approx(doc["mlu"], rel=1e-6)
    for entry in doc["paths"]:
        assert sum(p["fraction"] for p in entry["paths"]) == pytest.approx(1.0, abs=1e-6)
    assert doc["failures"]["scenarios"] == 14
    assert ("metrics" in doc) == (method == "igp")
    assert doc["total_flow"] == pytest.approx(doc["total_demand"])


def test_cli_flow_objective_fractions_are_the_satisfied_share(tmp_path):
    network = _net([("a", "b", 10.0), ("a", "c", 10.0), ("c", "b", 10.0)], [("a", "b", 50.0)])
    path = tmp_path / "n.yaml"
    save_network(network, path)
    out = tmp_path / "f.json"
    result = runner.invoke(app, ["te", "solve", "--network", str(path), "--objective", "flow", "--method", "lp",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    (entry,) = doc["paths"]
    assert sum(p["fraction"] for p in entry["paths"]) == pytest.approx(20.0 / 50.0)
    assert doc["total_flow"] == pytest.approx(20.0)


@pytest.mark.parametrize(("links", "demands", "down", "message"), [
    ([("a", "b", 10.0), ("c", "d", 10.0)], [("a", "d", 1.0)], set(), "not connected"),
    ([("a", "b", 10.0), ("b", "c", 0.0)], [("a", "c", 1.0)], set(), "zero capacity"),
    ([("a", "b", 10.0)], [], set(), "no demands"),
    ([("a", "b", 10.0), ("b", "c", 10.0)], [("a", "c", 1.0)], {("b", "c")}, "no path between them"),
])
def test_cli_refuses_unroutable_input_clearly(tmp_path, links, demands, down, message):
    network = _net(links, demands, down=down)
    path = tmp_path / "n.yaml"
    from netpilot.model.io import dumps_network
    path.write_text(dumps_network(network))
    result = runner.invoke(app, ["te", "solve", "--network", str(path), "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("entries", "message"), [
    ([{"source": "a", "target": "zz", "volume": 1.0}], "unknown node 'zz'"),
    ([{"source": "a", "target": "a", "volume": 1.0}], "to itself"),
    ([{"source": "a", "target": "b", "volume": 0.0}], "empty"),
])
def test_cli_refuses_bad_demand_files_naming_the_entry(tmp_path, entries, message):
    path = tmp_path / "n.yaml"
    save_network(_net([("a", "b", 10.0)], []), path)
    demands = tmp_path / "d.json"
    demands.write_text(json.dumps({"demands": entries}))
    result = runner.invoke(app, ["te", "solve", "--network", str(path), "--demands", str(demands),
                                 "--json", str(tmp_path / "o.json")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.json").exists()


def test_cli_demand_list_and_matrix_give_the_same_problem(te_data, tmp_path):
    base = te_data / REPETITA
    network = _repetita(te_data, "Abilene")
    arrays = network.arrays()
    matrix = np.zeros((arrays.n_nodes, arrays.n_nodes))
    for d in network.demands:
        matrix[arrays.index[d.source], arrays.index[d.target]] += d.volume
    np.save(tmp_path / "m.npy", matrix)
    docs = []
    for demands in (base / "Abilene.0000.demands", tmp_path / "m.npy"):
        out = tmp_path / f"{demands.suffix}.json"
        result = runner.invoke(app, ["te", "solve", "--network", str(base / "Abilene.graph"), "--demands",
                                     str(demands), "--method", "lp", "--json", str(out)])
        assert result.exit_code == 0, result.output
        docs.append(json.loads(out.read_text()))
    assert docs[0]["total_demand"] == pytest.approx(docs[1]["total_demand"])
    assert docs[0]["mlu"] == pytest.approx(docs[1]["mlu"], rel=1e-9)
    assert len(docs[0]["paths"]) == len(docs[1]["paths"]) == len(build_problem(network, cache_dir="").pairs)


def test_path_cache_is_per_topology_and_follows_a_changed_link(tmp_path):
    ring = [("a", "b", 10.0), ("b", "c", 10.0), ("c", "d", 10.0), ("d", "a", 10.0), ("a", "c", 10.0)]
    network = _net(ring, [("a", "c", 1.0)])
    arrays = network.arrays()
    pairs = np.array([[arrays.index["a"], arrays.index["c"]]])
    cache = tmp_path / "c"
    first = k_shortest_paths(arrays, pairs, 3, cache_dir=cache)
    files = list((cache / "paths").glob("*.npz"))
    assert len(files) == 1
    assert first.paths_per_pair.tolist() == [3]  # a-c direct, a-b-c, a-d-c
    # More pairs on the same topology extend the same file; the first pair's paths come back unchanged.
    more = np.array([[arrays.index["b"], arrays.index["d"]], *pairs])
    again = k_shortest_paths(arrays, more, 3, cache_dir=cache)
    assert list((cache / "paths").glob("*.npz")) == files
    assert [again.links_of(q).tolist() for q in range(again.pair_ptr[1], again.pair_ptr[2])] == \
        [first.links_of(q).tolist() for q in range(first.n_paths)]
    assert PathCache.open(arrays, 3, "hop", cache).base.n_pairs == 2
    # Take the direct link down: another topology, another file, and no path uses the link that is down.
    cut = _net(ring, [("a", "c", 1.0)], down={("a", "c")}).arrays()
    after = k_shortest_paths(cut, pairs, 3, cache_dir=cache)
    assert len(list((cache / "paths").glob("*.npz"))) == 2
    assert after.paths_per_pair.tolist() == [2]
    assert not any(not cut.up[e] for e in after.path_links)


def test_cache_location_follows_netpilot_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("NETPILOT_CACHE", str(tmp_path / "np"))
    assert cache_root() == tmp_path / "np"
    monkeypatch.setenv("NETPILOT_CACHE", "")
    assert cache_root() is None
    monkeypatch.delenv("NETPILOT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "netpilot"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "netpilot"


def test_cli_default_grows_paths_until_within_one_percent_of_any_routing_and_caches_them(te_data, tmp_path):
    base = te_data / REPETITA
    network = _repetita(te_data, "Abilene")
    optimum, _ = unrestricted_mlu(build_problem(network, cache_dir=""))
    args = ["te", "solve", "--network", str(base / "Abilene.graph"), "--demands", str(base / "Abilene.0000.demands"),
            "--paths", "1"]
    fixed = tmp_path / "fixed.json"
    assert runner.invoke(app, [*args, "--no-grow", "--json", str(fixed)]).exit_code == 0
    assert json.loads(fixed.read_text())["mlu"] > 1.05 * optimum  # one path per pair falls well short
    answers = []
    for name in ("first.json", "cached.json"):
        result = runner.invoke(app, [*args, "--json", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        answers.append(json.loads((tmp_path / name).read_text()))
    first, cached = answers
    for doc in answers:
        assert doc["mlu"] <= 1.01 * optimum + 1e-9
        assert doc["unrestricted_mlu_lower_bound"] <= optimum * (1 + 1e-6)
        assert doc["mlu"] <= 1.01 * doc["unrestricted_mlu_lower_bound"]  # certified, not just lucky
        assert _mlu_from_document(network, doc) == pytest.approx(doc["mlu"], rel=1e-6)
    assert first["paths_added"] > 0 and first["paths_reused"] == 0
    assert cached["paths_reused"] >= first["paths_added"] and cached["paths_added"] == 0


# --- tactical TE: explicit paths on top of the IGP ------------------------------------------------------------


def _busy_sample():
    """The bundled network at its busy hour, demand raised until the IGP overloads it."""
    from netpilot.model.io import load_network
    from netpilot.model.sample import bundled_network_path
    from netpilot.telemetry.sim.simulator import Simulator

    network = load_network(bundled_network_path())
    sim = Simulator(network, noise=0.0)
    expected = sim.expected()
    arrays = network.arrays()
    capacity = np.where(expected.capacity > 0, expected.capacity, np.inf)
    # Scaled so that the IGP's hottest link is at 130 %, whatever the metrics and the hour.
    igp = float((sim.link_loads(expected.volume, arrays.metric, arrays.up) / capacity).max())
    volume = expected.volume * 1.3 / igp
    return network, sim, arrays, capacity, volume


def test_tactical_paths_relieve_the_hottest_links_with_valid_paths():
    from netpilot.model.policies import to_policies
    from netpilot.optimize.te.tactical import plan_tactical

    _, sim, arrays, capacity, volume = _busy_sample()
    igp = float((sim.link_loads(volume, arrays.metric, arrays.up) / capacity).max())
    plan = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, capacity, max_pairs=20)
    assert plan is not None and 0 < len(plan.paths) <= 20
    for (a, b), paths in plan.paths.items():
        assert sum(share for _, share in paths) == pytest.approx(1.0)
        for links, share in paths:
            assert share > 0 and arrays.src[links[0]] == a and arrays.dst[links[-1]] == b
            assert (arrays.dst[links[:-1]] == arrays.src[links[1:]]).all() and arrays.up[links].all()
    # The plan's own loads, routed by the simulator, are what the LP promised, and well below the IGP's.
    sim.set_policies(to_policies(arrays, plan.paths))
    steered = float((sim.link_loads(volume, arrays.metric, arrays.up) / capacity).max())
    assert steered == pytest.approx(plan.mlu, rel=1e-6)
    assert steered < igp - 0.1


def test_tactical_paths_keep_a_bounded_failure_within_its_bound():
    """Bounding the worst single failure of the unbounded plan at the IGP's own MLU under that failure: the
    LP keeps it there (in its model, where a failed path's share goes to the IGP)."""
    from netpilot.model.whatif import failure_scenarios
    from netpilot.optimize.te.tactical import plan_tactical

    _, sim, arrays, capacity, volume = _busy_sample()
    free = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, capacity, max_pairs=20)
    on_paths = {int(e) for paths in free.paths.values() for links, _ in paths for e in links}
    cases = []
    for scenario in failure_scenarios(arrays):
        if on_paths & set(scenario.tolist()):
            up = arrays.up.copy()
            up[scenario] = False
            cases.append(up)
    today = np.array([float((sim.link_loads(volume, arrays.metric, up) / capacity)[up].max()) for up in cases])
    bounded = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, capacity, max_pairs=20,
                            cases=cases, allowed=today)
    assert bounded is not None and bounded.excess == pytest.approx(0.0, abs=1e-6)
    assert bounded.mlu >= free.mlu - 1e-9  # the bounds cost something, or nothing


def test_bounded_score_charges_the_excess_over_bounds_and_exempts_unmoved_cases():
    from netpilot.optimize.te.igp import EXCESS_WEIGHT, bound_excess, bounded_score

    allowed, reference = np.array([1.0, 1.0]), np.array([1.2, 0.5])
    unmoved = np.array([[0.8, 0.7], [1.2, 0.1], [0.9, 0.2]])  # case 1 stays at its 1.2 today: not its doing
    assert bound_excess(unmoved, allowed, reference).tolist() == [0.0, 0.0]
    moved = np.array([[0.7, 0.6], [1.1, 1.15], [0.9, 0.2]])  # case 1 moved and over its bound by 0.15
    assert bound_excess(moved, allowed, reference) == pytest.approx([0.15, 0.0])
    score, row = bounded_score(moved, allowed, reference)
    assert score[0] == pytest.approx(0.7 + EXCESS_WEIGHT * 0.15)
    assert row.tolist() == moved[1].tolist()  # the search works on the case that breaks its bound
    assert bounded_score(unmoved, allowed, reference)[1].tolist() == unmoved[0].tolist()


def test_metric_search_keeps_the_best_plan_it_saw_within_the_bounds_beside_its_best():
    """A small excess under a bounded case buys much MLU, so the search's best breaks the bound (a caller would
    refuse it); the best plan it passed through that keeps every bound is kept beside it."""
    from netpilot.optimize.te.igp import bound_excess, search_metrics

    allowed, reference = np.array([1.0]), np.array([0.8])

    def utilisation(m: np.ndarray) -> np.ndarray:  # link 0 heavier: its traffic moves; past 12 a failure suffers
        if m[0] <= 10:
            return np.array([[1.0, 0.3, 0.2], [0.8, 0.3, 0.2]])
        if m[0] <= 12:
            return np.array([[0.9, 0.5, 0.2], [0.8, 0.3, 0.2]])  # the failure case as today: not moved
        return np.array([[0.5, 0.5, 0.4], [1.05, 0.3, 0.2]])  # moved, 0.05 over what it may reach

    search = search_metrics(utilisation, [np.full(3, 10, dtype=np.int64)], max_evaluations=50, time_limit=None,
                            bounds=(allowed, reference))
    assert search.best[0] > 12 and bound_excess(utilisation(search.best), allowed, reference).any()
    assert search.within_bounds is not None and 10 < search.within_bounds[0] <= 12
    assert utilisation(search.within_bounds)[0].max() == pytest.approx(0.9)
    unbounded = search_metrics(lambda m: utilisation(m)[0], [np.full(3, 10, dtype=np.int64)], max_evaluations=50,
                               time_limit=None)
    assert unbounded.best[0] > 12 and unbounded.within_bounds is None  # no bounds, nothing beside the best


def test_metric_search_takes_no_move_that_only_floating_point_noise_calls_better():
    """Metrics that route alike must tie however their loads were summed: a search over a model whose loads
    never change (only their last bits do) keeps the metrics it started from."""
    from netpilot.optimize.te.igp import search_metrics

    flat = np.linspace(0.2, 0.9, 12)
    calls = []

    def drifting(m: np.ndarray) -> np.ndarray:  # every evaluation a few bits lower than the last
        calls.append(1)
        return flat * (1.0 - 4e-16 * len(calls))

    start = np.full(12, 10, dtype=np.int64)
    search = search_metrics(drifting, [start], max_evaluations=200, time_limit=None)
    assert search.evaluations > 20 and np.array_equal(search.best, start)


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_metric_search_with_trials_side_by_side_finds_what_one_at_a_time_finds(threads):
    """Trials routed several at a time are taken in order, and those after an improving one are not counted:
    the same best metrics and the same count of evaluations as one at a time, with bounds on failure cases and
    without, and the same trials asked (some more, never fewer)."""
    from netpilot.model.network import Demand, Link, Network, Router
    from netpilot.model.routing import ecmp_flows
    from netpilot.optimize.te.igp import reverse_links, search_metrics

    rng = np.random.default_rng(3)
    names = [f"r{i}" for i in range(14)]
    edges = {(i, int(rng.integers(i))) for i in range(1, 14)} | {(5, 1), (9, 2), (13, 4), (12, 6), (11, 3), (8, 0)}
    links = [Link(source=names[a], target=names[b], capacity=float(rng.choice([10, 40, 100])), metric=1)
             for x, y in sorted(edges) for a, b in ((x, y), (y, x))]
    demands = [Demand(source=a, target=b, volume=float(rng.uniform(1, 6))) for a in names for b in names if a != b]
    arrays = Network(nodes=[Router(id=x) for x in names], links=links, demands=demands).arrays()
    pairs, volume = arrays.demand_pairs()
    failed = arrays.up.copy()
    failed[[0, 1]] = False
    cases = [arrays.up, failed]

    def utilisation(m: np.ndarray, asked: list) -> np.ndarray:
        asked.append(m.tobytes())
        return np.array([ecmp_flows(arrays, m, pairs, volume, up).loads / arrays.capacity for up in cases])

    for bounds in (None, (np.array([0.9]), np.array([1.4]))):
        one_asked: list[bytes] = []
        side_asked: list[bytes] = []
        start = arrays.metric.copy()
        common = {"partner": reverse_links(arrays), "max_evaluations": 60, "time_limit": None, "seed": 4,
                  "bounds": bounds}
        one = search_metrics(lambda m, a=one_asked, b=bounds: utilisation(m, a) if b else utilisation(m, a)[0],
                             [start], **common)
        side = search_metrics(lambda m, a=side_asked, b=bounds: utilisation(m, a) if b else utilisation(m, a)[0],
                              [start], threads=threads, **common)
        assert np.array_equal(one.best, side.best) and one.evaluations == side.evaluations
        assert (one.within_bounds is None) == (side.within_bounds is None)
        if one.within_bounds is not None:
            assert np.array_equal(one.within_bounds, side.within_bounds)
        assert not np.array_equal(one.best, start)  # it did move
        assert set(one_asked) <= set(side_asked)


def test_tactical_paths_plan_on_top_of_the_paths_the_network_runs():
    """A second plan keeps every pair the network already steers (it may re-plan them) and adds the pairs now
    behind the hottest links, choosing them as the network routes today, explicit paths included; its MLU is no
    worse than the first plan's, which it could keep."""
    from netpilot.model.policies import compile_policies, to_policies
    from netpilot.optimize.te.tactical import plan_tactical

    _, sim, arrays, capacity, volume = _busy_sample()
    first = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, capacity, max_pairs=10)
    current = compile_policies(arrays, to_policies(arrays, first.paths))
    second = plan_tactical(arrays, sim.pairs, volume * 1.1, arrays.metric, arrays.up, capacity, max_pairs=10,
                           current=current)
    assert set(first.paths) < set(second.paths) and len(second.paths) <= 20
    assert second.mlu <= first.mlu * 1.1 + 1e-6  # the first plan, kept, at 1.1 times the demand
    capped = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, capacity, max_pairs=10,
                           max_steered=10, current=current)
    assert set(capped.paths) == set(first.paths)  # no room for more: the steered pairs are re-planned alone
