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


#: Real names of the staged backbones whose file names abbreviate them.
KNOWN_BACKBONES = {"Geant2012": "GÉANT 2012", "rf1239_real_hard": "Sprint (AS 1239)", "Kdl": "Kentucky Datalink"}
#: Standard port rates, Mbit/s: access links are sized to the smallest that keeps them at most half full.
PORT_RATES_MBPS = (1_000.0, 10_000.0, 25_000.0, 40_000.0, 100_000.0, 400_000.0, 800_000.0)
#: A cell site's peak traffic (up and down): at most 60 % of its radio capacity (273 PRBs at 3.7 Mbit/s each).
CELL_PEAK_MBPS = 600.0


def backbone_name(path: str | Path) -> str:
    """What the backbone file is, in words: the real network it describes and where it comes from."""
    path = Path(path)
    stem = path.name.split(".")[0]
    name = KNOWN_BACKBONES.get(stem, stem)
    if path.suffix == ".graph":
        source = "Rocketfuel" if stem.startswith("rf") else "the Internet Topology Zoo"
        return f"{name} from {source}, via Repetita"
    if path.suffix == ".json":
        return f"{name} from the Internet Topology Zoo, via Teal"
    return name


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
        links.extend(_access_link_pair(location, a, b, capacity))

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
        "origin": f"backbone: {backbone.origin} ({backbone_name(backbone_graph)}) "
                  f"with its traffic matrix {Path(backbone_demands).name} x{demand_scale}; access layer generated "
                  f"by `netpilot topo sample` (seed {seed})",
        "notes": [f"{len(routers)} backbone routers, {cells_per_router} cell sites per router on "
                  f"{CELL_UPLINK_MBPS:g} Mbit/s uplinks, {len(edge_ids)} edge GPU sites at the best-connected "
                  f"PoPs ({', '.join(hubs)}) on {EDGE_UPLINK_MBPS:g} Mbit/s uplinks",
                  f"each cell sends {CELL_TO_EDGE_MBPS:g} Mbit/s to and receives {EDGE_TO_CELL_MBPS:g} Mbit/s "
                  "from its nearest edge site"],
        "nodes": nodes, "links": links, "demands": backbone_demands_out + cell_demands,
    }, file="<sample>")


def port_rate(mbps: float) -> float:
    """The smallest standard port rate that carries ``mbps`` at most half full (the largest rate, in
    parallel bundles, beyond it)."""
    need = 2.0 * mbps
    for rate in PORT_RATES_MBPS:
        if rate >= need:
            return rate
    return PORT_RATES_MBPS[-1] * math.ceil(need / PORT_RATES_MBPS[-1])



