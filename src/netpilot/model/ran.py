"""The AI-RAN part of the twin: cells with slices, edge sites whose GPUs the RAN and AI inference share, the
inference services, the RAN configuration that runs (slice shares, inference placement) and a tick of its
telemetry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Slice:
    """A network slice: the weight of one of its served PRBs, and its guaranteed share of a cell's PRBs."""

    name: str
    priority: float          # weight of a served PRB of this slice
    guaranteed_share: float  # of the cell's PRBs, 0..1


@dataclass(frozen=True)
class Service:
    """An inference service: GPU memory per loaded model, GPU-seconds per request, its SLO in ms."""

    name: str
    memory_gb: float
    gpu_seconds: float
    slo_ms: float


#: The three slices (priority, guaranteed share of the cell's PRBs), as the slicing benchmark states them.
SLICES = (Slice("eMBB", 1.0, 0.5), Slice("URLLC", 10.0, 0.2), Slice("mMTC", 2.0, 0.15))
#: Services (stated, not measured): a video-analytics detector, speech recognition, an LLM chat model whose GPU
#: time per request follows the Azure LLM conversation trace (set by the simulator from the trace).
SERVICES = (Service("vision", 4.0, 0.004, 25.0), Service("speech", 8.0, 0.04, 205.0),
            Service("llm-chat", 20.0, 0.2, 1006.0))


@dataclass(frozen=True)
class RanTopology:
    """Cells and edge sites as the twin knows them. ``latency_ms`` is the one-way latency from each cell to each
    site over the network (``model.routing.latency_matrix``); ``home`` the site whose GPUs run each cell's RAN
    processing; ``gpu_per_prb`` the GPUs one granted PRB's processing takes."""

    cells: list[str]
    sites: list[str]
    prbs: np.ndarray           # (C,)
    home: np.ndarray           # (C,) site index
    gpus: np.ndarray           # (K,)
    gpu_memory_gb: np.ndarray  # (K,)
    latency_ms: np.ndarray     # (C, K)
    gpu_per_prb: float
    slices: tuple[Slice, ...] = SLICES
    services: tuple[Service, ...] = SERVICES

    def ran_gpus(self, granted_prbs: np.ndarray, cell_up: np.ndarray | None = None) -> np.ndarray:
        """(K,) GPUs the RAN processing of ``granted_prbs`` ((C,) or (C, S)) takes at each site."""
        used = granted_prbs.sum(axis=1) if granted_prbs.ndim == 2 else granted_prbs
        if cell_up is not None:
            used = np.where(cell_up, used, 0.0)
        return np.bincount(self.home, weights=used * self.gpu_per_prb, minlength=len(self.sites))


@dataclass
class RanConfig:
    """What the RAN and the edge run: each cell's PRB share per slice, and the inference placement (the share
    of each cell's requests per service sent to each site, the models loaded, the GPUs powered)."""

    slice_shares: np.ndarray  # (C, S), rows sum to at most 1
    share: np.ndarray         # (C, S, K)
    loaded: np.ndarray        # (S, K) bool
    gpus_on: np.ndarray       # (K,)

    def copy(self) -> RanConfig:
        return RanConfig(self.slice_shares.copy(), self.share.copy(), self.loaded.copy(), self.gpus_on.copy())


@dataclass
class RanFrame:
    """One tick of AI-RAN telemetry. Per cell and slice: PRB demand and grant; per edge site: the GPUs the RAN
    needs, the GPUs AI uses (busy GPU-seconds per second), whether it is up; per service and site: request
    rate, queue (requests waiting) and mean response time; the requests per cell and service (the demand the
    placement serves); requests left unserved."""

    minute: float
    prb_demand: np.ndarray     # (C, S)
    prb_grant: np.ndarray      # (C, S)
    cell_up: np.ndarray        # (C,) bool
    ran_gpus: np.ndarray       # (K,) GPUs the RAN needs
    ai_gpus: np.ndarray        # (K,) GPUs AI inference keeps busy
    site_up: np.ndarray        # (K,) bool
    request_rate: np.ndarray   # (S, K) requests/s arriving
    queue: np.ndarray          # (S, K) requests waiting
    response_ms: np.ndarray    # (S, K) mean response time at the site (service plus queueing)
    cell_rate: np.ndarray      # (C, S) requests/s each cell's users send
    unserved: np.ndarray       # (S,) requests/s no site served
    slo_met: np.ndarray        # (S,) requests/s served within the SLO (round trip plus response)
    gpus_powered: float = 0.0


