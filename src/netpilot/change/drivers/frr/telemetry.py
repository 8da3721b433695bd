"""Telemetry from a running FRR lab: link load from interface byte counters, link and router state, and each
router's OSPF adjacencies and RIB, as the same samples the simulator and the broker deliver."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from netpilot.change.drivers.frr.lab import Lab, LabError, _alive
from netpilot.change.drivers.frr.render import cables
from netpilot.telemetry.schema import Sample, link_entity, node_entity


class LabTelemetry:
    """Polls a lab. Per link whose sending end is a router: ``load`` (Mbit/s over the interval since the last
    poll), ``utilisation`` (load over the twin's capacity) and ``up`` (both ends operationally up). Per router:
    ``up`` (zebra and ospfd alive), ``ospf_adjacencies`` (neighbours in Full) and ``ospf_routes``. The first poll
    has no interval yet, so it reports state only."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        network = lab.network
        routers = set(lab.routers)
        # (router, interface) -> the link it sends on, and that link's far end.
        self._sends: dict[tuple[str, str], tuple[str, int]] = {}
        for n, (i, j) in enumerate(cables(network)):
            for index in (i, j):
                if index is None:
                    continue
                link = network.links[index]
                if link.source in routers:
                    self._sends[(link.source, f"np{n}")] = (link.target, index)
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def poll(self, ts: datetime | None = None) -> list[Sample]:
        ts = ts or datetime.now(UTC)
        network, lab = self.lab.network, self.lab
        pids = lab.pids()
        samples: list[Sample] = []
        state: dict[tuple[str, str], bool] = {}
        for router in lab.routers:
            alive = all(_alive(pid) for pid in pids.get(router, {}).values()) and len(pids.get(router, {})) > 0
            samples.append(Sample(ts, node_entity(router), "up", float(alive)))
            if not alive:
                continue
            try:
                counters = lab.counters(router)
                now = time.monotonic()  # when the counters were read, not after the slower vtysh queries
                adjacencies = sum(1 for s in lab.neighbors(router).values() if s.startswith("Full"))
                routes = len(lab.routes(router))
            except (LabError, ValueError):  # a namespace being torn down answers nothing usable
                continue
            samples.append(Sample(ts, node_entity(router), "ospf_adjacencies", float(adjacencies)))
            samples.append(Sample(ts, node_entity(router), "ospf_routes", float(routes)))
            for (sender, iface), (_peer, index) in self._sends.items():
                if sender != router or iface not in counters:
                    continue
                entry = counters[iface]
                state[(sender, iface)] = entry["up"]
                previous = self._last.get((sender, iface))
                self._last[(sender, iface)] = (now, entry["tx_bytes"])
                if previous is None or now <= previous[0]:
                    continue
                link = network.links[index]
                mbps = max(0, entry["tx_bytes"] - previous[1]) * 8 / (now - previous[0]) / 1e6
                entity = link_entity(link.source, link.target, link.key)
                samples.append(Sample(ts, entity, "load", mbps))
                if link.capacity > 0:
                    samples.append(Sample(ts, entity, "utilisation", mbps / link.capacity))
        for (sender, iface), (peer, index) in self._sends.items():
            if (sender, iface) not in state:
                continue
            far = state.get((peer, iface), True)  # a cell or edge site has no namespace: its end counts as up
            link = network.links[index]
            samples.append(Sample(ts, link_entity(link.source, link.target, link.key), "up",
                                  float(state[(sender, iface)] and far)))
        return samples
