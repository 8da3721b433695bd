"""The fault registry: every kind in one place, typed targets, and a kind added as one module (the shared-risk
link group cut) that the simulator injects and the localiser finds."""

import numpy as np
import pytest
from pydantic import ValidationError

from netpilot.analytics.rca import RootCauseLocalizer, Snapshot
from netpilot.model.faults import REGISTRY, Fault, LinkGroupTarget, LinkTarget, NodeTarget, candidate_faults
from netpilot.model.io import load_network
from netpilot.model.network import Network
from netpilot.model.sample import bundled_network_path
from netpilot.model.twin import Twin
from netpilot.telemetry.sim.simulator import Simulator

DUCT = ({"CH", "FR"}, {"CH", "DE"})  # two links out of CH that run in one conduit


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(bundled_network_path())


@pytest.fixture(scope="module")
def ducted(network) -> Network:
    """The bundled network with CH-FR and CH-DE in one shared-risk group."""
    data = network.model_dump(mode="json")
    for link in data["links"]:
        if {link["source"], link["target"]} in DUCT:
            link["srlgs"] = ["duct-7"]
    return Network.model_validate(data)


def test_every_kind_is_registered_in_hypothesis_order():
    assert list(REGISTRY) == ["link_down", "link_degrade", "link_flap", "misconfig", "router_down", "cell_outage",
                              "edge_failure", "flash_crowd", "srlg_cut"]
    assert {name for name, kind in REGISTRY.items() if kind.actionable} == \
        {"link_down", "link_degrade", "router_down", "flash_crowd", "srlg_cut"}
    assert [name for name, kind in REGISTRY.items() if kind.inferred] == ["flash_crowd"]


def test_a_fault_names_its_kind_and_target_or_is_refused(network):
    with pytest.raises(ValidationError, match=r"unknown fault kind 'meteor'.*srlg_cut"):
        Fault(kind="meteor", target="DE", at_minute=0)
    link = Fault(kind="link_down", target=["GR", "BG"], at_minute=0)
    assert link.behaviour.target(link) == LinkTarget("GR", "BG")
    assert link.behaviour.target(link).name == "BG--GR" and link.behaviour.target(link).record_name == "GR->BG"
    node = Fault(kind="router_down", target="DE", at_minute=0)
    assert node.behaviour.target(node) == NodeTarget("DE")
    with pytest.raises(ValueError, match=r"needs target \[A, B\]"):
        Twin(network, faults=[Fault(kind="link_down", target="DE", at_minute=0)])
    with pytest.raises(ValueError, match="no link between BG and XX"):
        Twin(network, faults=[Fault(kind="link_down", target=["BG", "XX"], at_minute=0)])
    with pytest.raises(ValueError, match="two links or more"):
        Twin(network, faults=[Fault(kind="srlg_cut", target=[["CH", "FR"]], at_minute=0)])


def test_a_shared_risk_group_cut_takes_every_link_of_the_group_down_at_once(ducted):
    cut = Fault(kind="srlg_cut", target=[["CH", "FR"], ["CH", "DE"]], at_minute=2, duration_minutes=3)
    sim = Simulator(ducted, seed=1, faults=[cut])
    frames = [sim.step() for _ in range(6)]
    group = [i for i, lk in enumerate(ducted.links) if {lk.source, lk.target} in DUCT]
    assert len(group) == 4  # both links, both directions
    assert frames[1].link_up.all()
    for frame in frames[2:5]:
        assert np.flatnonzero(~frame.link_up).tolist() == group
    assert frames[5].link_up.all()
    (record,) = sim.truth
    assert (record.kind, record.target) == ("srlg_cut", "CH->FR+CH->DE")
    downs = sorted(e.entity for e in frames[2].events if e.kind == "link_down" and e.severity == "critical")
    assert downs == ["link:CH->DE", "link:CH->FR", "link:DE->CH", "link:FR->CH"]


def test_the_localiser_offers_and_finds_a_shared_risk_group_cut(network, ducted):
    assert not any(f.kind == "srlg_cut" for f in candidate_faults(network))  # no group named, none offered
    (offered,) = [f for f in candidate_faults(ducted) if f.kind == "srlg_cut"]
    target = offered.behaviour.target(offered)
    assert isinstance(target, LinkGroupTarget) and target.name == "CH--DE+CH--FR"
    assert {link.nodes for link in target.links} == {frozenset(ends) for ends in DUCT}
    cut = Fault(kind="srlg_cut", target=[["CH", "FR"], ["CH", "DE"]], at_minute=30)
    sim = Simulator(ducted, seed=7, faults=[cut])
    steps = np.array([Snapshot.from_step(sim.step()).values for _ in range(35)])
    before, after = steps[15:30], steps[30:35]
    noise = np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2)
    ranked = RootCauseLocalizer(ducted).rank(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                              minute=32, noise=noise, top=3)
    assert (ranked[0].kind, ranked[0].target) == ("srlg_cut", "CH--DE+CH--FR")
    assert ranked[0].score > 0.9 and ranked[0].score > ranked[1].score
    # Either link alone explains only part of it.
    assert all(c.kind != "link_down" or c.score < ranked[0].score - 0.1 for c in ranked[1:])
    assert ranked[0].fault is not None and ranked[0].fault.behaviour.actionable


def test_the_loop_believes_a_shared_risk_group_cut_and_lets_it_go(ducted):
    """The whole chain on the new kind: the loop localises the cut, believes it (its twin routes around both
    links), and drops the belief once the links measure up again."""
    from datetime import UTC, datetime

    from netpilot.autopilot.loop import Autopilot
    from netpilot.change.drivers import SimulatorDriver
    from netpilot.change.workflow import ChangeStore

    cut = Fault(kind="srlg_cut", target=[["CH", "FR"], ["CH", "DE"]], at_minute=20, duration_minutes=15)
    sim = Simulator(ducted, seed=2, start=datetime(2026, 1, 9, 14, 0, tzinfo=UTC), faults=[cut])
    pilot = Autopilot(ducted, ChangeStore(":memory:"), SimulatorDriver(ducted, sim), tick_budget_ms=None,
                      congestion=10.0)  # watch only
    believed_at = None
    for _ in range(40):
        frame = sim.step()
        pilot.observe(frame)
        if believed_at is None and "srlg_cut:CH--DE+CH--FR" in pilot.beliefs:
            believed_at = frame.minute
            down = {lk.id for lk in pilot.believed_network().links if lk.state == "down"}
            assert down == {"CH->FR", "FR->CH", "CH->DE", "DE->CH"}
    assert believed_at is not None and 20 <= believed_at < 35
    (incident,) = [i for i in pilot.incidents if 20 <= i.minute < 35]
    assert incident.causes[0]["kind"] == "srlg_cut"
    assert not pilot.beliefs  # the links came back at minute 35
