"""Device configuration from the twin: FRR (zebra + ospfd) text and a vendor-neutral JSON form, deterministic,
and the per-device diff a person reviews."""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass

from netpilot.model.network import Network

LINK_POOL = ipaddress.ip_network("10.0.0.0/9")        # one /31 per physical link
LOOPBACK_POOL = ipaddress.ip_network("10.255.0.0/16")  # one /32 per router


@dataclass(frozen=True)
class Interface:
    name: str
    address: str          # a.b.c.d/31
    peer: str
    peer_address: str
    cost: int
    up: bool
    passive: bool         # towards a cell or edge site: announced, no adjacency


def cables(network: Network) -> list[tuple[int, int | None]]:
    """Pairs (forward link, reverse link or None) in network order; each pair is one cable."""
    index: dict[tuple[str, str, int], int] = {}
    for i, lk in enumerate(network.links):
        index.setdefault((lk.source, lk.target, lk.key), i)
    seen, pairs = set(), []
    for i, lk in enumerate(network.links):
        if i in seen:
            continue
        j = index.get((lk.target, lk.source, lk.key))
        seen.add(i)
        if j is not None and j not in seen:
            seen.add(j)
            pairs.append((i, j))
        else:
            pairs.append((i, None))
    return pairs


def interfaces(network: Network) -> dict[str, list[Interface]]:
    """Per router, its interfaces with addresses from the pools (the n-th cable gets the n-th /31)."""
    kinds = {n.id: n.kind for n in network.nodes}
    subnets = LINK_POOL.subnets(new_prefix=31)
    out: dict[str, list[Interface]] = {n.id: [] for n in network.nodes if n.kind == "router"}
    for n, (i, j) in enumerate(cables(network)):
        net = next(subnets)
        a, b = network.links[i], network.links[j] if j is not None else None
        low, high = str(net[0]), str(net[1])
        name = f"np{n}"
        up = a.state == "up" and (b is None or b.state == "up")
        if a.source in out:
            out[a.source].append(Interface(name, f"{low}/31", a.target, high, a.metric, up,
                                           kinds[a.target] != "router"))
        if a.target in out:
            out[a.target].append(Interface(name, f"{high}/31", a.source, low, b.metric if b else a.metric, up,
                                           kinds[a.source] != "router"))
    return out


def loopbacks(network: Network) -> dict[str, str]:
    routers = [n.id for n in network.nodes if n.kind == "router"]
    return {r: str(LOOPBACK_POOL[i + 1]) for i, r in enumerate(routers)}


def render_frr(network: Network) -> dict[str, str]:
    """Per router, an frr.conf for zebra and ospfd (OSPFv2, area 0, point-to-point links)."""
    loops = loopbacks(network)
    configs = {}
    for router, ifaces in interfaces(network).items():
        lines = ["frr defaults traditional", f"hostname {router}", "log syslog informational", "!",
                 "interface lo", f" ip address {loops[router]}/32", " ip ospf area 0", "!"]
        for iface in ifaces:
            lines += [f"interface {iface.name}", f" description to {iface.peer}", f" ip address {iface.address}",
                      " ip ospf area 0", " ip ospf network point-to-point", f" ip ospf cost {iface.cost}"]
            if iface.passive:
                lines.append(" ip ospf passive")
            if not iface.up:
                lines.append(" shutdown")
            lines.append("!")
        lines += ["router ospf", f" ospf router-id {loops[router]}", "!", "end"]
        configs[router] = "\n".join(lines) + "\n"
    return configs


def render_json(network: Network) -> dict[str, dict]:
    """The same intent, vendor-neutral: what each router should have, field by field."""
    loops = loopbacks(network)
    return {router: {"hostname": router, "router_id": loops[router], "loopback": f"{loops[router]}/32",
                     "interfaces": [{"name": i.name, "address": i.address, "peer": i.peer, "cost": i.cost,
                                     "enabled": i.up, "passive": i.passive} for i in ifaces]}
            for router, ifaces in interfaces(network).items()}


def config_diff(before: Network, after: Network) -> dict[str, str]:
    """Per router whose configuration changes, the unified diff of its frr.conf."""
    old, new = render_frr(before), render_frr(after)
    diffs = {}
    for router in sorted(set(old) | set(new)):
        text = "".join(difflib.unified_diff(old.get(router, "").splitlines(keepends=True),
                                            new.get(router, "").splitlines(keepends=True),
                                            fromfile=f"{router}/frr.conf (running)",
                                            tofile=f"{router}/frr.conf (candidate)"))
        if text:
            diffs[router] = text
    return diffs
