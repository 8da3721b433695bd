"""Explicit paths (``PathPolicy``) on Linux routers as policy routing: per pair, a rule on every router of its
paths sends the pair's packets (from the source's addresses to the target's) to a table of the pair's own,
whose route splits them over the next hops the paths take from there, weighted by the share of the pair's
traffic each carries. Hop by hop, the split reproduces every link's share of the policy as long as the paths
form no loop. Rules and tables live in ranges netpilot owns, so they are replaced whole and read back."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass

import networkx as nx

from netpilot.change.drivers.frr.render import interfaces, loopbacks
from netpilot.model.network import Network, PathPolicy, WeightedPath

#: Rule priorities and table ids netpilot owns (the main table's rule is at 32766).
FIRST_TABLE = 20000
MAX_PAIRS = 4000
#: The kernel takes integer next-hop weights 1..256.
WEIGHT_SCALE = 200


@dataclass(frozen=True)
class NextHop:
    peer: str     # the neighbouring node
    via: str      # its address on the shared cable
    dev: str      # this router's interface on that cable
    weight: int


@dataclass(frozen=True)
class PairTable:
    """One router's part of one pair's policy: packets from ``sources`` to ``destinations`` (prefixes) go
    to ``hops`` by table ``table``."""

    source: str
    target: str
    table: int
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    hops: tuple[NextHop, ...]


def endpoint_prefixes(network: Network) -> dict[str, tuple[str, ...]]:
    """Per node, the prefixes its traffic is sent from and to: a router's loopback; a cell's or edge site's
    addresses on its access cables (it has no loopback in the lab)."""
    loops = loopbacks(network)
    out: dict[str, list[str]] = {node.id: [] for node in network.nodes}
    for router, ifaces in interfaces(network).items():
        out[router] = [f"{loops[router]}/32"]
        for iface in ifaces:
            if iface.passive:  # the far end is a cell or edge site: its address on this cable
                out[iface.peer].append(f"{iface.peer_address}/32")
    return {node: tuple(sorted(set(prefixes))) for node, prefixes in out.items()}


def policy_problems(network: Network) -> list[str]:
    """What in ``network.policies`` policy routing cannot carry as the twin does, one line per problem."""
    problems = []
    routers = {n.id for n in network.nodes if n.kind == "router"}
    adjacent = _adjacency(network)
    if len(network.policies) > MAX_PAIRS:
        problems.append(f"{len(network.policies)} pairs with explicit paths; policy routing here takes {MAX_PAIRS}")
    for policy in network.policies:
        pair = f"{policy.source}->{policy.target}"
        graph = nx.DiGraph()
        for path in policy.paths:
            for a, b in zip(path.nodes, path.nodes[1:]):
                if (a, b) not in adjacent:
                    problems.append(f"{pair}: no cable {a}-{b} in the lab")
                if a in routers or b in routers:
                    graph.add_edge(a, b)
            for hop in path.nodes[1:-1]:
                if hop not in routers:
                    problems.append(f"{pair}: passes through {hop}, which is not a router")
        if not nx.is_directed_acyclic_graph(graph):
            problems.append(f"{pair}: its paths form a loop, which hop-by-hop tables cannot split as the twin does")
        if policy.source not in routers and sum(1 for (a, _b) in adjacent if a == policy.source) > 1:
            problems.append(f"{pair}: {policy.source} is attached to several routers; which one its traffic "
                            "enters by is not known")
    return problems


def render_paths(network: Network) -> dict[str, list[PairTable]]:
    """Per router, its part of every pair's policy (empty lists for routers on no policy's path)."""
    adjacent = _adjacency(network)
    prefixes = endpoint_prefixes(network)
    routers = [n.id for n in network.nodes if n.kind == "router"]
    out: dict[str, list[PairTable]] = {r: [] for r in routers}
    ordered = sorted(network.policies, key=lambda p: (p.source, p.target))
    for k, policy in enumerate(ordered):
        total = sum(p.weight for p in policy.paths)
        flow: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for path in policy.paths:
            for a, b in zip(path.nodes, path.nodes[1:]):
                flow[a][b] += path.weight / total
        for router in routers:
            if router not in flow:
                continue
            shares = flow[router]
            biggest = max(shares.values())
            hops = tuple(NextHop(peer, adjacent[(router, peer)][0], adjacent[(router, peer)][1],
                                 max(1, round(WEIGHT_SCALE * share / biggest)))
                         for peer, share in sorted(shares.items()))
            out[router].append(PairTable(policy.source, policy.target, FIRST_TABLE + k, prefixes[policy.source],
                                         prefixes[policy.target], hops))
    return out


def commands(tables: list[PairTable]) -> list[str]:
    """``ip -batch`` lines that install one router's tables and rules (after :func:`flush_commands`)."""
    lines = []
    for t in tables:
        for destination in t.destinations:
            hops = " ".join(f"nexthop via {h.via} dev {h.dev} weight {h.weight}" for h in t.hops)
            lines.append(f"route replace {destination} table {t.table} proto static {hops}")
        for source in t.sources:
            for destination in t.destinations:
                lines.append(f"rule add pref {t.table} from {source} to {destination} lookup {t.table}")
    return lines


