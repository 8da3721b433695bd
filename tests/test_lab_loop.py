"""The FRR lab driven for real: explicit paths carried by policy routing in the routers' kernels (counters
prove the traffic took the policy's path), and the autopilot live on a lab — a cable cut, the loop's change
landing on the routers commit-confirmed and post-checked against the twin. Namespaces are named ``npdrv*``;
everything is bounded in time and removed by name and PID."""

from __future__ import annotations

import subprocess
import time

import pytest

from netpilot.change.drivers import DriverError, FrrDriver, open_driver
from netpilot.change.drivers.frr import paths
from netpilot.change.drivers.frr.lab import Lab, available
from netpilot.change.drivers.frr.render import interfaces
from netpilot.change.drivers.frr.telemetry import LabTelemetry
from netpilot.change.intents import SetMetric, SetPolicies
from netpilot.model.network import Demand, Link, Network, PathPolicy, Router

pytestmark = pytest.mark.skipif(available() is not None, reason=f"FRR lab unavailable: {available()}")


def _network(spec, capacity: float, demands) -> Network:
    links = []
    for a, b, metric in spec:
        links += [Link(source=a, target=b, capacity=capacity, metric=metric),
                  Link(source=b, target=a, capacity=capacity, metric=metric)]
    return Network(name="lab", nodes=[Router(id=n) for n in "abcd"], links=links,
                   demands=[Demand(source=s, target=t, volume=v) for s, t, v in demands])


def _built(name: str, network: Network):
    lab = Lab(name, network)
    try:
        lab.up(converge_timeout=90)
        yield lab
    finally:
        lab.down()
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{name}-" not in left


@pytest.fixture
def square():
    yield from _built("npdrvp", _network([("a", "b", 10), ("b", "c", 10), ("c", "d", 10), ("d", "a", 10),
                                          ("a", "c", 1000)], 100, [("a", "b", 5)]))


def _loads_during(lab: Lab, flows, seconds: float = 4.0) -> dict[str, float]:
    """Mbit/s per link (``link:a->b``) over an interval inside ``flows`` (source, target, Mbit/s)."""
    telemetry = LabTelemetry(lab)
    clients = [lab.traffic(s, t, mbps=mbps, seconds=seconds + 3) for s, t, mbps in flows]
    try:
        time.sleep(1.0)
        telemetry.poll()
        time.sleep(seconds - 1.5)
        return {s.entity: s.value for s in telemetry.poll() if s.metric == "load"}
    finally:
        for client in clients:
            client.wait(timeout=seconds + 20)


def _cost_on(lab: Lab, router: str, peer: str) -> int:
    iface = next(i.name for i in interfaces(lab.network)[router] if i.peer == peer)
    block = lab.vtysh(router, "show running-config").split(f"interface {iface}\n", 1)[1].split("exit", 1)[0]
    return int(block.split("ip ospf cost ", 1)[1].split()[0])


def test_an_explicit_path_carries_the_pairs_traffic_on_the_routers(square, tmp_path):
    lab = square
    driver = open_driver(f"frr-lab://{lab.name}", lab.network, journal=tmp_path / "journal.json", settle=30)
    assert isinstance(driver, FrrDriver) and driver.lab.name == lab.name
    assert driver.capabilities().accepts("set_policies")
    assert driver.running().policies == [] and driver.check().ok
    # a->b is one hop by OSPF; the policy sends it the long way round, through d and c.
    detour = PathPolicy(source="a", target="b", paths=[{"nodes": ["a", "d", "c", "b"], "weight": 1}])
    driver.load_candidate([SetPolicies(intent="set_policies", policies=[detour])])
    diff = driver.compare().devices
    assert set(diff) == {"a", "d", "c"} and all("policy routing:" in text for text in diff.values())
    driver.commit(confirm=120)
    check = driver.check()
    assert check.ok, check.mismatches
    driver.confirm()
    assert driver.running().policies == [detour]
    assert FrrDriver(lab, tmp_path / "other.json").read().policies == [detour]  # read back from the kernels
    loads = _loads_during(lab, [("a", "b", 8)])
    for link in ("link:a->d", "link:d->c", "link:c->b"):
        assert 6 < loads[link] < 10, loads
    assert loads["link:a->b"] < 0.5, loads
    # The other direction and other pairs still follow OSPF.
    loads = _loads_during(lab, [("b", "a", 8)])
    assert 6 < loads["link:b->a"] < 10 and loads["link:b->c"] < 0.5, loads
    assert lab.ping("a", "b")

    # A router that lost its table is a forwarding mismatch the post-check names.
    table = paths.render_paths(driver.running())["d"][0].table
    subprocess.run(["ip", "-n", lab.namespace("d"), "route", "flush", "table", str(table)], check=True)
    driver.settle = 1.0
    broken = driver.check()
    assert not broken.ok and broken.mismatches == ("d: its policy tables are not the running policies' "
                                                   "(1 pair tables expected)",)

    # Rolled back: every router's tables as before the commit, the pair on OSPF again.
    driver.rollback()
    assert driver.running().policies == [] and driver.check().ok
    assert all(paths.installed(lab.namespace(r)) == {} for r in lab.routers)
    loads = _loads_during(lab, [("a", "b", 8)])
    assert 6 < loads["link:a->b"] < 10 and loads["link:a->d"] < 0.5, loads


