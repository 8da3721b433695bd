"""The AI-RAN simulator: cells that follow the real LTE weekly profile, URLLC bursts, inference requests that
follow the Azure LLM trace, timed events (RAN surges, edge sites and cells failing, flash crowds), and the
telemetry (``RanFrame``) of whatever RAN configuration runs."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from netpilot.errors import InputError
from netpilot.model.network import CellSite, EdgeSite, Link, Location, Network, Router
from netpilot.model.profile import bundled_profile, profile_at
from netpilot.model.ran import SERVICES, RanConfig, RanFrame, RanTopology, Service, serve
from netpilot.model.routing import latency_matrix
from netpilot.model.units import fibre_latency_ms

ACCESS_MS, PER_HOP_MS = 1.0, 0.5
#: Mean requests/s per cell for vision, speech and LLM chat (stated: a few hundred users per cell).
RATE_PER_CELL = np.array([4.0, 0.4, 0.08])


class RanEvent(BaseModel):
    """A timed event. ``sites`` names edge sites (a surge or flash crowd hits the cells homed there; a site
    fails); ``cells`` names cells that fail; ``factor`` scales the RAN demand or the service's requests."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ran_surge", "site_down", "flash_crowd", "cell_down"]
    start_minute: float = Field(ge=0)
    end_minute: float = Field(gt=0)
    sites: list[str] = Field(default_factory=list)
    cells: list[str] = Field(default_factory=list)
    service: str | None = None
    factor: float = Field(default=1.0, gt=0)

    def active(self, minute: float) -> bool:
        return self.start_minute <= minute < self.end_minute


def edge_data_dir() -> Path:
    """The staged edge data (``$NETPILOT_SHARED_DATA/edge``, else ``../shared/data/edge`` beside the repo)."""
    shared = os.environ.get("NETPILOT_SHARED_DATA")
    base = Path(shared) if shared else Path(__file__).resolve().parents[4].parent / "shared" / "data"
    return base / "edge"


@dataclass(frozen=True)
class LlmTrace:
    """Per-minute request rate of the Azure LLM trace (2023, conversation and code), each normalised to mean 1,
    and the mean GPU-seconds of a conversation request (0.02 ms per prompt token, 1.5 ms per output token)."""

    conv: np.ndarray
    code: np.ndarray
    gpu_seconds: float


