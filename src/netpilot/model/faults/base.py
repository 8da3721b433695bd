"""What every fault kind shares: the scheduled fault record (what a fault file holds), its typed targets, the
twin's state a fault acts on, and the kind base class that the registry collects."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import Network, NetworkArrays, Node


class Fault(BaseModel):
    """One scheduled fault. ``target`` is ``[A, B]`` for a link fault (both directions unless ``one_way``), a
    list of such pairs for a shared-risk group, a node id otherwise; ``kind`` names a registered fault kind.
    Times are minutes from the start of the run; no duration means it lasts to the end."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    target: Union[str, list[str], list[list[str]]]
    at_minute: float = Field(ge=0)
    duration_minutes: float | None = Field(default=None, gt=0)
    id: str | None = None
    one_way: bool = False
    loss: float = Field(default=0.0, ge=0, le=1, description="link_degrade: share of traffic lost")
    capacity_factor: float = Field(default=1.0, gt=0, le=1, description="link_degrade: remaining capacity share")
    period_minutes: float = Field(default=4.0, gt=0, description="link_flap: minutes per down/up cycle")
    multiplier: float = Field(default=4.0, gt=0, description="flash_crowd: traffic multiplier")
    metric: int = Field(default=65535, ge=1, le=65535, description="misconfig: the wrong IGP metric")

    @field_validator("kind")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in REGISTRY:
            raise ValueError(f"unknown fault kind {value!r}; kinds: {', '.join(REGISTRY)}")
        return value

    def active(self, minute: float) -> bool:
        if minute < self.at_minute:
            return False
        return self.duration_minutes is None or minute < self.at_minute + self.duration_minutes

    @property
    def behaviour(self) -> FaultKind:
        """The registered kind that knows what this fault does."""
        return REGISTRY[self.kind]


@dataclass(frozen=True)
class NodeTarget:
    """A fault at one node."""

    node: str

    @property
    def name(self) -> str:
        """How a localisation names it (a cause's target)."""
        return self.node

    @property
    def record_name(self) -> str:
        """How the ground truth names it."""
        return self.node

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset((self.node,))


@dataclass(frozen=True)
class LinkTarget:
    """A fault on the link between two nodes (both directions unless the fault is one-way)."""

    a: str
    b: str

    @property
    def name(self) -> str:
        return "--".join(sorted((self.a, self.b)))

    @property
    def record_name(self) -> str:
        return f"{self.a}->{self.b}"

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset((self.a, self.b))


@dataclass(frozen=True)
class LinkGroupTarget:
    """A fault on several links at once (a shared-risk link group: links in one conduit)."""

    links: tuple[LinkTarget, ...]

    @property
    def name(self) -> str:
        return "+".join(sorted(link.name for link in self.links))

    @property
    def record_name(self) -> str:
        return "+".join(link.record_name for link in self.links)

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset().union(*(link.nodes for link in self.links))


FaultTarget = Union[NodeTarget, LinkTarget, LinkGroupTarget]


@dataclass
class TwinState:
    """The network at one minute under its faults: per link whether it is up, its capacity, the loss added to
    what congestion drops and its IGP metric; per node whether it is up and the factor on its demand."""

    link_up: np.ndarray
    capacity: np.ndarray
    extra_loss: np.ndarray
    node_up: np.ndarray
    demand_factor: np.ndarray
    metric: np.ndarray


def links_between(arrays: NetworkArrays, a: str, b: str, *, one_way: bool = False) -> np.ndarray:
    """The link indices between ``a`` and ``b`` (``a`` to ``b`` only when ``one_way``)."""
    ia, ib = arrays.index[a], arrays.index[b]
    forward = (arrays.src == ia) & (arrays.dst == ib)
    backward = (arrays.src == ib) & (arrays.dst == ia)
    return np.flatnonzero(forward if one_way else forward | backward)