def _ip(namespace: str, *args: str) -> str:
    result = subprocess.run(["ip", "-n", namespace, *args], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"{namespace}: ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def installed(namespace: str) -> dict[int, tuple[list[tuple[str, str]], dict[str, list[tuple[str, str, int]]]]]:
    """What a router runs in netpilot's range: table -> (rules as (from, to), routes as destination ->
    [(via, dev, weight)])."""
    rules = json.loads(_ip(namespace, "-j", "rule", "show") or "[]")
    out: dict[int, tuple[list[tuple[str, str]], dict[str, list[tuple[str, str, int]]]]] = {}
    for rule in rules:
        table = int(rule.get("table", 0)) if str(rule.get("table", "")).isdigit() else 0
        if FIRST_TABLE <= table < FIRST_TABLE + MAX_PAIRS:
            entry = out.setdefault(table, ([], {}))
            entry[0].append((_prefix(rule.get("src", "0.0.0.0"), rule.get("srclen", 32)),
                             _prefix(rule.get("dst", "0.0.0.0"), rule.get("dstlen", 32))))
    for table, (_rules, routes) in out.items():
        for route in json.loads(_ip(namespace, "-j", "route", "show", "table", str(table)) or "[]"):
            destination = route["dst"] if "/" in route["dst"] else f"{route['dst']}/32"
            hops = route.get("nexthops") or [{"gateway": route.get("gateway"), "dev": route.get("dev"),
                                               "weight": 1}]
            routes[destination] = _hops((h.get("gateway", ""), h.get("dev", ""), int(h.get("weight", 1)))
                                        for h in hops)
    return {table: (sorted(rules), routes) for table, (rules, routes) in out.items()}


def flush_commands(current: dict) -> list[str]:
    """``ip -batch`` lines that remove what :func:`installed` found."""
    lines = []
    for table, (rules, _routes) in current.items():
        lines += [f"rule del pref {table} from {s} to {d} lookup {table}" for s, d in rules]
        lines.append(f"route flush table {table}")
    return lines


def install(namespace: str, tables: list[PairTable]) -> None:
    """Replace netpilot's rules and tables on one router by ``tables``."""
    lines = flush_commands(installed(namespace)) + commands(tables)
    if not lines:
        return
    result = subprocess.run(["ip", "-n", namespace, "-batch", "-"], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{namespace}: ip -batch: {result.stderr.strip()[-400:]}")


def expected(tables: list[PairTable]) -> dict[int, tuple[list[tuple[str, str]], dict[str, list[tuple[str, str, int]]]]]:
    """What :func:`installed` reads back once ``tables`` are installed."""
    return {t.table: (sorted((s, d) for s in t.sources for d in t.destinations),
                      {d: _hops((h.via, h.dev, h.weight) for h in t.hops) for d in t.destinations})
            for t in tables}


def read_policies(network: Network, per_router: dict[str, dict]) -> list[PathPolicy]:
    """The path policies the routers run, rebuilt from every router's :func:`installed` tables by walking each
    pair's next hops from its source (weights as the shares they give each path)."""
    owner = {prefix: node for node, prefixes in endpoint_prefixes(network).items() for prefix in prefixes}
    adjacent = _adjacency(network)
    peer_at = {(router, via): peer for (router, peer), (via, _dev) in adjacent.items()}
    pairs: dict[tuple[str, str], dict[str, list[tuple[str, float]]]] = defaultdict(dict)
    for router, tables in per_router.items():
        for _table, (rules, routes) in tables.items():
            if not rules:
                continue
            source, target = owner.get(rules[0][0]), owner.get(rules[0][1])
            if source is None or target is None:
                continue
            hops = next(iter(routes.values()), [])
            total = sum(w for _via, _dev, w in hops) or 1
            pairs[(source, target)][router] = [(peer_at.get((router, via), "?"), w / total) for via, _dev, w in hops]
    policies = []
    for (source, target), split in sorted(pairs.items()):
        starts = [source] if source in split else [r for r in split if (source, r) in adjacent]
        paths: list[tuple[list[str], float]] = []
        for start in starts:
            _walk(split, target, start, [source] if start == source else [source, start], 1.0 / len(starts),
                  len(network.nodes), paths)
        if paths:
            policies.append(PathPolicy(source=source, target=target,
                                       paths=[WeightedPath(nodes=nodes, weight=round(share, 6))
                                              for nodes, share in paths]))
    return policies


def _hops(hops) -> list[tuple[str, str, int]]:
    """Next hops in a canonical order; a lone next hop's weight means nothing (the kernel does not keep it)."""
    out = sorted(hops)
    return [(via, dev, 1) for via, dev, _w in out] if len(out) == 1 else out


def _walk(split: dict[str, list[tuple[str, float]]], target: str, node: str, nodes: list[str], share: float,
          limit: int, out: list[tuple[list[str], float]]) -> None:
    """Every path from ``node`` to ``target`` along the tables' next hops, with the share of traffic it gets."""
    if node == target:
        out.append((nodes, share))
        return
    if node not in split or len(nodes) > limit:  # a table missing on the way, or a loop: no path the twin has
        return
    for peer, part in split[node]:
        _walk(split, target, peer, [*nodes, peer], share * part, limit, out)


def _adjacency(network: Network) -> dict[tuple[str, str], tuple[str, str]]:
    """(router, neighbour) -> (the neighbour's address on their cable, the router's interface); for a cell or
    edge site, (node, router) -> (the router's address, '')."""
    out = {}
    for router, ifaces in interfaces(network).items():
        for iface in ifaces:
            out[(router, iface.peer)] = (iface.peer_address, iface.name)
            if iface.passive:
                out[(iface.peer, router)] = (iface.address.split("/")[0], "")
    return out


def _prefix(address: str, length: int) -> str:
    return address if "/" in address else f"{address}/{length}"