def read_llm_trace(directory: Path | None = None) -> LlmTrace:
    directory = directory or edge_data_dir() / "azure_llm_2023"
    series, seconds = {}, 0.0
    for name in ("conv", "code"):
        path = directory / f"AzureLLMInferenceTrace_{name}.csv"
        if not path.exists():
            raise InputError(f"{path}: the Azure LLM trace is missing (see shared/data/edge/README.md)")
        minutes, cost = [], []
        with open(path, newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    stamp = row["TIMESTAMP"]
                    minutes.append(int(stamp[11:13]) * 60 + int(stamp[14:16]))
                    cost.append(0.00002 * int(row["ContextTokens"]) + 0.0015 * int(row["GeneratedTokens"]))
                except (KeyError, ValueError, TypeError) as error:
                    raise InputError.at(f"unreadable row ({error})", file=path, line=line) from error
        first = min(minutes)
        counts = np.bincount(np.asarray(minutes) - first).astype(float)[:-1]  # the last minute is partial
        series[name] = counts / counts.mean()
        if name == "conv":
            seconds = float(np.mean(cost))
    return LlmTrace(series["conv"], series["code"], seconds)


def services_for(trace: LlmTrace) -> tuple[Service, ...]:
    """The shipped services with the LLM's GPU time from the trace (its SLO: response at 80 % load + 6 ms)."""
    vision, speech, _ = SERVICES
    return (vision, speech, Service("llm-chat", 20.0, trace.gpu_seconds, 1000.0 * trace.gpu_seconds / 0.2 + 6.0))


def generate(n_cells: int, n_sites: int, *, seed: int = 0, area_km: float = 60.0, gpus: int = 8,
             trace: LlmTrace | None = None) -> tuple[Network, RanTopology]:
    """A metro AI-RAN (generator, fixed seed): ``n_sites`` edge sites, each beside an aggregation router, placed
    at random in a square of ``area_km``; routers meshed to their 3 nearest peers and the nearest one placed
    before them; cells at random, each on a fibre to its nearest router (1 ms access + fibre), its RAN processed
    on that router's edge site. The latency from each cell to each site is the twin's lowest-latency path
    (0.5 ms per hop). Each site has GPUs in proportion to the PRBs of the cells homed on it (``gpus`` for the
    mean, 2 at least); its cells all at full load take about half of them for RAN processing."""
    if n_cells < 1 or n_sites < 1:
        raise ValueError("an AI-RAN needs at least one cell and one edge site")
    rng = np.random.default_rng(seed)
    site_xy = rng.uniform(0, area_km, (n_sites, 2))
    cell_xy = rng.uniform(0, area_km, (n_cells, 2))

    def where(xy: np.ndarray) -> Location:  # km to degrees near 45 N, for maps only
        return Location(lat=45.0 + xy[1] / 111.0, lon=10.0 + xy[0] / 78.7)

    nodes: list[Router | CellSite | EdgeSite] = []
    links: list[Link] = []
    routers = [f"agg-{k}" for k in range(n_sites)]
    sites = [f"edge-{k}" for k in range(n_sites)]
    cells = [f"cell-{c}" for c in range(n_cells)]
    prbs = np.where(rng.random(n_cells) < 0.3, 106, 273)  # 40 MHz and 100 MHz NR carriers
    cell_km = np.linalg.norm(cell_xy[:, None] - site_xy[None], axis=2)
    home = np.argmin(cell_km, axis=1)
    per_site = np.bincount(home, weights=prbs, minlength=n_sites)
    # Sites are sized to the cells they serve: ``gpus`` for a site with the mean number of PRBs, 2 at least.
    site_gpus = np.maximum(2, np.ceil(gpus * per_site / max(float(per_site.mean()), 1.0))).astype(int)
    for k in range(n_sites):
        nodes += [Router(id=routers[k], location=where(site_xy[k])),
                  EdgeSite(id=sites[k], location=where(site_xy[k]), gpus=int(site_gpus[k]), gpu_memory_gb=80)]
    for c in range(n_cells):
        nodes.append(CellSite(id=cells[c], location=where(cell_xy[c]), prbs=int(prbs[c]),
                              slices=["eMBB", "URLLC", "mMTC"]))

    def both(a: str, b: str, ms: float, capacity: float) -> None:
        links.extend([Link(source=a, target=b, capacity=capacity, latency_ms=ms),
                      Link(source=b, target=a, capacity=capacity, latency_ms=ms)])

    km = np.linalg.norm(site_xy[:, None] - site_xy[None], axis=2)
    meshed: set[tuple[int, int]] = set()
    for k in range(n_sites):
        both(routers[k], sites[k], 0.01, 400_000)
        peers = set(np.argsort(km[k])[1:4].tolist())
        if k:
            peers.add(int(np.argmin(km[k, :k])))
        for j in peers:
            if (min(j, k), max(j, k)) not in meshed:
                meshed.add((min(j, k), max(j, k)))
                both(routers[k], routers[j], fibre_latency_ms(1.4 * km[k, j]), 100_000)
    for c in range(n_cells):
        both(cells[c], routers[home[c]], ACCESS_MS + fibre_latency_ms(1.4 * cell_km[c, home[c]]), 10_000)
    network = Network(name=f"airan-{n_cells}c-{n_sites}s-seed{seed}", origin="netpilot AI-RAN generator",
                      nodes=nodes, links=links)
    arrays = network.arrays()
    latency = latency_matrix(arrays, np.array([arrays.index[c] for c in cells]),
                             np.array([arrays.index[s] for s in sites]),
                             per_hop_ms=PER_HOP_MS)
    gpu_per_prb = 0.5 * gpus / max(float(per_site.mean()), 1.0)
    services = services_for(trace) if trace is not None else SERVICES
    topology = RanTopology(cells, sites, prbs.astype(float), home, site_gpus.astype(float),
                           np.full(n_sites, 80.0), latency, gpu_per_prb, services=services)
    return network, topology


@dataclass
class RanTruth:
    """What really happened in a tick, for scoring: the actual slice demand, whether each cell-slice's SLA was
    met (and could be), the requests offered, unserved and within their SLO per service, GPUs powered."""

    sla_met: np.ndarray      # (C, S) bool
    sla_feasible: np.ndarray  # (C,) bool: every slice's SLA could be met at once (and the cell is up)
    offered: np.ndarray      # (S,)
    unserved: np.ndarray     # (S,)
    slo_met: np.ndarray      # (S,)
    gpus_powered: float
    ran_short: np.ndarray    # (K,) GPUs the RAN needed beyond what the site had (0 when it fits)


class AiRanSimulator:
    """Ticks of AI-RAN telemetry for whatever ``RanConfig`` runs. Cell load: the shipped weekly profile (from the
    Barcelona LTE eNodeBs) times a per-cell scale, with a slow AR(1) wobble; eMBB 70 % of it, mMTC 20 % (the
    profile's daily mean: steady machine traffic), URLLC 10 % with log-normal bursts and rare spikes. Requests
    per cell: vision follows the Azure code trace, speech and LLM chat the conversation trace, each cell reading
    it at its own offset (superposed shifted copies), scaled by the cell's users."""

    def __init__(self, topology: RanTopology, *, seed: int = 0, step_minutes: float = 1.0, start_hour: float = 8.0,
                 events: list[RanEvent] | None = None, trace: LlmTrace | None = None, load: float = 1.0,
                 ai_load: float = 1.0) -> None:
        self.topology = topology
        self.rng = np.random.default_rng(seed)
        self.step_minutes = step_minutes
        self.start_hour = start_hour
        self.events = list(events or [])
        self.trace = trace or read_llm_trace()
        self.profile = bundled_profile()
        n = len(topology.cells)
        self.scale = load * self.rng.lognormal(-0.05, 0.3, n)
        self.users = ai_load * self.rng.lognormal(-0.1, 0.45, n)
        self.offset = self.rng.integers(0, len(self.trace.conv), n)
        self.wobble = np.zeros(n)
        self.minute = 0.0
        self._site = {s: k for k, s in enumerate(topology.sites)}
        self._cell = {c: i for i, c in enumerate(topology.cells)}
        self._services = {s.name: i for i, s in enumerate(topology.services)}
        for event in self.events:
            for name in event.sites:
                if name not in self._site:
                    raise InputError(f"event {event.kind}: no edge site {name!r}")
            for name in event.cells:
                if name not in self._cell:
                    raise InputError(f"event {event.kind}: no cell {name!r}")
            if event.service is not None and event.service not in self._services:
                raise InputError(f"event {event.kind}: no service {event.service!r}")

    def _cells_of(self, event: RanEvent) -> np.ndarray:
        mask = np.zeros(len(self.topology.cells), dtype=bool)
        if event.sites:
            mask |= np.isin(self.topology.home, [self._site[s] for s in event.sites])
        if event.cells:
            mask[[self._cell[c] for c in event.cells]] = True
        if not event.sites and not event.cells:
            mask[:] = True
        return mask

    def demand_now(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance the noise one tick: (C, S) PRB demand, (C, S) request rate, (C,) cells up, (K,) sites up."""
        topo, minute = self.topology, self.minute
        hour = (self.start_hour + minute / 60.0) % 168
        level = profile_at(self.profile, hour)
        day = float(np.mean([profile_at(self.profile, hour - h) for h in range(0, 24, 3)]))
        n = len(topo.cells)
        self.wobble = 0.95 * self.wobble + 0.05 * self.rng.normal(0, 1.0, n)
        base = 0.55 * topo.prbs * self.scale * np.maximum(level * (1 + 0.5 * self.wobble), 0.05)
        bursts = self.rng.lognormal(-0.18, 0.6, n) * np.where(self.rng.random(n) < 0.01, 4.0, 1.0)
        demand = np.stack([0.7 * base, 0.1 * base * bursts, 0.2 * 0.55 * topo.prbs * self.scale * day], axis=1)
        t = int(minute + 0.5)
        conv = self.trace.conv[(self.offset + t) % len(self.trace.conv)]
        code = self.trace.code[(self.offset + t) % len(self.trace.code)]
        rate = self.users[:, None] * RATE_PER_CELL[None, :] * np.stack([code, conv, conv], axis=1) * \
            (0.6 + 0.4 * level)
        cell_up = np.ones(n, dtype=bool)
        site_up = np.ones(len(topo.sites), dtype=bool)
        for event in self.events:
            if not event.active(minute):
                continue
            if event.kind == "site_down":
                site_up[[self._site[s] for s in event.sites]] = False
                continue
            cells = self._cells_of(event)
            if event.kind == "ran_surge":
                demand[cells] *= event.factor
            elif event.kind == "flash_crowd":
                column = slice(None) if event.service is None else self._services[event.service]
                rate[cells, column] *= event.factor
            elif event.kind == "cell_down":
                cell_up &= ~cells
        demand[~cell_up] = 0.0
        rate[~cell_up] = 0.0
        return demand, rate, cell_up, site_up

    def step(self, config: RanConfig) -> tuple[RanFrame, RanTruth]:
        """One tick under ``config``: its telemetry and what really happened."""
        topo = self.topology
        demand, rate, cell_up, site_up = self.demand_now()
        allocation = config.slice_shares * topo.prbs[:, None]
        grant = np.minimum(demand, allocation)
        guaranteed = np.array([s.guaranteed_share for s in topo.slices])[None, :] * topo.prbs[:, None]
        need = np.minimum(demand, guaranteed)
        feasible = cell_up & (need.sum(axis=1) <= topo.prbs + 1e-9)
        sla_met = allocation >= need - 1e-9
        # The RAN has priority on a site's GPUs: its processing of every PRB scheduled comes first.
        ran = topo.ran_gpus(grant, cell_up)
        ran_short = np.maximum(ran - topo.gpus, 0.0)
        ai_available = np.maximum(topo.gpus - ran, 0.0)
        served = serve(topo, config, rate, ai_available, site_up)
        frame = RanFrame(self.minute, demand, grant, cell_up, ran, served["work"], site_up, served["arriving"],
                         served["queue"], served["response"], rate, served["unserved"], served["slo_met"],
                         float((config.gpus_on * site_up).sum()))
        truth = RanTruth(sla_met, feasible, served["offered"], served["unserved"], served["slo_met"],
                         float((config.gpus_on * site_up).sum()), ran_short)
        self.minute += self.step_minutes
        return frame, truth


__all__ = ["AiRanSimulator", "LlmTrace", "RanEvent", "RanTruth", "edge_data_dir", "generate", "read_llm_trace",
           "services_for"]