def test_explicit_paths_revert_by_themselves_unless_confirmed_and_metrics_go_with_them(square, tmp_path):
    lab = square
    driver = FrrDriver(lab, tmp_path / "journal.json", settle=30)
    detour = PathPolicy(source="a", target="c", paths=[{"nodes": ["a", "c"], "weight": 1},
                                                       {"nodes": ["a", "b", "c"], "weight": 1}])
    driver.load_candidate([SetPolicies(intent="set_policies", policies=[detour]),
                           SetMetric(intent="set_metric", source="c", target="d", metric=40)])
    driver.commit(confirm=3)
    assert _cost_on(lab, "c", "d") == 40 and len(paths.installed(lab.namespace("a"))) == 1
    (weights,) = [{dev: w for _via, dev, w in hops} for _rules, routes in paths.installed(lab.namespace("a")).values()
                  for hops in routes.values()]
    assert sorted(weights.values()) == [200, 200]  # half each way
    assert driver.reverted.wait(40)
    assert _cost_on(lab, "c", "d") == 10 and paths.installed(lab.namespace("a")) == {}
    assert driver.running().policies == [] and driver.check().ok
    # Paths that cross each other both ways (a->c on one, c->a on the other) would loop hop by hop: refused
    # before anything is staged.
    with pytest.raises(DriverError, match="form a loop"):
        driver.load_candidate([SetPolicies(intent="set_policies", policies=[
            PathPolicy(source="b", target="d", paths=[{"nodes": ["b", "a", "c", "d"], "weight": 1},
                                                      {"nodes": ["b", "c", "a", "d"], "weight": 1}])])])
    assert driver.candidate is None


# --- the autopilot live on a lab --------------------------------------------------------------------------------

#: a->c runs a-b-c (20; a-d-c is 25, the diagonal 30); d->c runs direct. Cut a-b and a->c moves onto a-d-c:
#: d->c then carries 11 Mbit/s of its 10, until the loop moves a->c off it.
RING = [("a", "b", 10), ("b", "c", 10), ("a", "d", 10), ("d", "c", 15), ("a", "c", 30)]
RING_DEMANDS = [("a", "c", 6.0), ("d", "c", 5.0)]


@pytest.fixture
def ring():
    yield from _built("npdrvl", _network(RING, 10, RING_DEMANDS))


