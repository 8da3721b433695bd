"""Internet Topology Zoo GraphML: capacities from link labels, latency from great-circle distance."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from netpilot.errors import InputError
from netpilot.model.formats.common import latency_between, metric_for
from netpilot.model.io import network_from_data, read_text
from netpilot.model.network import Network
from netpilot.model.units import rate_from_label, rate_to_mbps

DEFAULT_CAPACITY_MBPS = 10_000.0
DEFAULT_LATENCY_MS = 1.0


def _capacity(attrs: dict) -> float | None:
    raw = attrs.get("LinkSpeedRaw")
    if raw not in (None, ""):
        return rate_to_mbps(float(raw), "bit/s")
    speed, units = attrs.get("LinkSpeed"), attrs.get("LinkSpeedUnits")
    if speed not in (None, "") and units:
        try:
            return rate_to_mbps(float(speed), str(units))
        except ValueError:
            pass
    for key in ("LinkLabel", "LinkType", "LinkNote"):
        if attrs.get(key):
            rate = rate_from_label(str(attrs[key]))
            if rate:
                return rate
    return None


def _slug(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip()) or "node"


def read_graphml(path: str | Path, *, default_capacity: float = DEFAULT_CAPACITY_MBPS,
                 default_latency_ms: float = DEFAULT_LATENCY_MS, metric: str = "inverse_capacity") -> Network:
    """A Topology Zoo network; each undirected edge becomes a link each way.

    Links whose labels give no speed get ``default_capacity`` (Mbit/s) and links touching a node without
    coordinates get ``default_latency_ms``; both are recorded in the network's notes.
    """
    path = Path(path)
    text = read_text(path)
    import networkx as nx  # here, not at the top: every command that reads any network imports this module

    try:
        graph = nx.parse_graphml(text, force_multigraph=True)
    except ET.ParseError as exc:
        raise InputError.at(f"malformed GraphML: {exc}", file=path, line=exc.position[0]) from None
    except (nx.NetworkXError, ValueError, KeyError) as exc:
        raise InputError.at(f"not a Topology Zoo GraphML file: {exc}", file=path) from None

    labels = {n: str(a.get("label") or f"n{n}") for n, a in graph.nodes(data=True)}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[_slug(label)] = counts.get(_slug(label), 0) + 1
    ids = {n: _slug(lb) if counts[_slug(lb)] == 1 else f"{_slug(lb)}_{n}" for n, lb in labels.items()}

    nodes, locations = [], {}
    for n, attrs in graph.nodes(data=True):
        node = {"id": ids[n], "name": labels[n]}
        lat, lon = attrs.get("Latitude"), attrs.get("Longitude")
        if lat is not None and lon is not None:
            node["location"] = locations[n] = {"lat": float(lat), "lon": float(lon)}
        nodes.append(node)

    links, defaulted_capacity, defaulted_latency = [], 0, 0
    keys: dict[tuple[str, str], int] = {}
    for u, v, attrs in graph.edges(data=True):
        if u == v:
            continue  # self-loops carry no traffic between nodes
        capacity = _capacity(attrs)
        if capacity is None:
            capacity, defaulted_capacity = default_capacity, defaulted_capacity + 1
        latency = latency_between(locations.get(u), locations.get(v))
        if latency is None:
            latency, defaulted_latency = default_latency_ms, defaulted_latency + 1
        for s, t in ((ids[u], ids[v]), (ids[v], ids[u])):
            key = keys.get((s, t), -1) + 1
            keys[(s, t)] = key
            links.append({"source": s, "target": t, "key": key, "capacity": capacity, "latency_ms": latency,
                          "metric": metric_for(metric, capacity, latency)})

    notes = [f"IGP metrics: {metric}"]
    if defaulted_capacity:
        notes.append(f"{defaulted_capacity} of {graph.number_of_edges()} edges have no speed in their labels; "
                     f"capacity set to {default_capacity:g} Mbit/s")
    if defaulted_latency:
        notes.append(f"{defaulted_latency} edges touch a node without coordinates; "
                     f"latency set to {default_latency_ms:g} ms")
    name = str(graph.graph.get("label") or graph.graph.get("Network") or path.stem)
    return network_from_data({"name": name, "origin": f"Internet Topology Zoo {path.name}", "notes": notes,
                              "nodes": nodes, "links": links}, file=path)