def gravity_demands(backbone: Network, *, pairs: int = 20_000, seed: int = 7) -> list[dict]:
    """A gravity matrix for a backbone without one (capacity-weighted, log-normal noise 0.5, as NCFlow and Teal
    generate them), its ``pairs`` largest entries kept; total 1 Mbit/s before scaling."""
    from netpilot.model.demands import gravity_matrix

    arrays = backbone.arrays()
    matrix = gravity_matrix(np.bincount(arrays.src, weights=arrays.capacity, minlength=arrays.n_nodes),
                            noise=0.5, seed=seed)
    flat = matrix.ravel()
    keep = np.argsort(-flat, kind="stable")[:pairs]
    keep = keep[flat[keep] > 0]
    ids = arrays.node_ids
    n = arrays.n_nodes
    return [{"source": ids[k // n], "target": ids[k % n], "volume": float(flat[k])} for k in sorted(keep)]


def build_sized_sample(backbone: Network, *, cells_per_router: int = 2, edge_sites: int | None = None,
                       seed: int = 7, origin: str = "") -> Network:
    """``backbone`` (its demands at the load wanted) with an access layer sized to it.

    Edge GPU sites (one per ten routers unless ``edge_sites``) go to routers spread over the backbone (farthest
    first by latency, from the best-connected); each cell homes to the edge site nearest it over the backbone.
    A cell's peak traffic is a quarter of its router's backbone traffic shared among the router's cells, at
    most 600 Mbit/s (a cell site's radio carries about 1 Gbit/s); a quarter of it up, the rest down. Cell
    uplinks and edge-site links get the smallest standard rate that carries their traffic at most half full,
    so the access layer is never what makes the network infeasible. Deterministic for the same inputs and
    seed. Scaling the whole matrix to a stated load needs the LP (``netpilot.scenarios.generate.sample_at_load``).
    """
    from scipy.sparse.csgraph import dijkstra

    from netpilot.model.routing import lightest_graph

    rng = np.random.default_rng(seed)
    arrays = backbone.arrays()
    routers = [i for i, node in enumerate(backbone.nodes) if node.kind == "router"]
    if not routers or not backbone.demands:
        raise ValueError("the backbone needs routers and a demand matrix")
    count = edge_sites if edge_sites is not None else max(2, math.ceil(len(routers) / 10))
    count = min(count, len(routers))
    graph = lightest_graph(arrays.src[arrays.up], arrays.dst[arrays.up],
                           np.maximum(arrays.latency_ms[arrays.up], 1e-3), arrays.n_nodes)
    degree = np.bincount(arrays.src, minlength=arrays.n_nodes)
    hubs = [max(routers, key=lambda r: (degree[r], -r))]
    nearest = dijkstra(graph, indices=hubs[0])
    while len(hubs) < count:
        far = max((r for r in routers if r not in hubs), key=lambda r: (nearest[r], degree[r], -r))
        hubs.append(far)
        nearest = np.minimum(nearest, dijkstra(graph, indices=far))
    from_hub = dijkstra(graph, indices=hubs)  # (hubs, nodes)
    home = np.argmin(from_hub, axis=0)

    volume_at = np.zeros(arrays.n_nodes)
    np.add.at(volume_at, arrays.demand_src, arrays.demand_volume)
    np.add.at(volume_at, arrays.demand_dst, arrays.demand_volume)

    nodes = [node.model_dump(mode="json", exclude_none=True) for node in backbone.nodes]
    links = [link.model_dump(mode="json", exclude_none=True) for link in backbone.links]
    ids = arrays.node_ids
    location = {n["id"]: n.get("location") for n in nodes}

    def uplink(a: str, b: str, capacity: float) -> None:
        links.extend(_access_link_pair(location, a, b, capacity))

    def near(base: dict | None, km: float) -> dict | None:
        return None if not base else _offset(base["lat"], base["lon"], km, float(rng.uniform(0, 2 * math.pi)))

    demands = [d.model_dump(mode="json") for d in backbone.demands]
    homed_traffic = np.zeros(len(hubs))
    cell_rows = []
    for router in routers:
        per_cell = min(CELL_PEAK_MBPS, 0.25 * volume_at[router] / cells_per_router)
        for k in range(1, cells_per_router + 1):
            cell = f"{ids[router]}-cell{k}"
            where = near(location[ids[router]], float(rng.uniform(3, 25)))
            entry = {"id": cell, "kind": "cell_site", "name": f"{ids[router]} cell {k}", "prbs": 273,
                     "slices": ["eMBB", "URLLC", "mMTC"]}
            if where:
                entry["location"] = where
            nodes.append(entry)
            location[cell] = where
            cell_rows.append((cell, ids[router], per_cell, int(home[router])))
            homed_traffic[home[router]] += per_cell
    edge_ids = []
    for h, hub in enumerate(hubs):
        site = f"{ids[hub]}-edge"
        entry = {"id": site, "kind": "edge_site", "name": f"{ids[hub]} edge GPU site", "gpus": 8,
                 "gpu_memory_gb": 80.0}
        where = near(location[ids[hub]], 2.0)
        if where:
            entry["location"] = where
        nodes.append(entry)
        location[site] = where
        uplink(site, ids[hub], port_rate(homed_traffic[h]))
        edge_ids.append(site)
    for cell, router, traffic, h in cell_rows:
        uplink(cell, router, port_rate(traffic))
        if traffic > 0:
            demands += [{"source": cell, "target": edge_ids[h], "volume": round(0.25 * traffic, 6)},
                        {"source": edge_ids[h], "target": cell, "volume": round(0.75 * traffic, 6)}]
    return network_from_data({
        "name": f"{backbone.name or 'backbone'}-sample",
        "origin": origin or f"backbone: {backbone.origin or backbone.name}; access layer generated by "
                            f"`netpilot topo sample` (seed {seed})",
        "notes": [f"{len(routers)} backbone routers, {cells_per_router} cell sites per router, {len(edge_ids)} "
                  f"edge GPU sites at routers spread over the backbone ({', '.join(ids[h] for h in hubs[:8])}"
                  f"{', ...' if len(hubs) > 8 else ''})",
                  "each cell's peak traffic is a quarter of its router's backbone traffic over its cells, at most "
                  f"{CELL_PEAK_MBPS:g} Mbit/s, a quarter up to and the rest down from its nearest edge site; "
                  "access links sized to be at most half full at that peak"],
        "nodes": nodes, "links": links, "demands": demands,
    }, file="<sample>")


def _access_link_pair(location: dict, a: str, b: str, capacity: float) -> list[dict]:
    """Both directions of an access link between ``a`` and ``b`` (a cell's or edge site's uplink), with the
    latency of the distance between them and the metric of its capacity."""
    latency = round(max(0.01, latency_between(location[a], location[b]) or 0.1), 4)
    return [{"source": s, "target": t, "capacity": capacity, "latency_ms": latency,
             "metric": inverse_capacity_metric(capacity)} for s, t in ((a, b), (b, a))]