def test_the_autopilot_drives_the_lab_a_cut_cable_to_a_change_on_the_routers(ring, tmp_path):
    from netpilot.autopilot.live import LabAutopilot
    from netpilot.change.intents import IntentList
    from netpilot.change.workflow import Policy

    lab = ring
    began = time.monotonic()
    live = LabAutopilot(lab.network, lab.name, journal=tmp_path / "journal.json", changes_db=tmp_path / "c.db",
                        policy=Policy(auto_approve=["apply_metrics", "set_metric", "set_policies"]),
                        commit_confirm=120, tick_budget_ms=None)
    assert live.journal_recovered.startswith("no journal") and live.recovered == []
    clients = [lab.stream(s, t, mbps=v, seconds=150) for s, t, v in RING_DEMANDS]
    try:
        time.sleep(1.0)
        for _ in range(30):  # a healthy baseline, then the cut
            live.step()
            time.sleep(0.2)
        assert live.changes.list() == [], [c.intents for c in live.changes.list()]
        opened_before_cut = len(live.autopilot.incidents)
        cut_at = time.monotonic()
        iface = next(i.name for i in interfaces(lab.network)["a"] if i.peer == "b")
        subprocess.run(["ip", "-n", lab.namespace("a"), "link", "set", iface, "down"], check=True)
        done = None
        trail = []  # what the loop saw and did each tick after the cut: the failure message when no change lands
        while done is None and time.monotonic() - cut_at < 120:
            tick = live.step()
            trail.append((round(time.monotonic() - cut_at, 1), round(tick.mlu, 2), tick.alarms, tick.change,
                          live.autopilot.beliefs.key(), live.autopilot.memory.no_plan, sorted(tick.stages_ms)))
            done = next((a for a in live.autopilot.applied if a.state != "checking"), None)
            time.sleep(0.2)
        took = time.monotonic() - cut_at
        pilot = live.autopilot
        # The incident the cut opened names the cut link first. Real traffic keeps moving after the change, and a
        # later incident (the detour's own ramp) may open before the loop stops; it is not the cut's.
        after_cut = pilot.incidents[opened_before_cut:]
        assert after_cut and after_cut[0].causes[0]["target"] == "a--b", \
            [(i.alarms, i.causes[:2]) for i in pilot.incidents]
        assert done is not None, ([(c.state, c.intents) for c in live.changes.list()], live.errors, trail[-40:])
        change = live.changes.get(done.change_id)
        assert change.state == "done", live.changes.audit(done.change_id)[-1]
        post_check = live.changes.audit(done.change_id)[-1]["detail"]["post_check"]
        assert "every router forwards to every loopback as the twin predicted" in post_check
        outcome = live.changes.audit(done.change_id)[-1]["detail"]["outcome"]
        assert outcome["mlu_before"] > 1.0 and outcome["measured_mlu"] < 0.9, outcome  # measured on the routers
        # The change is on the routers: every metric it set is the cost configured on the router.
        for intent in IntentList.model_validate(change.intents).root:
            for link_id, metric in getattr(intent, "metrics", {}).items():
                source, target = link_id.split("->")
                assert _cost_on(lab, source, target) == metric, (link_id, metric)
        assert live.autopilot.driver.check().ok
        # And it relieved the link the cut overloaded, as measured on the routers a few ticks on.
        for _ in range(4):
            live.step()
            time.sleep(0.5)
        latest = live.latest
        assert float(latest.link_utilisation[latest.link_up].max()) < 0.9, latest.link_utilisation
        assert took < 120 and time.monotonic() - began < 240
    finally:
        live.autopilot.driver.close()
        for client in clients:
            client.kill()
            client.wait(timeout=10)


def test_the_cli_and_the_api_on_a_live_lab_a_persons_explicit_path_reaches_the_routers(square, tmp_path):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from netpilot.api.app import create_app, make_tokens
    from netpilot.autopilot.live import LabAutopilot
    from netpilot.cli import app
    from netpilot.model.io import dumps_network

    lab = square
    net = tmp_path / "n.yaml"
    net.write_text(dumps_network(lab.network))
    result = CliRunner().invoke(app, ["autopilot", "--lab", lab.name, "--network", str(net), "--db",
                                      str(tmp_path / "cli.db"), "--journal", str(tmp_path / "cli.json"),
                                      "--seconds", "4"])
    assert result.exit_code == 0, result.output
    assert "4 routers; journal: no journal" in result.output and "0 incidents" in result.output

    live = LabAutopilot(lab.network, lab.name, journal=tmp_path / "j.json", changes_db=tmp_path / "c.db",
                        tick_budget_ms=None)
    tokens = make_tokens({"oscar": "operator", "alice": "approver"})
    headers = {who.user: {"Authorization": f"Bearer {token}"} for token, who in tokens.items()}
    client = TestClient(create_app(live, tokens))
    try:
        for _ in range(3):
            live.step()
        state = client.get("/api/state", headers=headers["oscar"]).json()
        assert state["ticks"] == 3 and all(state["link_up"]) and state["metric"][0] == 10
        detour = {"source": "a", "target": "b", "paths": [{"nodes": ["a", "d", "c", "b"], "weight": 1}]}
        proposed = client.post("/api/changes", headers=headers["oscar"],
                               json={"intents": [{"intent": "set_policies", "policies": [detour]}],
                                     "why": "take a->b the long way round"})
        assert proposed.status_code == 201 and proposed.json()["state"] == "verified", proposed.json()
        change_id = proposed.json()["id"]
        assert client.post(f"/api/changes/{change_id}/approve", headers=headers["alice"]).status_code == 200
        deadline = time.monotonic() + 90
        while live.changes.get(change_id).state not in ("done", "rolled_back") and time.monotonic() < deadline:
            live.step()
            time.sleep(0.2)
        assert live.changes.get(change_id).state == "done", live.changes.audit(change_id)[-1]
        post_check = live.changes.audit(change_id)[-1]["detail"]["post_check"]
        assert "runs the policy tables of 1 explicit-path pairs" in post_check
        assert [p.model_dump(mode="json") for p in live.autopilot.driver.running().policies] == [detour]
        assert {r for r in lab.routers if paths.installed(lab.namespace(r))} == {"a", "d", "c"}
        changes = client.get("/api/changes", headers=headers["oscar"]).json()
        assert [c["state"] for c in changes] == ["done"]
    finally:
        live.autopilot.driver.close()
