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
        {"link_down", "link_degrade", "misconfig", "router_down", "flash_crowd", "srlg_cut"}
    assert [name for name, kind in REGISTRY.items() if kind.inferred] == ["flash_crowd"]
    assert [name for name, kind in REGISTRY.items() if kind.holds_metric] == ["misconfig"]


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


def _watching(network, faults, seed=2):
    """The loop on the simulator, watching only (a limit no load reaches: no change moves the loads)."""
    from datetime import UTC, datetime

    from netpilot.autopilot.loop import Autopilot
    from netpilot.change.drivers import SimulatorDriver
    from netpilot.change.workflow import ChangeStore

    sim = Simulator(network, seed=seed, start=datetime(2026, 1, 9, 14, 0, tzinfo=UTC), faults=faults)
    pilot = Autopilot(network, ChangeStore(":memory:"), SimulatorDriver(network, sim), tick_budget_ms=None,
                      congestion=10.0)
    return sim, pilot


def _busiest_link(network) -> tuple[str, str]:
    """The ends of the link that carries the most traffic at the busy hour (a misconfiguration there shows)."""
    from datetime import UTC, datetime

    frame = Simulator(network, seed=0, start=datetime(2026, 1, 9, 14, 0, tzinfo=UTC)).step()
    busiest = network.links[int(np.argmax(frame.link_load))]
    return busiest.source, busiest.target


def test_the_loop_believes_a_misconfiguration_routes_on_its_metric_and_lets_it_go(network):
    """A link set to the highest metric while it stays up: the loop localises it and believes it, the network it
    plans and verifies on runs the held metric on that link (the routers do, whatever is configured) while the
    configuration it changes does not; once the metric is put right the belief goes, before the frame that shows
    it is scored, so the repair opens no incident of its own."""
    a, b = _busiest_link(network)
    name = f"misconfig:{'--'.join(sorted((a, b)))}"
    # Put right after longer than the detectors' peak window (60 ticks): the onset's scores no longer mask it.
    fault = Fault(kind="misconfig", target=[a, b], at_minute=20, duration_minutes=70)
    sim, pilot = _watching(network, [fault])
    believed_at = dropped_at = None
    for _ in range(100):
        frame = sim.step()
        pilot.observe(frame)
        if believed_at is None and name in pilot.beliefs:
            believed_at = frame.minute
            metrics = {lk.id: lk.metric for lk in pilot.believed_network().links}
            assert metrics[f"{a}->{b}"] == metrics[f"{b}->{a}"] == 65535
            configured = {lk.id: lk.metric for lk in pilot.driver.running().links}
            assert configured[f"{a}->{b}"] < 65535
            assert sum(metrics[k] != v for k, v in configured.items()) == 2
        if believed_at is not None and dropped_at is None and name not in pilot.beliefs:
            dropped_at = frame.minute
    assert believed_at is not None and 20 <= believed_at < 30
    assert dropped_at is not None and 90 <= dropped_at <= 92
    assert next(i.causes[0]["kind"] for i in pilot.incidents if 20 <= i.minute < 30) == "misconfig"
    assert not [i for i in pilot.incidents if i.minute >= 90]  # the repair is not an incident


def test_a_misconfiguration_the_loads_do_not_bear_out_is_not_kept(network):
    """Believed where there is none (a wrong localisation), the misconfiguration fits the measured loads worse
    than the network without it, and the next frame drops it; one that is there is kept."""
    a, b = _busiest_link(network)
    sim, pilot = _watching(network, [Fault(kind="misconfig", target=[a, b], at_minute=5)])
    for _ in range(10):
        frame = sim.step()
        pilot.observe(frame)
    pilot.beliefs.clear()
    other = next(lk for lk in network.links if {lk.source, lk.target} != {a, b}
                 and frame.link_load[network.links.index(lk)] > 0.3 * frame.link_load.max())
    for source, target in ((a, b), (other.source, other.target)):
        pilot.beliefs.faults[f"misconfig:{source}--{target}"] = Fault(kind="misconfig", target=[source, target],
                                                                      at_minute=0)
    down = f"link_down:{other.source}--{other.target}"  # measured up: not borne out either
    pilot.beliefs.faults[down] = Fault(kind="link_down", target=[other.source, other.target], at_minute=0)
    phantom = f"misconfig:{other.source}--{other.target}"
    frame = sim.step()
    # Each judgement takes its own kinds only: the misconfigurations before the frame is scored, the rest after.
    assert pilot.beliefs.expire(frame, held_metrics=False)
    assert set(pilot.beliefs) == {f"misconfig:{a}--{b}", phantom}
    assert pilot.beliefs.expire(frame, held_metrics=True)
    assert list(pilot.beliefs) == [f"misconfig:{a}--{b}"]


