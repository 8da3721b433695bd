"""The driver contract: open_driver by URL scheme, typed capabilities and diffs, a refusal before anything is
staged (and before the loop plans what a driver cannot take), and explicit paths rendered as policy routing."""

from __future__ import annotations

import pytest

from netpilot.change.drivers import (
    Capabilities,
    ConfigDiff,
    DriverError,
    FrrDriver,
    NetworkDriver,
    SimulatorDriver,
    TwinDriver,
    open_driver,
)
from netpilot.change.drivers.base import INTENT_KINDS, driver_classes
from netpilot.change.drivers.frr import paths
from netpilot.change.intents import SetMetric, SetPolicies
from netpilot.model.network import CellSite, Demand, Link, Network, PathPolicy, Router


def _square(*, cell: bool = False) -> Network:
    links = []
    for a, b, metric in (("a", "b", 10), ("b", "c", 10), ("c", "d", 10), ("d", "a", 10), ("a", "c", 1000)):
        links += [Link(source=a, target=b, capacity=100, metric=metric),
                  Link(source=b, target=a, capacity=100, metric=metric)]
    nodes = [Router(id=n) for n in "abcd"]
    if cell:
        nodes.append(CellSite(id="x"))
        links += [Link(source="x", target="a", capacity=100), Link(source="a", target="x", capacity=100)]
    return Network(name="sq", nodes=nodes, links=links, demands=[Demand(source="a", target="c", volume=10)])


class IgpOnly(TwinDriver):
    """A device that takes IGP metrics and link states but no explicit paths (a plain OSPF router)."""

    def capabilities(self) -> Capabilities:
        return Capabilities(frozenset(INTENT_KINDS) - {"set_policies"}, {"set_policies": "no SR-TE here"})


def test_open_driver_finds_each_driver_by_its_scheme():
    from netpilot.telemetry.sim.simulator import Simulator

    net = _square()
    assert {"twin", "sim", "frr-lab"} <= set(driver_classes())
    assert type(open_driver("twin://", net)) is TwinDriver
    sim = Simulator(net)
    driver = open_driver("sim://", net, simulator=sim)
    assert type(driver) is SimulatorDriver and driver.simulator is sim
    assert driver_classes()["frr-lab"] is FrrDriver
    with pytest.raises(DriverError, match=r"no driver for 'netconf://r1'.*frr-lab, sim, twin"):
        open_driver("netconf://r1", net)
    with pytest.raises(DriverError, match="simulator="):
        open_driver("sim://", net)


def test_every_driver_implements_the_whole_contract():
    for cls in driver_classes().values():
        assert issubclass(cls, NetworkDriver) and not getattr(cls, "__abstractmethods__", None), cls


