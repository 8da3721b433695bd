"""The network twin's static half: nodes (routers, cell sites, edge GPU sites), directed links and demands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from netpilot.model.units import CAPACITY_UNIT, LATENCY_UNIT

NETWORK_FORMAT = "netpilot-network/1"

NodeId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$",
                              description="Unique node identifier (no whitespace).")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Location(_Strict):
    """Geographic position, WGS84 degrees."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class _NodeBase(_Strict):
    id: NodeId
    name: str | None = Field(default=None, description="Human-readable name, e.g. the city.")
    location: Location | None = None


class Router(_NodeBase):
    """An IP/MPLS router (core, aggregation or provider edge)."""

    kind: Literal["router"] = "router"


def _kind_required(schema: dict[str, Any]) -> None:
    # In documents only routers may leave out their kind; this keeps the schema's oneOf unambiguous.
    schema.setdefault("required", []).append("kind")


class CellSite(_NodeBase):
    """A radio cell site: its radio capacity in physical resource blocks and the slices it serves."""

    model_config = ConfigDict(json_schema_extra=_kind_required)

    kind: Literal["cell_site"] = "cell_site"
    prbs: int = Field(default=273, gt=0, description="Physical resource blocks per slot (273 = 100 MHz NR at 30 kHz).")
    slices: list[str] = Field(default_factory=list, description="Network slices served, e.g. eMBB, URLLC, mMTC.")


class EdgeSite(_NodeBase):
    """An edge computing site with GPUs shared between RAN processing and AI inference."""

    model_config = ConfigDict(json_schema_extra=_kind_required)

    kind: Literal["edge_site"] = "edge_site"
    gpus: int = Field(ge=0, description="Number of GPUs.")
    gpu_memory_gb: float = Field(ge=0, description="Memory per GPU, GB.")


def _node_kind(value: Any) -> str:
    # A node written without a kind is a router: the common case in imported backbones.
    if isinstance(value, dict):
        return value.get("kind", "router")
    return getattr(value, "kind", "router")


Node = Annotated[
    Union[Annotated[Router, Tag("router")], Annotated[CellSite, Tag("cell_site")],
          Annotated[EdgeSite, Tag("edge_site")]],
    Discriminator(_node_kind),
]


class Link(_Strict):
    """A directed link; a physical circuit is two links, one each way."""

    source: NodeId
    target: NodeId
    capacity: float = Field(ge=0, allow_inf_nan=False, description=f"Capacity, {CAPACITY_UNIT}.")
    latency_ms: float = Field(default=0.0, ge=0, allow_inf_nan=False,
                              description=f"One-way propagation latency, {LATENCY_UNIT}.")
    metric: int = Field(default=1, ge=1, le=65535, description="IGP (OSPF/IS-IS) cost.")
    state: Literal["up", "down"] = "up"
    key: int = Field(default=0, ge=0, description="Distinguishes parallel links between the same pair.")
    srlgs: list[str] = Field(default_factory=list,
                             description="Shared-risk link groups (conduits, ducts) the link runs in: links of one "
                                         "group can fail together.")

    @property
    def id(self) -> str:
        return link_id(self.source, self.target, self.key)


def link_id(source: str, target: str, key: int = 0) -> str:
    """The stable identifier of a directed link, as used in telemetry and changes."""
    return f"{source}->{target}" if key == 0 else f"{source}->{target}#{key}"


class Demand(_Strict):
    """Traffic offered from one node to another."""

    source: NodeId
    target: NodeId
    volume: float = Field(ge=0, allow_inf_nan=False, description=f"Offered traffic, {CAPACITY_UNIT}.")


class WeightedPath(_Strict):
    """One path of a policy: the nodes it visits, source first, and its share of the pair's traffic."""

    nodes: list[NodeId] = Field(min_length=2, description="Nodes in order, from the policy's source to its target.")
    weight: float = Field(gt=0, allow_inf_nan=False,
                          description="Share of the traffic, relative to the policy's other paths.")


class PathPolicy(_Strict):
    """Explicit routing of one demand pair (an SR-TE policy, a tactical tunnel): its traffic is split over the
    paths by weight. When some paths fail the others share it in the same proportions; when all fail, the IGP
    carries it."""

    source: NodeId
    target: NodeId
    paths: list[WeightedPath] = Field(min_length=1)


