"""Generated scenarios, the hindsight oracle and sample networks sized to any backbone."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from netpilot.cli import app
from netpilot.errors import InputError
from netpilot.model.formats import attach_demands, import_demands, import_network
from netpilot.model.io import network_from_data, save_network
from netpilot.model.sample import bundled_network_path
from netpilot.scenarios.generate import (
    GENERATED_KINDS,
    generate_scenario,
    network_optimum,
    peak_optimum,
    write_scenario,
)
from netpilot.scenarios.scenario import (
    compare,
    load_scenario,
    min_overload,
    run_scenario,
    scenario_network,
    share_of_achievable_cut,
    true_metrics,
)
from netpilot.telemetry.sim.simulator import Simulator

runner = CliRunner()


@pytest.fixture(scope="module")
def abilene(te_data, tmp_path_factory):
    base = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    network = import_network(base / "Abilene.graph")
    network = attach_demands(network, import_demands(base / "Abilene.0000.demands", network))
    path = tmp_path_factory.mktemp("abilene") / "abilene.yaml"
    save_network(network, path)
    return path


def test_generated_scenario_scales_the_peak_optimum_to_the_load_and_reads_back(abilene, tmp_path):
    scenario = generate_scenario(abilene, seed=4, load=0.8, hours=2.0, faults=3, relative_to=tmp_path)
    path = write_scenario(scenario, tmp_path / "s.yaml")
    again = load_scenario(path)
    assert again.faults == scenario.faults
    assert again.demand_scale == pytest.approx(scenario.demand_scale)
    network = scenario_network(again)
    sim = Simulator(network, seed=again.seed)
    # The simulator's noise-free demand at the profile's peak hour is its base volume.
    assert peak_optimum(network, sim.base_volume, sim.pairs).mlu == pytest.approx(0.8, rel=1e-6)
    times = [f.at_minute for f in again.faults]
    assert times == sorted(times) and len(set(times)) == 3
    assert all(0.1 * 120 <= t <= 0.8 * 120 for t in times)
    assert len({f.kind for f in again.faults}) == 3  # no kind repeats before every kind was drawn
    assert again.generated is not None and again.generated.static_peak_mlu > 0.8


def test_every_fault_kind_is_drawn_on_a_network_with_cells_and_edge_sites(tmp_path):
    scenario = generate_scenario(bundled_network_path(), seed=2, faults=len(GENERATED_KINDS), hours=3.0)
    assert sorted(f.kind for f in scenario.faults) == sorted(GENERATED_KINDS)
    # Validated against the network: every target exists.
    Simulator(scenario_network(scenario), faults=scenario.faults)


def test_targets_follow_the_load_they_carry(abilene):
    """Over many seeds, link faults land on the links busiest under shortest paths far more often than on the
    idlest: the draw is weighted by load."""
    counts: dict[str, int] = {}
    for seed in range(40):
        for fault in generate_scenario(abilene, seed=seed, faults=1, kinds=("link_down",)).faults:
            key = "--".join(sorted(fault.target))
            counts[key] = counts.get(key, 0) + 1
    network = scenario_network(load_scenario_like(abilene))
    sim = Simulator(network)
    loads = sim.link_loads(sim.base_volume, sim.metric, network.arrays().up)
    arrays = network.arrays()
    by_link: dict[str, float] = {}
    for e, load in enumerate(loads):
        key = "--".join(sorted((arrays.node_ids[arrays.src[e]], arrays.node_ids[arrays.dst[e]])))
        by_link[key] = by_link.get(key, 0.0) + load
    ranked = sorted(by_link, key=by_link.get)
    busiest, idlest = ranked[-3:], ranked[:3]
    assert sum(counts.get(k, 0) for k in busiest) > 2 * sum(counts.get(k, 0) for k in idlest)


def load_scenario_like(network_path):
    from netpilot.scenarios.scenario import Scenario

    return Scenario(network=network_path, hours=1)


def test_a_router_down_is_reported_as_stranding_its_traffic(abilene):
    scenario = generate_scenario(abilene, seed=1, faults=1, kinds=("router_down",))
    found = scenario.generated.faults[0]
    assert not found.helpable and 0 < found.strands_share < 1
    scenario = generate_scenario(abilene, seed=1, faults=1, kinds=("link_degrade",))
    assert scenario.generated.faults[0].helpable


def test_bad_generation_input_names_the_field(abilene, tmp_path):
    with pytest.raises(InputError, match="load"):
        generate_scenario(abilene, load=0.0)
    result = runner.invoke(app, ["scenario", "generate", str(abilene), "-o", str(tmp_path / "s.yaml"),
                                 "--kinds", "link_down,meteor"])
    assert result.exit_code == 2
    assert "meteor" in result.output


def test_min_overload_on_a_triangle_has_the_known_answer():
    """A->C: 25 units over a direct link and a two-hop way round, every link 10: at best 5 over capacity (the cut
    A->{B,C} carries 20); shortest paths put it all on the direct link (15 over)."""
    network = network_from_data({
        "nodes": [{"id": n} for n in "ABC"],
        "links": [{"source": s, "target": t, "capacity": 10.0, "metric": 1 if (s, t) == ("A", "C") else 5}
                  for s, t in ("AB", "BA", "BC", "CB", "AC", "CA")],
        "demands": [{"source": "A", "target": "C", "volume": 25.0}]}, file="<test>")
    arrays = network.arrays()
    sim = Simulator(network, noise=0.0)
    volume = np.array([25.0])  # the file's demand (the simulator's base volume varies it per node)
    static = sim.link_loads(volume, sim.metric, arrays.up)
    assert float(np.maximum(static - arrays.capacity, 0).sum()) == pytest.approx(15.0)
    best = min_overload(arrays, sim.pairs, volume, arrays.up, arrays.capacity, [static])
    assert best == pytest.approx(5.0, abs=1e-6)
    # With room for it all, nothing is over.
    assert min_overload(arrays, sim.pairs, volume, arrays.up, arrays.capacity * 2, [static]) == \
        pytest.approx(0.0, abs=1e-9)
    # The direct link down: only the way round is left (15 over on each of its two links).
    up = arrays.up & ~((arrays.src == 0) & (arrays.dst == 2))
    assert min_overload(arrays, sim.pairs, volume, up, arrays.capacity, []) == pytest.approx(30.0)


def test_share_of_achievable_cut():
    assert share_of_achievable_cut(100.0, 20.0, 20.0) == pytest.approx(1.0)
    assert share_of_achievable_cut(100.0, 100.0, 20.0) == pytest.approx(0.0)
    assert share_of_achievable_cut(100.0, 60.0, 20.0) == pytest.approx(0.5)
    assert share_of_achievable_cut(100.0, 120.0, 20.0) < 0
    assert share_of_achievable_cut(100.0, 90.0, 100.0) is None  # nothing could be cut: cannot be helped
    assert share_of_achievable_cut(0.0, 0.0, 0.0) is None


@pytest.mark.parametrize("seed", [3, 8])
def test_oracle_is_no_worse_than_either_replay_on_generated_scenarios(abilene, seed):
    scenario = generate_scenario(abilene, seed=seed, load=0.85, hours=1.5, faults=2)
    r = compare(scenario)
    o = r["overload_traffic"]
    assert o["baseline_gbit"] > 0
    assert 0 <= o["oracle_gbit"] <= o["autopilot_gbit"] + 1e-6
    assert o["oracle_gbit"] <= o["baseline_gbit"] + 1e-6
    assert len(r["oracle"]["per_tick_mbps"]) == r["steps"]
    if o["share_of_achievable_cut"] is not None:
        assert o["share_of_achievable_cut"] <= 1.0 + 1e-9
    assert r["false_incidents"] >= 0 and len(r["applied_minutes"]) == r["changes_applied"]


def test_sized_sample_on_another_backbone_is_feasible_at_its_load_and_names_it(te_data, tmp_path):
    base = te_data / "repetita" / "2016TopologyZooUCL_inverseCapacity"
    out = tmp_path / "abilene-cells.yaml"
    result = runner.invoke(app, ["topo", "sample", "--backbone-graph", str(base / "Abilene.graph"),
                                 "--backbone-demands", str(base / "Abilene.0000.demands"), "--load", "0.6",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    from netpilot.model.io import load_network

    network = load_network(out)
    assert "Abilene from the Internet Topology Zoo" in network.origin and "GÉANT" not in network.origin
    assert len(network.nodes_of_kind("cell_site")) == 22
    assert len(network.nodes_of_kind("edge_site")) == 2
    assert network_optimum(network).mlu == pytest.approx(0.6, rel=1e-6)
    # Access links at most half full at that peak (before the final scaling, which only lowers the demand).
    arrays = network.arrays()
    sim = Simulator(network, noise=0.0)
    loads = sim.link_loads(network.arrays().demand_pairs()[1], sim.metric, arrays.up)
    kinds = np.array([n.kind for n in network.nodes])
    access = (kinds[arrays.src] != "router") | (kinds[arrays.dst] != "router")
    assert (loads[access] <= 0.5 * arrays.capacity[access] + 1e-9).all()


def test_a_replay_takes_the_loops_options_and_rechecks_the_aggregate_rule_by_the_per_failure_one(abilene):
    scenario = generate_scenario(abilene, seed=3, load=0.85, hours=0.5, faults=1)
    default = run_scenario(scenario)  # the loop's default: the aggregate rule
    strict = run_scenario(scenario, options={"failure_rule": "each"})
    assert "unsafe_by_the_per_failure_rule" not in strict
    assert 0 <= default["unsafe_by_the_per_failure_rule"] <= default["changes_applied"]
    with pytest.raises(ValueError, match="failure_rule"):
        run_scenario(scenario, options={"failure_rule": "never"})


def test_a_replays_trace_hands_over_the_loop_that_ran_it(abilene):
    """A program that looks into a replay's ticks (bench/issue25/tick_stages.py) gets the loop run_scenario ran,
    not a copy of its set-up; static routing has none."""
    from netpilot.scenarios.scenario import RunTrace

    scenario = generate_scenario(abilene, seed=3, load=0.85, hours=0.25, faults=1)
    trace, static = RunTrace(), RunTrace()
    out = run_scenario(scenario, trace=trace)
    run_scenario(scenario, autopilot=False, trace=static)
    assert trace.pilot is not None and static.pilot is None
    assert len(trace.pilot.ticks) == out["steps"] == len(trace.overload)
    assert len(trace.pilot.applied) == out["changes_applied"]
    # Why each change the hindsight re-check refuses was unsafe: as many as it counts, each with its checks.
    assert len(out["unsafe_changes"]) == out["unsafe_changes_applied"]
    assert all(c["failed"] and c["minute"] in [a.minute for a in trace.pilot.applied] for c in out["unsafe_changes"])
    assert trace.loop_seconds > 0 and static.loop_seconds > 0


def test_the_hindsight_recheck_routes_on_the_metrics_the_routers_truly_ran(abilene):
    """A misconfigured link keeps its wrong metric whatever the loop sets, while the fault lasts; every other link
    runs the change's metric (as the simulator composes them)."""
    from netpilot.model.faults import Fault
    from netpilot.model.io import load_network
    from netpilot.model.twin import Twin

    network = load_network(abilene)
    link = network.links[0]
    fault = Fault(kind="misconfig", target=[link.source, link.target], at_minute=10, duration_minutes=20,
                  metric=60000)
    truth = Twin(network, faults=[fault])
    configured = network.arrays().metric + 7
    truth.minute = 15
    ran = true_metrics(truth, configured)
    wrong = ran != configured
    assert wrong.any() and (ran[wrong] == 60000).all() and wrong[0]
    truth.minute = 40  # the fault is over: the change's metrics everywhere
    assert np.array_equal(true_metrics(truth, configured), configured)