class FaultKind(ABC):
    """What one kind of fault is. A subclass names itself (``name``), says where it sits in the order in which
    hypotheses are offered (``order``: the localiser breaks ties between equally good causes by it) and
    overrides what applies to it; defining the subclass in a module of this package registers it.

    ``actionable``: the planner acts on it once localised (the twin believes it). ``inferred``: it is an
    inference about demand rather than an observed state, so it is believed only while the measurements bear it
    out, and is the first belief to give up when a change built on the twin fails its check. ``drain_first``:
    the planner starts its search with the fault's links at the highest metric. ``holds_metric``: it holds its
    links' IGP metric whatever is configured (a misconfiguration), so the planner routes on the held metric and
    leaves those links' metrics alone, and a belief in it is kept only while the measured loads fit the routing
    with it at least as well as without it. ``params``: the parameters its ground truth records."""

    name: ClassVar[str] = ""
    order: ClassVar[int] = 1000
    actionable: ClassVar[bool] = False
    inferred: ClassVar[bool] = False
    drain_first: ClassVar[bool] = False
    holds_metric: ClassVar[bool] = False
    params: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name in REGISTRY:
                raise TypeError(f"fault kind {cls.name!r} is registered twice")
            REGISTRY[cls.name] = cls()
            ordered = sorted(REGISTRY.items(), key=lambda item: item[1].order)
            REGISTRY.clear()
            REGISTRY.update(ordered)

    # --- what it is -------------------------------------------------------------------------------------------

    def target(self, fault: Fault) -> FaultTarget:
        """The fault's typed target; ValueError when the target has the wrong shape for this kind."""
        if not isinstance(fault.target, str):
            raise ValueError(f"{fault.kind} needs one node id, got {fault.target!r}")
        return NodeTarget(fault.target)

    def check(self, fault: Fault, arrays: NetworkArrays) -> None:
        """ValueError unless the fault's target is in the network."""
        target = self.target(fault)
        if isinstance(target, NodeTarget) and target.node not in arrays.index:
            raise ValueError(f"no node {target.node!r} in the network")

    def links(self, fault: Fault, arrays: NetworkArrays) -> np.ndarray:
        """The link indices the fault acts on (none for a fault at a node)."""
        return np.zeros(0, dtype=np.int64)

    def node(self, fault: Fault) -> str:
        """The node a fault at one node is at; ValueError for any other target."""
        target = self.target(fault)
        if not isinstance(target, NodeTarget):
            raise ValueError(f"{fault.kind} is not at one node")
        return target.node

    # --- on the twin ------------------------------------------------------------------------------------------

    @abstractmethod
    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        """Change ``state`` as the fault, active at ``minute``, does (every kind must: a named kind without it
        fails when its module is imported)."""

    def demand_region(self, fault: Fault, network: Network, arrays: NetworkArrays) -> np.ndarray | None:
        """The nodes whose demand the fault changes (a mask), or None when it changes no demand."""
        return None

    # --- for localisation and beliefs ---------------------------------------------------------------------------

    def link_hypotheses(self, source: str, target: str) -> list[Fault]:
        """The hypotheses of this kind on the link between ``source`` and ``target`` (offered once per pair)."""
        return []

    def node_hypotheses(self, node: Node) -> list[Fault]:
        """The hypotheses of this kind at ``node``."""
        return []

    def network_hypotheses(self, network: Network) -> list[Fault]:
        """Hypotheses that are neither one link's nor one node's (offered after those)."""
        return []

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        """Whether a believed fault still shows in a measured frame (once it does not, the belief is dropped).
        By default it cannot be told from a frame, so it stays."""
        return True

    def measured(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> dict[str, float]:
        """The fault's parameters as a measured frame shows them, for a belief to take instead of its
        hypothesis's fixed size; by default none can be read from a frame."""
        return {}


#: Every fault kind by name, in hypothesis order; filled as the kinds' modules are imported (the package's
#: ``__init__`` imports every module in it).
REGISTRY: dict[str, FaultKind] = {}


class LinkFaultKind(FaultKind):
    """A fault on the link between two nodes."""

    def target(self, fault: Fault) -> LinkTarget:
        if not isinstance(fault.target, list) or len(fault.target) != 2 or \
                not all(isinstance(end, str) for end in fault.target):
            raise ValueError(f"{fault.kind} needs target [A, B], got {fault.target!r}")
        a, b = fault.target
        assert isinstance(a, str) and isinstance(b, str)
        return LinkTarget(a, b)

    def check(self, fault: Fault, arrays: NetworkArrays) -> None:
        target = self.target(fault)
        if target.a not in arrays.index or target.b not in arrays.index or \
                len(self.links(fault, arrays)) == 0:
            raise ValueError(f"no link between {target.a} and {target.b}")

    def links(self, fault: Fault, arrays: NetworkArrays) -> np.ndarray:
        target = self.target(fault)
        return links_between(arrays, target.a, target.b, one_way=fault.one_way)


class NodeFaultKind(FaultKind):
    """A node that stops: its links go down with it and its demand goes away."""

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        state.node_up[arrays.index[self.node(fault)]] = False
