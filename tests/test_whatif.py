"""The incremental single-failure what-if gives the loads that routing everything again gives, ECMP included."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from netpilot.model import kernels
from netpilot.model.network import Demand, Link, Network, Router
from netpilot.model.routing import ecmp_flows
from netpilot.model.whatif import failure_scenarios, what_if

#: Both implementations: NumPy, and the Numba kernel where the ``fast`` extra is installed (CI installs it).
IMPLEMENTATIONS = pytest.mark.parametrize("compiled", [
    pytest.param(False, id="numpy"),
    pytest.param(True, id="numba", marks=pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed"))])


def _rerouted(arrays, pairs, volume, failed):
    """The oracle: route every demand again with the failed links down."""
    up = arrays.up.copy()
    up[failed] = False
    routing = ecmp_flows(arrays, arrays.metric, pairs, volume, up)
    return routing.loads, float(volume[routing.unreachable].sum())


def _check(network: Network, compiled: bool, together: int = 1) -> None:
    """The what-if against re-routing, every scenario: single link failures, or ``together`` of them at once."""
    arrays = network.arrays()
    pairs, volume = arrays.demand_pairs()
    routing = ecmp_flows(arrays, arrays.metric, pairs, volume)
    singles = failure_scenarios(arrays)
    scenarios = [np.concatenate(singles[i:i + together]) for i in range(0, len(singles) - together + 1, together)]
    mlu, worst, stranded, loads = what_if(arrays, routing, volume, scenarios, compiled=compiled)
    for k, failed in enumerate(scenarios):
        expected, cut = _rerouted(arrays, pairs, volume, failed)
        expected[failed] = 0.0
        np.testing.assert_allclose(loads[k], expected, rtol=1e-9, atol=1e-7, err_msg=f"scenario {k}")
        assert stranded[k] == pytest.approx(cut, abs=1e-7)
        util = np.where(arrays.capacity > 0, expected / arrays.capacity, 0.0)
        assert mlu[k] == pytest.approx(util.max()) and util[worst[k]] == pytest.approx(util.max())


def _random_network(seed: int, nodes: int, extra: int, metrics: tuple[int, ...]) -> Network:
    rng = np.random.default_rng(seed)
    names = [f"r{i}" for i in range(nodes)]
    edges = {(i, int(rng.integers(i))) for i in range(1, nodes)}  # a spanning tree: some failures partition
    while len(edges) < nodes - 1 + extra:
        a, b = sorted(rng.choice(nodes, 2, replace=False).tolist())
        edges.add((b, a))
    links = []
    for a, b in sorted(edges):
        m = int(rng.choice(metrics))
        cap = float(rng.choice([100, 400, 1000]))
        links += [Link(source=names[a], target=names[b], capacity=cap, metric=m),
                  Link(source=names[b], target=names[a], capacity=cap, metric=m)]
    demands = [Demand(source=names[a], target=names[b], volume=float(rng.uniform(1, 20)))
               for a in range(nodes) for b in range(nodes) if a != b and rng.random() < 0.5]
    return Network(name=f"random{seed}", nodes=[Router(id=x) for x in names], links=links, demands=demands)


@IMPLEMENTATIONS
@pytest.mark.parametrize("seed", range(12))
def test_matches_rerouting_on_random_networks_with_many_equal_cost_paths(seed, compiled):
    # Metrics from a tiny set make ECMP everywhere; trees and sparse extras make partitions.
    _check(_random_network(seed, nodes=8 + seed * 2, extra=seed + 2, metrics=(1, 2) if seed % 2 else (10,)),
           compiled)


@IMPLEMENTATIONS
def test_matches_rerouting_with_parallel_links_and_links_already_down(compiled):
    net = _random_network(99, nodes=14, extra=10, metrics=(1, 2, 3))
    links = list(net.links)
    first = links[0]
    links += [first.model_copy(update={"key": 1}), links[1].model_copy(update={"key": 1})]
    links[4] = links[4].model_copy(update={"state": "down"})
    links[5] = links[5].model_copy(update={"state": "down"})
    _check(net.model_copy(update={"links": links}), compiled)


@IMPLEMENTATIONS
def test_failures_of_several_links_at_once_match_rerouting(compiled):
    """Scenarios of several links each (a router's links, a shared duct): the kernel's S grows from several
    failed links of one destination's DAG at once."""
    _check(_random_network(7, nodes=18, extra=16, metrics=(1, 2)), compiled, together=3)


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_routing_gives_the_numpy_routing(seed):
    """Distances, DAGs, splits, flows, the routing matrix and the loads of a few pairs over some links, with
    links down and equal-cost paths everywhere."""
    from netpilot.model.routing import igp_loads

    net = _random_network(seed, nodes=10 + seed * 3, extra=seed + 4, metrics=(1, 2) if seed % 2 else (1, 5, 10))
    arrays = net.arrays()
    pairs, volume = arrays.demand_pairs()
    up = arrays.up.copy()
    up[np.random.default_rng(seed).choice(arrays.n_links, 3, replace=False)] = False
    numpy_routing = ecmp_flows(arrays, arrays.metric, pairs, volume, up, compiled=False)
    routing = ecmp_flows(arrays, arrays.metric, pairs, volume, up, compiled=True)
    np.testing.assert_array_equal(routing.distance, numpy_routing.distance)
    np.testing.assert_array_equal(routing.on_dag, numpy_routing.on_dag)
    np.testing.assert_array_equal(routing.share, numpy_routing.share)
    np.testing.assert_array_equal(routing.unreachable, numpy_routing.unreachable)
    np.testing.assert_allclose(routing.link_flow, numpy_routing.link_flow, rtol=1e-12, atol=1e-9)
    other = volume * np.random.default_rng(seed).uniform(0.5, 2.0, len(volume))
    np.testing.assert_allclose(routing.carry(other, compiled=True), routing.carry(other, compiled=False),
                               rtol=1e-12, atol=1e-9)
    matrix = routing.routing_matrix(compiled=True).toarray()
    np.testing.assert_allclose(matrix, numpy_routing.routing_matrix(compiled=False).toarray(), atol=1e-12)
    assert matrix.sum() > 0
    few = np.arange(0, len(pairs), 5)
    loads, lost = igp_loads(arrays, arrays.metric, pairs[few], volume[few], up, compiled=True)
    numpy_loads, numpy_lost = igp_loads(arrays, arrays.metric, pairs[few], volume[few], up, compiled=False)
    np.testing.assert_allclose(loads, numpy_loads, rtol=1e-12, atol=1e-9)
    assert lost == pytest.approx(numpy_lost, abs=1e-9)


@pytest.mark.slow
def test_matches_rerouting_on_a_real_backbone(te_data):
    from netpilot.model.formats import attach_demands, import_demands, import_network

    folder = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    net = import_network(folder / "Geant2012.graph")
    network = attach_demands(net, import_demands(folder / "Geant2012.0000.demands", net))
    _check(network, compiled=False)
    if kernels.AVAILABLE:
        _check(network, compiled=True)


def test_replayed_link_failures_under_explicit_paths_read_no_loss_on_the_failed_links():
    """The incremental replay of a failure can leave round-off (1e-13) on the failed link where explicit paths
    move; a link that is down reports no load and no loss, as the stepped simulator reports it (a phantom
    loss of 1 there once outweighed the true cause in the root-cause ranking)."""
    from netpilot.model.faults import Fault
    from netpilot.model.io import load_network
    from netpilot.model.policies import to_policies
    from netpilot.model.sample import bundled_network_path
    from netpilot.optimize.te.tactical import plan_tactical
    from netpilot.telemetry.sim.simulator import Simulator

    network = load_network(bundled_network_path())
    sim = Simulator(network, seed=0, noise=0.0)
    arrays = network.arrays()
    volume = sim.expected().volume * 1.3
    plan = plan_tactical(arrays, sim.pairs, volume, arrays.metric, arrays.up, arrays.capacity, max_pairs=48)
    sim.set_policies(to_policies(arrays, plan.paths))
    used = sorted({(arrays.node_ids[arrays.src[e]], arrays.node_ids[arrays.dst[e]])
                   for paths in plan.paths.values() for links, _ in paths for e in links})
    faults = [[Fault(kind="link_down", target=list(ends), at_minute=0)] for ends in used if ends[0] < ends[1]]
    healthy, *failed = sim.replay([[], *faults])
    assert healthy.link_up.all() and len(failed) >= 10
    for result in failed:
        down = ~result.link_up
        assert down.sum() == 2
        assert (result.link_load[down] == 0).all() and (result.link_loss[down] == 0).all()


def test_the_twins_routing_cache_keeps_what_it_used_last():
    """A planner asks for the running metrics under each failure it plans against, tick after tick, among many
    trial metrics asked once: a routing used again stays cached while 64 others come and go, and the oldest
    unused one leaves."""
    from netpilot.model.io import load_network
    from netpilot.model.sample import bundled_network_path
    from netpilot.telemetry.sim.simulator import Simulator

    network = load_network(bundled_network_path())
    sim = Simulator(network, noise=0.0)
    arrays = network.arrays()
    volume = sim.expected().volume
    running = sim._ecmp(arrays.metric, arrays.up)
    first_trial = arrays.metric + 1
    sim.link_loads(volume, first_trial, arrays.up)
    for trial in range(2, 80):
        sim.link_loads(volume, arrays.metric + trial, arrays.up)
        assert sim._ecmp(arrays.metric, arrays.up) is running  # used every round: kept
    assert len(sim._routing_cache) <= 65
    assert first_trial.tobytes() + arrays.up.tobytes() not in sim._routing_cache


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("threads", [2, 3, 7])
def test_the_what_if_on_several_cores_is_the_same_to_the_bit(threads, monkeypatch):
    """Rows cut into runs at scenario boundaries, routed side by side, write each scenario's loads in the same
    order as one run does: the same bits, several links failing together included."""
    from netpilot.model.whatif import failure_loads

    net = _random_network(5, nodes=30, extra=40, metrics=(1, 2))
    arrays = net.arrays()
    pairs, volume = arrays.demand_pairs()
    routing = ecmp_flows(arrays, arrays.metric, pairs, volume)
    singles = failure_scenarios(arrays)
    real_runs = kernels._scenario_runs
    for scenarios in (singles, [np.concatenate(singles[i:i + 2]) for i in range(0, len(singles) - 1, 2)]):
        monkeypatch.setattr(kernels, "_scenario_runs", real_runs)
        monkeypatch.setattr(kernels, "cores", lambda: 1)
        one_loads, one_stranded = failure_loads(arrays, routing, volume, scenarios)
        monkeypatch.setattr(kernels, "cores", lambda: threads)
        monkeypatch.setattr(kernels, "PARALLEL_WORK", 0)
        runs: list[tuple[int, int]] = []
        monkeypatch.setattr(kernels, "_scenario_runs", lambda *a, runs=runs: runs.extend(real_runs(*a)) or runs)
        loads, stranded = failure_loads(arrays, routing, volume, scenarios)
        assert len(runs) > 1  # it did run side by side
        assert loads.tobytes() == one_loads.tobytes() and stranded.tobytes() == one_stranded.tobytes()


def test_scenario_runs_cut_only_where_the_scenario_changes():
    rows = np.array([0, 0, 0, 1, 1, 2, 5, 5, 5, 5, 5, 6])
    for threads in (1, 2, 3, 4, 12, 30):
        runs = kernels._scenario_runs(rows, threads, 10**6)
        assert runs[0][0] == 0 and runs[-1][1] == len(rows)
        assert all(a < b for a, b in runs) and all(b == c for (_, b), (c, _) in pairwise(runs))
        assert all(rows[a - 1] != rows[a] for a, _ in runs[1:])  # no scenario split between two runs
        assert len(runs) <= threads
    assert kernels._scenario_runs(rows, 4, 1) == [(0, len(rows))]  # too little work: one run
    # Cuts near rows 3, 6 and 9 move back to the first row of their scenario; 9's is 6's.
    assert kernels._scenario_runs(rows, 4, 10**6) == [(0, 3), (3, 6), (6, 12)]


def test_a_search_trial_routed_by_the_twin_is_not_kept_and_gives_the_cached_bits():
    """``Twin.link_loads(keep=False)`` gives what a kept routing gives on its first ask, to the bit, explicit
    paths included, and leaves the routing cache as it was; a routing in the cache is used from there."""
    from netpilot.model.io import load_network
    from netpilot.model.sample import bundled_network_path
    from netpilot.telemetry.sim.simulator import Simulator

    network = load_network(bundled_network_path())
    sim = Simulator(network, noise=0.0)
    arrays = network.arrays()
    volume = sim.expected().volume
    first = next(lk for lk in network.links if network.node(lk.source).kind == "router" and
                 network.node(lk.target).kind == "router")
    back = next(lk for lk in network.links if (lk.source, lk.target) == (first.target, first.source))
    # One pair on explicit paths (there and back over one link), so the splits' share of the loads is in it too.
    sim.set_path_splits({(first.source, first.target): [([first.source, first.target], 1.0)],
                         (back.source, back.target): [([back.source, back.target], 1.0)]})
    assert sim._splits
    for trial in range(1, 4):
        metric = arrays.metric + trial * (np.arange(arrays.n_links) % 3)
        routings = {key for key in sim._routing_cache if not key.startswith(b"splits")}
        loads = sim.link_loads(volume, metric, arrays.up, keep=False)
        assert {key for key in sim._routing_cache if not key.startswith(b"splits")} == routings
        assert loads.tobytes() == sim.link_loads(volume, metric, arrays.up).tobytes()  # the first ask: a push
        assert metric.tobytes() + arrays.up.tobytes() in sim._routing_cache
        np.testing.assert_allclose(sim.link_loads(volume, metric, arrays.up, keep=False), loads, rtol=1e-12)
