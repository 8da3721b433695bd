"""A readable summary of a network: counts by kind, capacity and latency ranges, diameter."""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import BaseModel
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from netpilot.model.network import Network


class NetworkSummary(BaseModel):
    name: str
    nodes: int
    links: int
    demands: int
    nodes_by_kind: dict[str, int]
    links_down: int
    total_capacity: float
    unit: str
    capacity_min: float | None
    capacity_max: float | None
    latency_ms_min: float | None
    latency_ms_max: float | None
    total_demand: float
    diameter_hops: int | None
    diameter_ms: float | None
    gpus: int
    prbs: int


def summarize(network: Network) -> NetworkSummary:
    """Counts, ranges and the hop and latency diameters over links that are up (None if disconnected)."""
    arrays = network.arrays()
    up = arrays.up
    n = arrays.n_nodes
    hops = latency = None
    if n > 1 and up.any():
        def graph(weights: np.ndarray) -> csr_matrix:
            # csgraph keeps the smaller of parallel entries, as routing would.
            return csr_matrix((weights[up], (arrays.src[up], arrays.dst[up])), shape=(n, n))
        hop_dist = shortest_path(graph(np.ones(arrays.n_links)), method="D", unweighted=True)
        if np.isfinite(hop_dist).all():
            hops = int(hop_dist.max())
            # Zero-latency links would vanish from a sparse matrix; a tiny epsilon keeps them as edges.
            lat_dist = shortest_path(graph(np.maximum(arrays.latency_ms, 1e-9)), method="D")
            latency = float(lat_dist.max())
    capacities, latencies = arrays.capacity, arrays.latency_ms
    return NetworkSummary(
        name=network.name, nodes=n, links=arrays.n_links, demands=len(network.demands),
        nodes_by_kind=dict(sorted(Counter(node.kind for node in network.nodes).items())),
        links_down=int((~up).sum()), total_capacity=float(capacities.sum()), unit=network.capacity_unit,
        capacity_min=float(capacities.min()) if len(capacities) else None,
        capacity_max=float(capacities.max()) if len(capacities) else None,
        latency_ms_min=float(latencies.min()) if len(latencies) else None,
        latency_ms_max=float(latencies.max()) if len(latencies) else None,
        total_demand=float(arrays.demand_volume.sum()), diameter_hops=hops,
        diameter_ms=round(latency, 6) if latency is not None else None,
        gpus=sum(node.gpus for node in network.nodes_of_kind("edge_site")),
        prbs=sum(node.prbs for node in network.nodes_of_kind("cell_site")),
    )
