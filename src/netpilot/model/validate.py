"""Semantic checks of a network beyond field types: references, uniqueness, connectivity."""

from __future__ import annotations

from collections import Counter

from netpilot.errors import Problem
from netpilot.model.network import Network


def check_network(network: Network, *, file: str | None = None, require_connected: bool = True) -> list[Problem]:
    """Every problem that makes ``network`` unusable, each naming its field path (``links[3].target``)."""
    problems: list[Problem] = []

    def problem(message: str, field: str) -> None:
        problems.append(Problem(message, file=file, field=field))

    seen: dict[str, int] = {}
    for i, node in enumerate(network.nodes):
        if node.id in seen:
            problem(f"duplicate node id {node.id!r} (first at nodes[{seen[node.id]}])", f"nodes[{i}].id")
        else:
            seen[node.id] = i

    link_seen: dict[tuple[str, str, int], int] = {}
    for i, link in enumerate(network.links):
        for end in ("source", "target"):
            if getattr(link, end) not in seen:
                problem(f"link refers to unknown node {getattr(link, end)!r}", f"links[{i}].{end}")
        if link.source == link.target:
            problem(f"link from {link.source!r} to itself", f"links[{i}]")
        if link.capacity <= 0 and link.state == "up":  # routing would send traffic onto it at infinite utilisation
            problem("zero capacity on a link that is up: traffic routed over it has nowhere to go (give its "
                    "capacity, or state: down for a link that carries nothing)",
                    f"links[{i}].capacity")
        key = (link.source, link.target, link.key)
        if key in link_seen:
            problem(f"duplicate link {link.id} (first at links[{link_seen[key]}]); "
                    "give parallel links distinct keys", f"links[{i}]")
        else:
            link_seen[key] = i

    for i, demand in enumerate(network.demands):
        for end in ("source", "target"):
            if getattr(demand, end) not in seen:
                problem(f"demand refers to unknown node {getattr(demand, end)!r}", f"demands[{i}].{end}")
        if demand.source == demand.target:
            problem(f"demand from {demand.source!r} to itself", f"demands[{i}]")

    problems.extend(check_policies(network, file=file))

    if require_connected and not problems and len(network.nodes) > 1:
        problems.extend(_connectivity_problems(network, file))
    return problems


def check_policies(network: Network, *, file: str | None = None) -> list[Problem]:
    """Problems with the explicit path policies: each path must run from the policy's source to its target
    over links that exist, visiting no node twice; one policy per pair."""
    problems: list[Problem] = []

    def problem(message: str, field: str) -> None:
        problems.append(Problem(message, file=file, field=field))

    nodes = set(network.node_ids())
    links_between = {(lk.source, lk.target) for lk in network.links}
    policy_seen: dict[tuple[str, str], int] = {}
    for i, policy in enumerate(network.policies):
        ends = (policy.source, policy.target)
        if ends in policy_seen:
            problem(f"a second policy for {policy.source}->{policy.target} (first at policies[{policy_seen[ends]}])",
                    f"policies[{i}]")
        policy_seen.setdefault(ends, i)
        for j, path in enumerate(policy.paths):
            where = f"policies[{i}].paths[{j}].nodes"
            if path.nodes[0] != policy.source or path.nodes[-1] != policy.target:
                problem(f"the path must run from {policy.source!r} to {policy.target!r}", where)
            if len(set(path.nodes)) != len(path.nodes):
                problem("the path visits a node twice (a loop)", where)
            for k, node in enumerate(path.nodes):
                if node not in nodes:
                    problem(f"unknown node {node!r}", f"{where}[{k}]")
            for k, (a, b) in enumerate(zip(path.nodes, path.nodes[1:])):
                if a in nodes and b in nodes and (a, b) not in links_between:
                    problem(f"no link {a}->{b}", f"{where}[{k + 1}]")
    return problems


def _connectivity_problems(network: Network, file: str | None) -> list[Problem]:
    if _strongly_connected(network):
        return []  # the usual case, answered without importing NetworkX (~0.15 s at every command's start)
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(network.node_ids())
    graph.add_edges_from((lk.source, lk.target) for lk in network.links)
    if nx.is_strongly_connected(graph):
        return []
    components = sorted(nx.strongly_connected_components(graph), key=len, reverse=True)
    main = components[0]
    stranded = sorted(set(graph) - main)
    size = Counter(len(c) for c in components)
    example = stranded[0]
    direction = "reach" if not any(nx.has_path(graph, example, m) for m in list(main)[:1]) else "be reached from"
    shown = ", ".join(stranded[:8]) + (" ..." if len(stranded) > 8 else "")
    return [Problem(
        f"the graph is not connected: {len(components)} strongly connected components "
        f"(sizes {dict(sorted(size.items(), reverse=True))}); node {example!r} cannot {direction} the main "
        f"component of {len(main)} nodes; outside it: {shown}",
        file=file, field="links")]


def _strongly_connected(network: Network) -> bool:
    """Whether every node reaches every other over the links (SciPy's compiled Tarjan; NetworkX only to
    explain a failure)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    index = {node: i for i, node in enumerate(network.node_ids())}
    if len(index) <= 1:
        return True
    ends = [(index[lk.source], index[lk.target]) for lk in network.links
            if lk.source in index and lk.target in index]
    if not ends:
        return False
    src, dst = np.array(ends, dtype=np.int64).T
    graph = csr_matrix((np.ones(len(src)), (src, dst)), shape=(len(index), len(index)))
    count, _ = connected_components(graph, directed=True, connection="strong")
    return count == 1
