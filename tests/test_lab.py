"""The FRR lab: real zebra and ospfd in network namespaces built from the twin. A metric change made on the
router moves the route the way the twin predicts. Bounded in time; removes everything by name and PID."""

from __future__ import annotations

import subprocess
import time

import pytest

from netpilot.change.intents import SetMetric, apply_intents
from netpilot.change.lab import Lab, available
from netpilot.change.render import interfaces, loopbacks
from netpilot.model.network import Demand, Link, Network, Router
from netpilot.model.routing import ecmp_flows

pytestmark = pytest.mark.skipif(available() is not None, reason=f"FRR lab unavailable: {available()}")


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
