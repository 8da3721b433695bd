"""The KPI frame the loop reads (every KPI of one tick as arrays in the network's entity order), the entity ids
that order, and the codec between a frame and telemetry samples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from netpilot.model.network import Network


def link_entity(source: str, target: str, key: int = 0) -> str:
    """``link:A->B`` (``link:A->B#k`` for the k-th parallel link)."""
    return f"link:{source}->{target}" + (f"#{key}" if key else "")


def node_entity(node: str) -> str:
    return f"node:{node}"


def cell_entity(cell: str) -> str:
    return f"cell:{cell}"


def edge_entity(site: str) -> str:
    return f"edge:{site}"


class EntityLayout(Protocol):
    """What orders a frame's arrays: the network and its entity ids per group (a ``FrameLayout``, a twin).
    Read-only, so that a frozen ``FrameLayout`` and a twin's attributes both meet it."""

    @property
    def network(self) -> Network: ...
    @property
    def link_ids(self) -> list[str]: ...
    @property
    def node_ids(self) -> list[str]: ...
    @property
    def cell_ids(self) -> list[str]: ...
    @property
    def edge_ids(self) -> list[str]: ...


@dataclass(frozen=True)
class FrameLayout:
    """The entity order of a network's frames: links in the network's order, then nodes, cell sites and edge
    sites (``cells`` and ``edges`` are their node indices)."""

    network: Network
    link_ids: list[str]
    node_ids: list[str]
    cell_ids: list[str]
    edge_ids: list[str]
    cells: np.ndarray
    edges: np.ndarray

    @classmethod
    def of(cls, network: Network) -> FrameLayout:
        ids = [node.id for node in network.nodes]
        kinds = [node.kind for node in network.nodes]
        cells = np.array([i for i, k in enumerate(kinds) if k == "cell_site"], dtype=np.int64)
        edges = np.array([i for i, k in enumerate(kinds) if k == "edge_site"], dtype=np.int64)
        return cls(network, [link_entity(lk.source, lk.target, lk.key) for lk in network.links],
                   [node_entity(i) for i in ids], [cell_entity(ids[i]) for i in cells],
                   [edge_entity(ids[i]) for i in edges], cells, edges)


@dataclass
class KpiFrame:
    """One tick: every KPI as arrays over the layout's entity lists. ``overload`` and ``blackholed`` are what a
    simulated network knows of itself (Mbit/s above capacity, Mbit/s with no path); measured frames carry the
    overload their link loads show."""

    ts: datetime
    minute: float
    link_load: np.ndarray
    link_utilisation: np.ndarray
    link_loss: np.ndarray
    link_latency: np.ndarray
    link_up: np.ndarray
    node_up: np.ndarray
    cell_traffic: np.ndarray
    cell_prb: np.ndarray
    cell_users: np.ndarray
    cell_up: np.ndarray
    edge_gpu: np.ndarray
    edge_ran_share: np.ndarray
    edge_up: np.ndarray
    overload: float = 0.0
    blackholed: float = 0.0


def loss_beyond_overload(loss: np.ndarray, utilisation: np.ndarray) -> np.ndarray:
    """The share of a link's traffic lost for a reason other than its own overload (a degraded link's errors):
    a link offered ``utilisation`` above 1 drops ``1 - 1/utilisation`` of it for want of capacity, which its
    utilisation already shows. How the localisation compares a link's loss: compared raw, that congestion loss
    outweighs every other sign of a fault on an overloaded network (its noise floor is a tenth of utilisation's,
    and it is nothing up to the capacity and steep past it, so no linear gain sizes it), and a hypothesis is
    ranked by how well the twin reproduces the overload, not by whether it is the fault.

    >>> loss_beyond_overload(np.array([0.2, 0.01, 1 - 0.99 / 1.25]), np.array([1.25, 0.5, 1.25])).round(3)
    array([0.  , 0.01, 0.01])
    """
    loss, utilisation = np.asarray(loss, dtype=float), np.asarray(utilisation, dtype=float)
    beyond = np.where(utilisation > 1.0, 1.0 - (1.0 - loss) * utilisation, loss)
    return np.clip(beyond, 0.0, 1.0)


def loss_with_overload(other: np.ndarray, utilisation: np.ndarray) -> np.ndarray:
    """A link's whole loss: what it loses for ``other`` reasons and, offered ``utilisation`` above 1, the
    ``1 - 1/utilisation`` it drops for want of capacity (the inverse of ``loss_beyond_overload``).

    >>> loss_with_overload(np.array([0.0, 0.01, 0.01]), np.array([1.25, 0.5, 1.25])).round(3)
    array([0.2  , 0.01 , 0.208])
    """
    other, utilisation = np.asarray(other, dtype=float), np.asarray(utilisation, dtype=float)
    overload = np.where(utilisation > 1.0, 1.0 - 1.0 / np.maximum(utilisation, 1.0), 0.0)
    return 1.0 - (1.0 - overload) * (1.0 - other)


def measured_capacity(frame: KpiFrame) -> np.ndarray:
    """Per link, the capacity its counters imply (load over utilisation) where it is up and carries enough to
    tell; NaN elsewhere."""
    telling = frame.link_up & (frame.link_utilisation > 0.01) & (frame.link_load > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(telling, frame.link_load / frame.link_utilisation, np.nan)


METRIC_NAMES = ("up", "load", "utilisation", "loss", "latency", "traffic", "prb_utilisation", "users",
                "gpu_utilisation", "gpu_ran_share")


def entity_names(layout: EntityLayout) -> list[str]:
    """Every entity of the layout, in the order ``sample_codes`` numbers them."""
    return [*layout.link_ids, *layout.node_ids, *layout.cell_ids, *layout.edge_ids]


def sample_codes(layout: EntityLayout, frame: KpiFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entity index into ``entity_names``, metric index into ``METRIC_NAMES``, value) of every sample of a
    frame. A link, cell or site that is down reports only ``up = 0``: its counters are not there to read."""
    n_links, n_nodes, n_cells = len(layout.link_ids), len(layout.node_ids), len(layout.cell_ids)
    offsets = {"link": 0, "node": n_links, "cell": n_links + n_nodes, "edge": n_links + n_nodes + n_cells}
    entities, metrics, values = [], [], []

    def add(group: str, mask: np.ndarray, name: str, data: np.ndarray) -> None:
        chosen = np.flatnonzero(mask)
        entities.append(chosen + offsets[group])
        metrics.append(np.full(len(chosen), METRIC_NAMES.index(name), dtype=np.int8))
        values.append(np.asarray(data, dtype=float)[chosen])

    up = frame.link_up
    add("link", np.ones(n_links, dtype=bool), "up", up.astype(float))
    for name, data in (("load", frame.link_load), ("utilisation", frame.link_utilisation),
                       ("loss", frame.link_loss), ("latency", frame.link_latency)):
        add("link", up, name, data)
    add("node", np.ones(n_nodes, dtype=bool), "up", frame.node_up.astype(float))
    add("cell", np.ones(n_cells, dtype=bool), "up", frame.cell_up.astype(float))
    for name, data in (("traffic", frame.cell_traffic), ("prb_utilisation", frame.cell_prb),
                       ("users", frame.cell_users)):
        add("cell", frame.cell_up, name, data)
    add("edge", np.ones(len(layout.edge_ids), dtype=bool), "up", frame.edge_up.astype(float))
    for name, data in (("gpu_utilisation", frame.edge_gpu), ("gpu_ran_share", frame.edge_ran_share)):
        add("edge", frame.edge_up, name, data)
    return np.concatenate(entities).astype(np.int32), np.concatenate(metrics), np.concatenate(values)


def sample_columns(layout: EntityLayout, frame: KpiFrame) -> tuple[list[str], list[str], np.ndarray]:
    """``sample_codes`` with the entity and metric names spelled out."""
    names = entity_names(layout)
    entities, metrics, values = sample_codes(layout, frame)
    return [names[i] for i in entities], [METRIC_NAMES[m] for m in metrics], values


#: KpiFrame array -> (sample metric, which entity list, the value when nothing was reported).
_MEASURED = {"link_load": ("load", "link", 0.0), "link_utilisation": ("utilisation", "link", 0.0),
             "link_loss": ("loss", "link", 0.0), "link_latency": ("latency", "link", 0.0),
             "link_up": ("up", "link", 1.0), "node_up": ("up", "node", 1.0),
             "cell_traffic": ("traffic", "cell", 0.0), "cell_prb": ("prb_utilisation", "cell", 0.0),
             "cell_users": ("users", "cell", 0.0), "cell_up": ("up", "cell", 1.0),
             "edge_gpu": ("gpu_utilisation", "edge", 0.0), "edge_ran_share": ("gpu_ran_share", "edge", 0.0),
             "edge_up": ("up", "edge", 1.0)}


def step_from_samples(layout: EntityLayout, samples: Iterable[Any], ts: datetime, minute: float) -> KpiFrame:
    """Measured samples (a lab's poll, a broker's batch; anything with ``entity``, ``metric`` and ``value``) as
    one frame in ``layout``'s entity order, so the loop runs on real telemetry as on the simulator. What was not
    reported reads as healthy and idle: up, no load (the absence of a report is not an outage). Samples of
    unknown entities are ignored."""
    lists = {"link": layout.link_ids, "node": layout.node_ids, "cell": layout.cell_ids, "edge": layout.edge_ids}
    position = {kind: {entity: i for i, entity in enumerate(ids)} for kind, ids in lists.items()}
    arrays = {name: np.full(len(lists[kind]), default) for name, (_, kind, default) in _MEASURED.items()}
    field_of = {(metric, kind): name for name, (metric, kind, _) in _MEASURED.items()}
    for sample in samples:
        kind = sample.entity.partition(":")[0]
        name = field_of.get((sample.metric, kind))
        i = position.get(kind, {}).get(sample.entity)
        if name is not None and i is not None:
            arrays[name][i] = sample.value
    for name in ("link_up", "node_up", "cell_up", "edge_up"):
        arrays[name] = arrays[name] > 0.5
    capacity = np.array([link.capacity for link in layout.network.links])
    load = arrays["link_load"]
    overload = float(np.maximum(load - capacity, 0.0)[arrays["link_up"]].sum())
    return KpiFrame(ts=ts, minute=minute, link_load=load, link_utilisation=arrays["link_utilisation"],
                    link_loss=arrays["link_loss"], link_latency=arrays["link_latency"], link_up=arrays["link_up"],
                    node_up=arrays["node_up"], cell_traffic=arrays["cell_traffic"], cell_prb=arrays["cell_prb"],
                    cell_users=arrays["cell_users"], cell_up=arrays["cell_up"], edge_gpu=arrays["edge_gpu"],
                    edge_ran_share=arrays["edge_ran_share"], edge_up=arrays["edge_up"], overload=overload)


def steps_from_store(store: Any, layout: EntityLayout, start: datetime, step_seconds: float,
                     count: int) -> Iterator[KpiFrame]:
    """``count`` frames read back from a telemetry store (anything with ``between(start, end)`` giving samples),
    one window of ``step_seconds`` each from ``start``, whatever filled the store (a file replay, a NATS
    consumer, the lab's poller): the loop's input when the network is not the simulator."""
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    for i in range(count):
        ts = start + timedelta(seconds=i * step_seconds)
        samples = store.between(ts, ts + timedelta(seconds=step_seconds))
        yield step_from_samples(layout, samples, ts, i * step_seconds / 60.0)
