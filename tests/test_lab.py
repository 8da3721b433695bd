"""The FRR lab: real zebra and ospfd in network namespaces built from the twin. A metric change made on the
router moves the route the way the twin predicts. Bounded in time; removes everything by name and PID."""

from __future__ import annotations

import subprocess
import time

import pytest

from netpilot.change.drivers.frr.lab import Lab, available
from netpilot.change.drivers.frr.render import interfaces, loopbacks
from netpilot.change.intents import SetMetric, apply_intents
from netpilot.model.network import Demand, Link, Network, Router
from netpilot.model.routing import ecmp_flows

LAB = pytest.mark.skipif(available() is not None, reason=f"FRR lab unavailable: {available()}")


def _square() -> Network:
    links = []
    for a, b, metric in (("a", "b", 10), ("b", "c", 10), ("c", "d", 10), ("d", "a", 10), ("a", "c", 1000)):
        links += [Link(source=a, target=b, capacity=100, metric=metric),
                  Link(source=b, target=a, capacity=100, metric=metric)]
    return Network(name="lab", nodes=[Router(id=n) for n in "abcd"], links=links,
                   demands=[Demand(source="a", target="c", volume=10)])


def _twin_next_hops(network: Network, source: str, target: str) -> set[str]:
    arrays = network.arrays()
    routing = ecmp_flows(arrays, arrays.metric, [[arrays.index[source], arrays.index[target]]], [1.0])
    used = routing.link_flow.sum(axis=0) > 0
    return {arrays.node_ids[arrays.dst[e]] for e in range(arrays.n_links)
            if used[e] and arrays.node_ids[arrays.src[e]] == source}


@pytest.fixture
def lab():
    if available() is not None:
        pytest.skip(f"FRR lab unavailable: {available()}")
    lab = Lab("nptest", _square())
    try:
        lab.up(converge_timeout=90)
        yield lab
    finally:
        lab.down()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "nptest-" not in left