class Network(_Strict):
    """A network: nodes, directed links and (optionally) one demand matrix, in Mbit/s and milliseconds."""

    format: Literal["netpilot-network/1"] = NETWORK_FORMAT
    name: str = ""
    capacity_unit: Literal["Mbit/s"] = CAPACITY_UNIT
    latency_unit: Literal["ms"] = LATENCY_UNIT
    origin: str = Field(default="", description="Where the data came from.")
    notes: list[str] = Field(default_factory=list, description="Assumptions made while importing.")
    nodes: list[Node] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    demands: list[Demand] = Field(default_factory=list)
    policies: list[PathPolicy] = Field(default_factory=list,
                                       description="Explicit paths for some demand pairs; the rest follow the IGP.")

    def node(self, node_id: str) -> Router | CellSite | EdgeSite:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def nodes_of_kind(self, kind: str) -> list[Router | CellSite | EdgeSite]:
        return [n for n in self.nodes if n.kind == kind]

    def node_ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def arrays(self) -> NetworkArrays:
        return NetworkArrays.of(self)


@dataclass(frozen=True)
class NetworkArrays:
    """The network as NumPy arrays, for the optimisers' and simulator's hot loops."""

    node_ids: tuple[str, ...]
    index: dict[str, int]
    src: np.ndarray          # (L,) int, link source index
    dst: np.ndarray          # (L,) int, link target index
    capacity: np.ndarray     # (L,) float, Mbit/s
    latency_ms: np.ndarray   # (L,) float
    metric: np.ndarray       # (L,) int
    up: np.ndarray           # (L,) bool
    # The network's demands, read into arrays (``demand_src``, ``demand_dst``, ``demand_volume``) on first use:
    # the optimisers and the verification route the demand they are given, and reading every pair's model each
    # time cost more than the rest of the arrays (15 ms at 113 routers, about 45 ms at 197).
    demands: Sequence[Demand] = field(default=(), repr=False, compare=False)

    @classmethod
    def of(cls, network: Network) -> NetworkArrays:
        ids = tuple(n.id for n in network.nodes)
        index = {node_id: i for i, node_id in enumerate(ids)}
        links, demands = network.links, network.demands
        return cls(
            node_ids=ids,
            index=index,
            src=np.fromiter((index[lk.source] for lk in links), dtype=np.int64, count=len(links)),
            dst=np.fromiter((index[lk.target] for lk in links), dtype=np.int64, count=len(links)),
            capacity=np.fromiter((lk.capacity for lk in links), dtype=float, count=len(links)),
            latency_ms=np.fromiter((lk.latency_ms for lk in links), dtype=float, count=len(links)),
            metric=np.fromiter((lk.metric for lk in links), dtype=np.int64, count=len(links)),
            up=np.fromiter((lk.state == "up" for lk in links), dtype=bool, count=len(links)),
            demands=tuple(demands),
        )

    @cached_property
    def _demand_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index, demands = self.index, self.demands
        return (np.fromiter((index[d.source] for d in demands), dtype=np.int64, count=len(demands)),
                np.fromiter((index[d.target] for d in demands), dtype=np.int64, count=len(demands)),
                np.fromiter((d.volume for d in demands), dtype=float, count=len(demands)))

    @property
    def demand_src(self) -> np.ndarray:
        """(D,) int, each demand's source index."""
        return self._demand_arrays[0]

    @property
    def demand_dst(self) -> np.ndarray:
        """(D,) int, each demand's target index."""
        return self._demand_arrays[1]

    @property
    def demand_volume(self) -> np.ndarray:
        """(D,) float, each demand's volume, Mbit/s."""
        return self._demand_arrays[2]

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    def demand_pairs(self, *, drop_zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(pairs (P, 2) of node indices, volume (P,)): demands of the same ordered pair summed."""
        n = self.n_nodes
        keys, inverse = np.unique(self.demand_src * n + self.demand_dst, return_inverse=True)
        volume = np.bincount(inverse, weights=self.demand_volume, minlength=len(keys))
        if drop_zero:
            keys, volume = keys[volume > 0], volume[volume > 0]
        return np.stack([keys // n, keys % n], axis=1).astype(np.int64).reshape(-1, 2), volume

    @property
    def n_links(self) -> int:
        return len(self.src)