def test_no_plan_sets_the_metric_a_believed_misconfiguration_holds(network):
    """The routers run the held metric whatever is configured there, so a plan that moved it would be planned
    and verified on a routing that never runs. A link held at metric 1 draws traffic and is the hottest link,
    the first a metric search would make heavier: while the misconfiguration is believed, the loop's changes
    leave that link's metric alone, and a plan it has seen refuted is known again under the held metric."""
    from datetime import UTC, datetime

    from netpilot.autopilot.loop import Autopilot
    from netpilot.change.drivers import SimulatorDriver
    from netpilot.change.workflow import ChangeStore, Policy

    a, b = _busiest_link(network)
    held = Fault(kind="misconfig", target=[a, b], at_minute=0, metric=1)
    sim = Simulator(network, seed=2, start=datetime(2026, 1, 9, 14, 0, tzinfo=UTC), faults=[held])
    store = ChangeStore(":memory:", Policy(auto_approve=["apply_metrics", "set_policies"]))
    pilot = Autopilot(network, store, SimulatorDriver(network, sim), tick_budget_ms=None, congestion=0.3,
                      explicit_paths=False)
    name = f"misconfig:{'--'.join(sorted((a, b)))}"
    pilot.beliefs.faults[name] = held  # as if localised (the localiser's hypothesis holds the highest metric)
    searched = 0
    for _ in range(40):
        frame = sim.step()
        searched += "decide.search" in pilot.observe(frame).stages_ms
        assert name in pilot.beliefs  # the loads bear it out all along
    assert searched >= 2  # the metric search ran while it believed the misconfiguration
    state = pilot.estimate.plan_state(frame, pilot.beliefs, ("a test's own fit",), 40)
    ids = [lk.id for lk in network.links]
    assert sorted(ids[e] for e in np.flatnonzero(state.held)) == sorted([f"{a}->{b}", f"{b}->{a}"])
    assert (state.metric[state.held] == 1).all() and (state.configured[state.held] > 1).all()
    hottest = max(range(len(ids)), key=lambda e: frame.link_utilisation[e])
    assert ids[hottest] in (f"{a}->{b}", f"{b}->{a}")  # what an unfrozen search would change first
    # The search's best so far (kept between ticks whether or not it became a change) and every change proposed.
    assert pilot.memory.incumbent is not None
    assert (pilot.memory.incumbent[1][state.held] == 1).all()
    for change in store.list():
        for intent in change.intents:
            assert not {f"{a}->{b}", f"{b}->{a}"} & set(intent.get("metrics", {}))
    # The actuator keys a refuted plan on the configuration; the planners, routing on the held metric, find it.
    from netpilot.autopilot.estimate import plan_key

    assert state.refuted_key(state.metric, []) == plan_key(state.configured, [])


def test_past_a_crowd_the_loads_do_not_bear_out_a_misconfiguration_is_believed_only_if_its_routing_fits(network):
    """A misconfiguration moves traffic, and the localiser can rank a crowd at one end above it. When the measured
    loads do not bear that crowd out, the loop goes down the ranking: the misconfiguration that is there (its
    routing fits the loads better than the routing without it) is believed, a phantom one on another link is not,
    and a cause of another kind below the crowd is not taken."""
    from netpilot.analytics.rca import Cause

    a, b = _busiest_link(network)
    sim, pilot = _watching(network, [Fault(kind="misconfig", target=[a, b], at_minute=5)])
    for _ in range(10):
        frame = sim.step()
        pilot.observe(frame)
    other = next(lk for lk in network.links if {lk.source, lk.target} != {a, b}
                 and frame.link_load[network.links.index(lk)] > 0.3 * frame.link_load.max())
    quiet = next(n.id for n in network.nodes if n.kind == "router" and n.id not in (a, b))
    frame = sim.step()

    def ranked(second: Cause) -> list[Cause]:
        crowd = Cause("flash_crowd", quiet, 0.6, Fault(kind="flash_crowd", target=quiet, at_minute=0, multiplier=3))
        return [crowd, second]

    def misconfig(source: str, target: str) -> Cause:
        return Cause("misconfig", f"{source}--{target}", 0.55, Fault(kind="misconfig", target=[source, target],
                                                                     at_minute=0))

    pilot.beliefs.clear()
    phantom = misconfig(other.source, other.target)
    assert not pilot.beliefs.adopt_ranked(ranked(phantom), frame) and not pilot.beliefs  # the crowd is not there
    down = Cause("link_down", f"{a}--{b}", 0.55, Fault(kind="link_down", target=[a, b], at_minute=0))
    assert not pilot.beliefs.adopt_ranked(ranked(down), frame) and not pilot.beliefs
    weak = Cause("misconfig", f"{a}--{b}", 0.45, Fault(kind="misconfig", target=[a, b], at_minute=0))  # too little
    assert not pilot.beliefs.adopt_ranked(ranked(weak), frame) and not pilot.beliefs
    assert pilot.beliefs.adopt_ranked(ranked(misconfig(a, b)), frame)
    assert list(pilot.beliefs) == [f"misconfig:{a}--{b}"]
    # Ranked first, a cause is believed as before, without the routing's test.
    pilot.beliefs.clear()
    assert pilot.beliefs.adopt_ranked([phantom], frame) and list(pilot.beliefs) == [f"misconfig:{phantom.target}"]
