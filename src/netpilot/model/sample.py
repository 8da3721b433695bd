"""The bundled sample network: a real backbone with an access layer of cell sites and edge GPU sites."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np

from netpilot.model.formats.common import latency_between
from netpilot.model.formats.repetita import read_repetita_demands, read_repetita_graph
from netpilot.model.io import network_from_data
from netpilot.model.network import Network
from netpilot.model.units import inverse_capacity_metric

SAMPLE_NAME = "sample_network.yaml"
CELL_UPLINK_MBPS = 10_000.0
EDGE_UPLINK_MBPS = 100_000.0
CELL_TO_EDGE_MBPS = 20.0
EDGE_TO_CELL_MBPS = 60.0


def bundled_network_path() -> Path:
    """Where the installed package keeps the sample network file."""
    return Path(str(resources.files("netpilot.data").joinpath(SAMPLE_NAME)))


def _offset(lat: float, lon: float, km: float, bearing: float) -> dict:
    # Small offsets on a sphere: fine for the few kilometres between a PoP and its cell sites.
    dlat = km / 111.32 * math.cos(bearing)
    dlon = km / (111.32 * max(0.1, math.cos(math.radians(lat)))) * math.sin(bearing)
    return {"lat": round(lat + dlat, 5), "lon": round(lon + dlon, 5)}


def build_sample_network(backbone_graph: str | Path, backbone_demands: str | Path, *, cells_per_router: int = 2,
                         edge_sites: int = 4, demand_scale: float = 0.6, seed: int = 7) -> Network:
    """Deterministic for the same inputs and seed.

    The backbone's routers keep their Repetita capacities, latencies and metrics; its traffic matrix is
    scaled by ``demand_scale`` (Repetita's matrices put the optimal MLU at 0.9). Each router gets
    ``cells_per_router`` cell sites 3-25 km away on 10 Gbit/s uplinks; the ``edge_sites`` best-connected
    PoPs get an edge GPU site (8 GPUs of 80 GB) on a 100 Gbit/s uplink. Every cell exchanges traffic with
    its nearest edge site.
    """
    rng = np.random.default_rng(seed)
    backbone = read_repetita_graph(backbone_graph)
    positional_ids = backbone.node_ids()
    demands = read_repetita_demands(backbone_demands, positional_ids)
    names = [n.name or n.id for n in backbone.nodes]
    rename = dict(zip(positional_ids, names)) if len(set(names)) == len(names) else {i: i for i in positional_ids}

    nodes: list[dict] = []
    for node in backbone.nodes:
        entry = {"id": rename[node.id], "name": node.name}
        if node.location:
            entry["location"] = node.location.model_dump()
        nodes.append(entry)
    links = [{**lk.model_dump(), "source": rename[lk.source], "target": rename[lk.target]} for lk in backbone.links]
    location = {n["id"]: n.get("location") for n in nodes}

    def uplink(a: str, b: str, capacity: float) -> None:
        latency = round(max(0.01, latency_between(location[a], location[b]) or 0.1), 4)
        for s, t in ((a, b), (b, a)):
            links.append({"source": s, "target": t, "capacity": capacity, "latency_ms": latency,
                          "metric": inverse_capacity_metric(capacity)})

    degree: dict[str, int] = {}
    for link in links:
        degree[link["source"]] = degree.get(link["source"], 0) + 1
    hubs = sorted(degree, key=lambda r: (-degree[r], r))[:edge_sites]
    edge_ids = []
    for hub in hubs:
        site = f"{hub}-edge"
        base = location[hub]
        nodes.append({"id": site, "kind": "edge_site", "name": f"{hub} edge GPU site", "gpus": 8,
                      "gpu_memory_gb": 80.0, "location": _offset(base["lat"], base["lon"], 2.0, 0.5)})
        location[site] = nodes[-1]["location"]
        uplink(site, hub, EDGE_UPLINK_MBPS)
        edge_ids.append(site)

    routers = [n["id"] for n in nodes if n.get("kind", "router") == "router"]
    cell_demands = []
    for router in routers:
        base = location[router]
        for k in range(1, cells_per_router + 1):
            cell = f"{router}-cell{k}"
            where = _offset(base["lat"], base["lon"], float(rng.uniform(3, 25)), float(rng.uniform(0, 2 * math.pi)))
            nodes.append({"id": cell, "kind": "cell_site", "name": f"{router} cell {k}", "prbs": 273,
                          "slices": ["eMBB", "URLLC", "mMTC"], "location": where})
            location[cell] = where
            uplink(cell, router, CELL_UPLINK_MBPS)
            nearest = min(edge_ids, key=lambda e: (latency_between(where, location[e]), e))
            cell_demands += [{"source": cell, "target": nearest, "volume": CELL_TO_EDGE_MBPS},
                             {"source": nearest, "target": cell, "volume": EDGE_TO_CELL_MBPS}]

    backbone_demands_out = [{"source": rename[d.source], "target": rename[d.target],
                             "volume": round(d.volume * demand_scale, 6)} for d in demands if d.volume > 0]
    return network_from_data({
        "name": "netpilot-sample",
        "origin": f"backbone: {backbone.origin} (GÉANT 2012 from the Internet Topology Zoo, via Repetita) "
                  f"with its traffic matrix {Path(backbone_demands).name} x{demand_scale}; access layer generated "
                  f"by `netpilot topo sample` (seed {seed})",
        "notes": [f"{len(routers)} backbone routers, {cells_per_router} cell sites per router on "
                  f"{CELL_UPLINK_MBPS:g} Mbit/s uplinks, {len(edge_ids)} edge GPU sites at the best-connected "
                  f"PoPs ({', '.join(hubs)}) on {EDGE_UPLINK_MBPS:g} Mbit/s uplinks",
                  f"each cell sends {CELL_TO_EDGE_MBPS:g} Mbit/s to and receives {EDGE_TO_CELL_MBPS:g} Mbit/s "
                  "from its nearest edge site"],
        "nodes": nodes, "links": links, "demands": backbone_demands_out + cell_demands,
    }, file="<sample>")
