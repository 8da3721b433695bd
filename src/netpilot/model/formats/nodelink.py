"""NetworkX node-link JSON topologies, as Teal and FIGRET/DOTE publish them (capacity only)."""

from __future__ import annotations

import json
from pathlib import Path

from netpilot.errors import InputError
from netpilot.model.formats.common import metric_for
from netpilot.model.io import network_from_data, read_text
from netpilot.model.network import Network
from netpilot.model.units import rate_to_mbps


def read_node_link(path: str | Path, *, unit: str = "Mbit/s", metric: str = "inverse_capacity") -> Network:
    """A node-link JSON graph whose links carry ``capacity`` in ``unit`` (the files do not say which)."""
    path = Path(path)
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError.at(f"invalid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(data, dict) or "nodes" not in data or not ("links" in data or "edges" in data):
        raise InputError.at("not a node-link graph: expected 'nodes' and 'links'", file=path, line=1)
    directed = bool(data.get("directed", True))
    nodes = []
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or "id" not in node:
            raise InputError.at("node without 'id'", file=path, field=f"nodes[{i}]")
        nodes.append({"id": str(node["id"])})
    links = []
    for i, link in enumerate(data.get("links", data.get("edges", []))):
        field = f"links[{i}]"
        if not isinstance(link, dict) or "source" not in link or "target" not in link:
            raise InputError.at("link needs 'source' and 'target'", file=path, field=field)
        if "capacity" not in link:
            raise InputError.at("link has no capacity", file=path, field=f"{field}.capacity")
        try:
            capacity = rate_to_mbps(float(link["capacity"]), unit)
        except (TypeError, ValueError):
            raise InputError.at(f"capacity must be a number, got {link['capacity']!r}", file=path,
                                field=f"{field}.capacity") from None
        pairs = [(link["source"], link["target"])]
        if not directed:
            pairs.append((link["target"], link["source"]))
        for s, t in pairs:
            links.append({"source": str(s), "target": str(t), "capacity": capacity,
                          "key": int(link.get("key", 0)), "metric": metric_for(metric, capacity, 0.0)})
    notes = [f"capacities read as {unit}", f"IGP metrics: {metric}", "no latency in the source file"]
    return network_from_data({"name": path.stem, "origin": f"node-link JSON {path.name}", "notes": notes,
                              "nodes": nodes, "links": links}, file=path)