def test_intents_load_against_the_running_state_and_the_diff_is_typed():
    net = _square()
    driver = TwinDriver(net)
    driver.load_candidate([SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    diff = driver.compare()
    assert isinstance(diff, ConfigDiff) and set(diff.devices) == {"a"} and "ip ospf cost 50" in diff.devices["a"]
    assert diff.as_dict() == dict(diff.devices)
    driver.commit(confirm=0.2)
    assert driver.running().links[0].metric == 50
    assert driver.reverted.wait(5) and driver.running() is net
    driver.load_candidate([SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    driver.commit(confirm=0.2)
    driver.confirm()
    assert not driver.reverted.wait(0.5) and driver.running().links[0].metric == 50
    driver.rollback()
    assert driver.running() is net


def test_a_driver_refuses_what_it_cannot_express_before_staging_it():
    net = _square()
    driver = IgpOnly(net)
    pin = PathPolicy(source="a", target="c", paths=[{"nodes": ["a", "b", "c"], "weight": 1}])
    assert driver.capabilities().refusal(["set_metric", "set_policies"]) == "set_policies: no SR-TE here"
    with pytest.raises(DriverError, match="set_policies: no SR-TE here"):
        driver.load_candidate([SetPolicies(intent="set_policies", policies=[pin])])
    assert driver.candidate is None
    # A whole network as candidate is judged by what it changes: paths here.
    with pytest.raises(DriverError, match="set_policies"):
        driver.load_candidate(net.model_copy(update={"policies": [pin]}))
    with pytest.raises(DriverError, match="no candidate"):
        driver.compare()


def test_the_loop_plans_no_explicit_paths_for_a_driver_that_takes_none_and_applies_nothing_it_refuses():
    from netpilot.autopilot.loop import Autopilot
    from netpilot.change.workflow import ChangeStore

    net = _square()
    assert Autopilot(net, ChangeStore(), TwinDriver(net)).settings.planning.explicit_paths
    store = ChangeStore()
    pilot = Autopilot(net, store, IgpOnly(net))
    assert not pilot.settings.planning.explicit_paths
    # A person's approved change with explicit paths is not applied to this network, and says why.
    cid = store.propose([{"intent": "set_policies", "policies": [
        {"source": "a", "target": "c", "paths": [{"nodes": ["a", "b", "c"], "weight": 1}]}]}], "alice", "t", [])
    store.record_verification(cid, {"ok": True, "checks": []})
    store.approve(cid, "bob")
    from netpilot.telemetry.sim.simulator import Simulator

    sim = Simulator(net, seed=1)
    for _ in range(3):
        pilot.observe(sim.step())
    assert store.get(cid).state == "approved"
    assert "set_policies: no SR-TE here" in store.annotations(cid)["not_applied"]
    assert pilot.driver.running().policies == []


def test_explicit_paths_render_as_hop_by_hop_tables_with_the_policys_shares():
    net = _square().model_copy(update={"policies": [PathPolicy(source="a", target="c", paths=[
        {"nodes": ["a", "b", "c"], "weight": 1}, {"nodes": ["a", "d", "c"], "weight": 3}])]})
    assert paths.policy_problems(net) == []
    tables = paths.render_paths(net)
    assert tables["c"] == [] and len(tables["a"]) == len(tables["b"]) == len(tables["d"]) == 1
    (at_a,) = tables["a"]
    weights = {h.peer: h.weight for h in at_a.hops}
    assert weights == {"b": 67, "d": 200}  # 1:3 of the pair's traffic
    assert at_a.sources == ("10.255.0.1/32",) and at_a.destinations == ("10.255.0.3/32",)
    assert [h.peer for h in tables["b"][0].hops] == ["c"] and [h.peer for h in tables["d"][0].hops] == ["c"]
    lines = paths.commands(tables["a"])
    assert lines[0].startswith("route replace 10.255.0.3/32 table 20000 proto static nexthop via ")
    assert lines[1] == "rule add pref 20000 from 10.255.0.1/32 to 10.255.0.3/32 lookup 20000"
    # What the routers would report once installed reads back as the same policy (shares as weights).
    per_router = {r: paths.expected(t) for r, t in tables.items()}
    (back,) = paths.read_policies(net, per_router)
    assert {tuple(p.nodes): round(p.weight, 2) for p in back.paths} == {("a", "b", "c"): 0.25,
                                                                       ("a", "d", "c"): 0.75}


def test_paths_policy_routing_cannot_carry_are_named():
    net = _square(cell=True)
    looping = PathPolicy(source="a", target="c", paths=[{"nodes": ["a", "b", "c"], "weight": 1},
                                                        {"nodes": ["a", "d", "c"], "weight": 1}])
    # A cell's traffic is matched by its address on its access cable, and enters by its one router.
    from_cell = PathPolicy(source="x", target="c", paths=[{"nodes": ["x", "a", "d", "c"], "weight": 1}])
    ok = net.model_copy(update={"policies": [looping, from_cell]})
    assert paths.policy_problems(ok) == []
    (cell_table,) = [t for t in paths.render_paths(ok)["a"] if t.source == "x"]
    assert cell_table.sources == (f"{paths.endpoint_prefixes(ok)['x'][0]}",) and cell_table.hops[0].peer == "d"
    bad = net.model_copy(update={"policies": [PathPolicy(source="b", target="d", paths=[
        {"nodes": ["b", "a", "d"], "weight": 1}, {"nodes": ["b", "c", "a", "b", "d"], "weight": 1}])]})
    problems = paths.policy_problems(bad)
    assert any("form a loop" in p for p in problems) and any("no cable b-d" in p for p in problems)


class FailsToCommit(TwinDriver):
    """A device that refuses the commit after taking part of it (a router's reload failed)."""

    def commit(self, confirm: float | None = None) -> None:
        super().commit(confirm)
        raise DriverError("r1: frr-reload failed")


def test_a_commit_the_devices_refuse_is_rolled_back_and_recorded_not_left_applying():
    from netpilot.autopilot.loop import Autopilot
    from netpilot.change.workflow import ChangeStore
    from netpilot.telemetry.sim.simulator import Simulator

    net = _square()
    store = ChangeStore()
    driver = FailsToCommit(net)
    pilot = Autopilot(net, store, driver)
    cid = store.propose([{"intent": "set_metric", "source": "a", "target": "b", "metric": 50}], "alice", "t", [])
    store.record_verification(cid, {"ok": True, "checks": []})
    store.approve(cid, "bob")
    sim = Simulator(net, seed=1)
    for _ in range(3):
        pilot.observe(sim.step())
    assert store.get(cid).state == "rolled_back"
    assert "r1: frr-reload failed" in store.audit(cid)[-1]["detail"]["why"]
    assert driver.running() is net and pilot.applied == []
