"""Conversion between the twin and NetworkX multigraphs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netpilot.model.network import Demand, Link, Network

if TYPE_CHECKING:  # NetworkX takes ~0.15 s to import; only the conversions below need it
    import networkx as nx


def to_networkx(network: Network, *, only_up: bool = False) -> nx.MultiDiGraph:
    """A MultiDiGraph whose node and edge attributes are the twin's fields; edge keys are link keys."""
    import networkx as nx

    graph = nx.MultiDiGraph(name=network.name, origin=network.origin, notes=list(network.notes),
                            demands=[d.model_dump() for d in network.demands])
    for node in network.nodes:
        graph.add_node(node.id, **node.model_dump(exclude={"id"}))
    for link in network.links:
        if only_up and link.state != "up":
            continue
        graph.add_edge(link.source, link.target, key=link.key,
                       **link.model_dump(exclude={"source", "target", "key"}))
    return graph


def from_networkx(graph: nx.Graph) -> Network:
    """The twin of a NetworkX graph with attributes as :func:`to_networkx` writes them.

    Undirected graphs give a link each way; edges without ``capacity`` are rejected by validation.
    """
    nodes = [{"id": str(n), **attrs} for n, attrs in graph.nodes(data=True)]
    edges = graph.edges(keys=True, data=True) if graph.is_multigraph() else (
        (u, v, 0, d) for u, v, d in graph.edges(data=True))
    links = []
    for u, v, key, attrs in edges:
        fields = {k: attrs[k] for k in Link.model_fields if k in attrs and k not in ("source", "target", "key")}
        pairs = [(u, v)] if graph.is_directed() else [(u, v), (v, u)]
        for s, t in pairs:
            links.append({"source": str(s), "target": str(t), "key": int(key) if isinstance(key, int) else 0,
                          **fields})
    demands = [Demand.model_validate(d) for d in graph.graph.get("demands", [])]
    return Network.model_validate({
        "name": graph.graph.get("name", ""), "origin": graph.graph.get("origin", ""),
        "notes": graph.graph.get("notes", []), "nodes": nodes, "links": links, "demands": demands,
    })