def serve(topology: RanTopology, config: RanConfig, rate: np.ndarray, ai_gpus_available: np.ndarray,
          site_up: np.ndarray) -> dict[str, np.ndarray]:
    """What the running placement gives at actual request rates: per site the utilisation of the GPUs it may power
    (powered GPUs, cut to what the RAN leaves and to nothing where the site is down), requests beyond a site's
    capacity unserved, the response time (M/M/1 over the site's pooled GPUs, the placement's model), and the
    requests that met their SLO (round trip plus response)."""
    tau = np.array([s.gpu_seconds for s in topology.services])
    slo = np.array([s.slo_ms for s in topology.services])
    share = config.share * site_up[None, None, :]
    arriving = np.einsum("csk,cs->sk", share, rate)                     # (S, K) req/s
    work = (arriving * tau[:, None]).sum(axis=0)                         # (K,) GPU-s/s
    gpus = np.minimum(config.gpus_on, np.floor(ai_gpus_available + 1e-9)) * site_up
    # Beyond 98 % of a site's GPUs the queue grows without bound: the excess is dropped (unserved).
    served_fraction = np.where(work > 0, np.minimum(1.0, 0.98 * gpus / np.maximum(work, 1e-12)), 1.0)
    rho = np.where(gpus > 0, work * served_fraction / np.maximum(gpus, 1e-12), 0.0)
    response = 1000.0 * tau[:, None] / np.maximum(1.0 - rho[None, :], 0.02)  # (S, K) ms
    queue = arriving * served_fraction[None, :] * (response / 1000.0 - tau[:, None])
    round_trip = 2.0 * topology.latency_ms                               # (C, K)
    within = round_trip[:, None, :] + response[None, :, :] <= slo[None, :, None] + 1e-9  # (C, S, K)
    served = share * rate[:, :, None] * served_fraction[None, None, :]
    offered = rate.sum(axis=0)
    return {"arriving": arriving, "work": work, "gpus": gpus, "response": response, "queue": queue,
            "unserved": offered - served.sum(axis=(0, 2)), "slo_met": (served * within).sum(axis=(0, 2)),
            "offered": offered}


def topology_of(network, *, services: tuple[Service, ...] = SERVICES, per_hop_ms: float = 0.5,
                ran_share: float = 0.5) -> RanTopology:
    """The AI-RAN of a network with cell sites and edge sites (``CellSite``, ``EdgeSite`` nodes): the one-way
    latency from each cell to each site over the twin's lowest-latency path (``per_hop_ms`` of switching per
    link), each cell's RAN processed at its nearest site, and the GPUs a PRB takes set so that the cells of the
    most loaded site, all at full load, take ``ran_share`` of its GPUs (every other site less). ValueError when
    the network has no cell, no edge site with GPUs, or a cell that reaches none."""
    from netpilot.model.network import CellSite, EdgeSite
    from netpilot.model.routing import latency_matrix

    cells = [n for n in network.nodes if isinstance(n, CellSite)]
    sites = [n for n in network.nodes if isinstance(n, EdgeSite) and n.gpus > 0]
    if not cells or not sites:
        raise ValueError(f"{network.name or 'the network'} has {len(cells)} cell sites and {len(sites)} edge sites "
                         "with GPUs; the AI-RAN needs one of each at least")
    arrays = network.arrays()
    latency = latency_matrix(arrays, np.array([arrays.index[c.id] for c in cells]),
                             np.array([arrays.index[s.id] for s in sites]), per_hop_ms=per_hop_ms)
    lost = [cells[i].id for i in np.flatnonzero(~np.isfinite(latency).any(axis=1))]
    if lost:
        raise ValueError(f"cell {lost[0]} reaches no edge site ({len(lost)} cells in all)")
    prbs = np.array([c.prbs for c in cells], dtype=float)
    gpus = np.array([s.gpus for s in sites], dtype=float)
    home = np.argmin(latency, axis=1)
    per_site = np.bincount(home, weights=prbs, minlength=len(sites))
    homed = per_site > 0
    gpu_per_prb = ran_share * float((gpus[homed] / per_site[homed]).min())
    return RanTopology([c.id for c in cells], [s.id for s in sites], prbs, home, gpus,
                       np.array([s.gpu_memory_gb for s in sites], dtype=float),
                       np.where(np.isfinite(latency), latency, 1e6), gpu_per_prb, services=services)