def test_metric_change_moves_the_route_as_the_twin_predicts(lab):
    net = lab.network
    c_loop = f"{loopbacks(net)['c']}/32"
    peer_of = {iface.name: iface.peer for iface in interfaces(net)["a"]}

    def next_hops_within(expected: set[str], seconds: float = 30.0) -> set[str]:
        # OSPF settles ECMP over a few SPF runs after adjacencies come up: poll, bounded.
        deadline = time.monotonic() + seconds
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = {peer_of[i] for i in lab.routes("a").get(c_loop, [])}
            if seen == expected:
                break
            time.sleep(0.5)
        return seen

    assert lab.ping("a", "c")
    assert _twin_next_hops(net, "a", "c") == {"b", "d"}
    assert next_hops_within({"b", "d"}) == {"b", "d"}
    changed = apply_intents(net, [SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    iface = next(i for i, p in peer_of.items() if p == "b")
    lab.vtysh("a", "configure terminal", f"interface {iface}", "ip ospf cost 50")
    expected = _twin_next_hops(changed, "a", "c")
    assert expected == {"d"}
    assert next_hops_within(expected) == expected
    assert lab.ping("a", "c")


# --- drivers: commit-confirmed on real FRR --------------------------------------------------------------------

from netpilot.change.drivers import FrrDriver, TwinDriver  # noqa: E402


def _cost_on(lab: Lab, router: str, peer: str) -> int:
    iface = next(i.name for i in interfaces(lab.network)[router] if i.peer == peer)
    running = lab.vtysh(router, "show running-config")
    block = running.split(f"interface {iface}\n", 1)[1].split("exit", 1)[0]
    return int(block.split("ip ospf cost ", 1)[1].split()[0])


def test_commit_confirmed_reverts_by_itself_unless_confirmed(lab, tmp_path):
    driver = FrrDriver(lab, tmp_path / "journal.json")
    candidate = apply_intents(lab.network, [SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    driver.load_candidate(candidate)
    assert set(driver.compare().devices) == {"a"}
    driver.commit(confirm=2)
    assert _cost_on(lab, "a", "b") == 50
    assert driver.reverted.wait(30)  # nobody confirmed: the timer put it back
    assert _cost_on(lab, "a", "b") == 10
    driver.load_candidate(candidate)
    driver.commit(confirm=2)
    driver.confirm()
    time.sleep(3)
    assert _cost_on(lab, "a", "b") == 50 and not driver.reverted.is_set()


def test_a_crash_mid_apply_is_recovered_to_the_old_config(lab, tmp_path):
    journal = tmp_path / "journal.json"
    driver = FrrDriver(lab, journal)
    candidate = apply_intents(lab.network, [SetMetric(intent="set_metric", source="a", target="b", metric=50),
                                            SetMetric(intent="set_metric", source="c", target="d", metric=70)])
    driver.load_candidate(candidate)
    # Die after the first router: apply to router "a" only, journal says "committing".
    before = driver.get_state()
    driver._write_journal({"state": "committing", "before": before, "candidate": driver.candidate,
                           "applied": [], "deadline": None})
    driver._reload("a", driver.candidate["a"])
    driver._update_journal(applied=["a"])
    assert _cost_on(lab, "a", "b") == 50 and _cost_on(lab, "c", "d") == 10  # between: the state to avoid
    restarted = FrrDriver(lab, journal)
    outcome = restarted.recover()
    assert "rolled back" in outcome and "1 of 4 routers" in outcome
    assert _cost_on(lab, "a", "b") == 10 and _cost_on(lab, "c", "d") == 10
    assert "nothing to do" in FrrDriver(lab, journal).recover()


def test_twin_driver_has_the_same_interface():
    net = _square()
    driver = TwinDriver(net)
    candidate = apply_intents(net, [SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    driver.load_candidate(candidate)
    assert set(driver.compare().devices) == {"a"}
    driver.commit(confirm=0.2)
    assert driver.running() is candidate
    assert driver.reverted.wait(5) and driver.running() is net


# --- the whole apply: approved change, commit-confirmed, post-check, confirm or roll back --------------------

from netpilot.change.apply import apply_change, lab_matches_twin  # noqa: E402
from netpilot.change.intents import SetLinkState  # noqa: E402
from netpilot.change.workflow import ChangeStore  # noqa: E402


def _approved(store: ChangeStore) -> str:
    cid = store.propose([{"intent": "set_metric", "source": "a", "target": "b", "metric": 50}], "alice", "t", [])
    store.record_verification(cid, {"ok": True, "checks": []})
    store.approve(cid, "bob")
    return cid


def test_apply_confirms_when_the_network_does_what_the_twin_said(lab, tmp_path):
    store = ChangeStore(tmp_path / "c.db")
    cid = _approved(store)
    approved = apply_intents(lab.network, [SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    state = apply_change(store, cid, FrrDriver(lab, tmp_path / "j.json"), approved,
                         lab_matches_twin(lab, approved, timeout=45), confirm_seconds=120)
    assert state == "done" and _cost_on(lab, "a", "b") == 50
    assert [e["action"] for e in store.audit(cid)][-3:] == ["applying", "checking", "done"]


def test_apply_rolls_back_by_itself_when_the_post_check_fails(lab, tmp_path):
    store = ChangeStore(tmp_path / "c.db")
    cid = _approved(store)
    approved = apply_intents(lab.network, [SetMetric(intent="set_metric", source="a", target="b", metric=50)])
    # What reaches the routers differs from what was approved (a rendering bug, a fat finger): a-b goes down.
    pushed = apply_intents(lab.network, [SetLinkState(intent="set_link_state", source="a", target="b",
                                                      state="down")])
    state = apply_change(store, cid, FrrDriver(lab, tmp_path / "j.json"), pushed,
                         lab_matches_twin(lab, approved, timeout=20), confirm_seconds=120)
    assert state == "rolled_back"
    assert "the twin predicted" in store.audit(cid)[-1]["detail"]["post_check"]
    assert _cost_on(lab, "a", "b") == 10
    assert "shutdown" not in lab.vtysh("a", "show running-config")


def test_cli_apply_on_the_lab(lab, tmp_path):
    from typer.testing import CliRunner

    from netpilot.cli import app
    from netpilot.model.io import dumps_network

    net = tmp_path / "n.yaml"
    net.write_text(dumps_network(lab.network))
    db = tmp_path / "c.db"
    cid = _approved(ChangeStore(db))
    result = CliRunner().invoke(app, ["change", "apply", cid, "--network", str(net), "--lab", lab.name, "--db",
                                      str(db), "--journal", str(tmp_path / "j.json")])
    assert result.exit_code == 0, result.output
    assert "done" in result.output and _cost_on(lab, "a", "b") == 50


def test_cli_rollback_reverts_a_done_change_on_the_routers(lab, tmp_path):
    from typer.testing import CliRunner

    from netpilot.cli import app
    from netpilot.model.io import dumps_network

    net = tmp_path / "n.yaml"
    net.write_text(dumps_network(lab.network))
    db = tmp_path / "c.db"
    cid = _approved(ChangeStore(db))
    common = ["--network", str(net), "--lab", lab.name, "--db", str(db), "--journal", str(tmp_path / "j.json")]
    assert CliRunner().invoke(app, ["change", "apply", cid, *common]).exit_code == 0
    assert _cost_on(lab, "a", "b") == 50
    from datetime import timedelta

    from netpilot.change.identity import TokenBook

    bob = {"NETPILOT_TOKEN": TokenBook(tmp_path / "c.db.tokens.json").issue("bob", "person", timedelta(hours=1))}
    result = CliRunner().invoke(app, ["change", "rollback", cid, *common, "--why", "users complain"], env=bob)
    assert result.exit_code == 0, result.output
    assert "rolled_back" in result.output and _cost_on(lab, "a", "b") == 10
    store = ChangeStore(db)
    assert store.get(cid).state == "rolled_back" and store.audit(cid)[-1]["actor"] == "bob"
    again = CliRunner().invoke(app, ["change", "rollback", cid, *common, "--why", "twice"], env=bob)
    assert again.exit_code == 2 and "only a change being checked or done" in again.output


# --- telemetry from the lab -----------------------------------------------------------------------------------

from netpilot.change.drivers.frr.telemetry import LabTelemetry  # noqa: E402


def _by(samples, metric):
    return {s.entity: s.value for s in samples if s.metric == metric}


def test_lab_telemetry_measures_link_load_and_ospf_state(lab):
    telemetry = LabTelemetry(lab)
    first = telemetry.poll()
    assert _by(first, "load") == {}  # no interval yet
    assert set(_by(first, "ospf_adjacencies").values()) == {3.0} or _by(first, "ospf_adjacencies") == {
        f"node:{r}": float(n) for r, n in lab.expected_adjacencies().items()}
    assert all(v >= 3 for v in _by(first, "ospf_routes").values())  # the other three loopbacks at least
    assert set(_by(first, "up").values()) == {1.0}
    # 20 Mbit/s from a to c for 6 s over the two equal-cost paths via b and d. The kernel hashes a flow onto one
    # of them (the twin's even split holds over many flows), so one path carries it all; the diagonal is quiet.
    # Earlier tests reload the routers' configs: traffic starts once a routes to c via b and d again (bounded).
    c_loop = f"{loopbacks(lab.network)['c']}/32"
    peer_of = {iface.name: iface.peer for iface in interfaces(lab.network)["a"]}
    deadline = time.monotonic() + 30
    while {peer_of[i] for i in lab.routes("a").get(c_loop, [])} != {"b", "d"} and time.monotonic() < deadline:
        time.sleep(0.5)
    # Both polls read every router (an `ip` and two vtysh calls each, up to a second in all on a slow machine),
    # so the traffic outlasts the second poll's last reading: each router's interval then sees it throughout.
    client = lab.traffic("a", "c", mbps=20, seconds=6)
    time.sleep(1.0)
    telemetry.poll()
    time.sleep(1.5)
    loads = _by(telemetry.poll(), "load")
    client.wait(timeout=20)
    via = "b" if loads["link:a->b"] > loads["link:a->d"] else "d"
    other = "d" if via == "b" else "b"
    assert 16 < loads[f"link:a->{via}"] < 24 and 16 < loads[f"link:{via}->c"] < 24, loads
    assert loads[f"link:a->{other}"] < 1 and loads[f"link:{other}->c"] < 1, loads
    assert loads["link:a->c"] < 1 and loads["link:c->a"] < 1, loads
    # A cable taken down shows as down at both ends and OSPF loses the adjacency.
    iface = next(i.name for i in interfaces(lab.network)["a"] if i.peer == "b")
    subprocess.run(["ip", "-n", lab.namespace("a"), "link", "set", iface, "down"], check=True)
    deadline = time.monotonic() + 60
    while True:
        after = telemetry.poll()
        adjacencies = _by(after, "ospf_adjacencies")
        if adjacencies["node:a"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert _by(after, "up")["link:a->b"] == 0 and _by(after, "up")["link:b->a"] == 0
    assert adjacencies["node:a"] == 2


def test_cli_lab_poll_stores_the_lab_telemetry(lab, tmp_path):
    from typer.testing import CliRunner

    from netpilot.cli import app
    from netpilot.model.io import dumps_network
    from netpilot.telemetry.store import DuckDBStore

    net = tmp_path / "n.yaml"
    net.write_text(dumps_network(lab.network))
    store = tmp_path / "lab.duckdb"
    result = CliRunner().invoke(app, ["lab", "poll", "--network", str(net), "--name", lab.name, "--store", str(store),
                                      "--count", "2", "--interval", "0.5"])
    assert result.exit_code == 0, result.output
    stored = DuckDBStore(store)
    assert {s.metric for s in stored.latest("node:a")} == {"up", "ospf_adjacencies", "ospf_routes"}
    times, values = stored.query("link:a->b", "load")
    assert len(times) == 1 and 0 <= values[0] < 1  # the second poll's interval; only OSPF hellos on the wire
    stored.close()


def test_the_autopilot_runs_on_lab_telemetry_and_localises_a_cut_cable(lab):
    """The loop's input is telemetry, wherever it comes from: here the lab's counters and OSPF state."""
    from datetime import UTC, datetime

    from netpilot.autopilot.loop import Autopilot
    from netpilot.telemetry.sim.simulator import Simulator, step_from_samples

    layout = Simulator(lab.network)
    pilot = Autopilot(lab.network, ChangeStore(), TwinDriver(lab.network), congestion=0.9)
    telemetry = LabTelemetry(lab)
    started = time.monotonic()

    def tick():
        now = datetime.now(UTC)
        step = step_from_samples(layout, telemetry.poll(now), now, (time.monotonic() - started) / 60)
        return pilot.observe(step)

    for _ in range(20):
        tick()
        time.sleep(0.3)
    quiet = len(pilot.incidents)
    iface = next(i.name for i in interfaces(lab.network)["b"] if i.peer == "c")
    subprocess.run(["ip", "-n", lab.namespace("b"), "link", "set", iface, "down"], check=True)
    for _ in range(30):
        tick()
        if len(pilot.incidents) > quiet and pilot.incidents[-1].causes:
            break
        time.sleep(0.3)
    incident = pilot.incidents[-1]
    assert len(pilot.incidents) > quiet and incident.causes, [i.alarms for i in pilot.incidents]
    assert (incident.causes[0]["kind"], incident.causes[0]["target"]) == ("link_down", "b--c"), incident.causes[:3]


@LAB
def test_down_removes_what_a_build_that_died_midway_left_behind():
    lab = Lab("nptest", _square())
    lab.down()
    # A build killed between `ip link add` and moving the ends into namespaces leaves the pair here.
    subprocess.run(["ip", "link", "add", "nptest0a", "type", "veth", "peer", "name", "nptest0b"], check=True)
    lab.down()
    names = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert "nptest0a" not in names and "nptest0b" not in names
