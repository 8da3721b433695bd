"""What telemetry looks like: typed entity ids, the metric catalogue with units, samples, events, faults,
and the check that turns a raw record into a sample or a reason to dead-letter it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from netpilot.model.frame import cell_entity, edge_entity, link_entity, node_entity
from netpilot.model.network import Network


class EntityKind(StrEnum):
    LINK = "link"
    NODE = "node"
    CELL = "cell"
    EDGE = "edge"


def entity_kind(entity: str) -> EntityKind:
    """The kind of a typed entity id; ValueError for an id of no known kind."""
    prefix, sep, rest = entity.partition(":")
    if not sep or not rest:
        raise ValueError(f"entity {entity!r} is not of the form kind:id (link:A->B, node:R, cell:C, edge:E)")
    try:
        return EntityKind(prefix)
    except ValueError:
        raise ValueError(f"entity {entity!r} has unknown kind {prefix!r}; kinds: link, node, cell, edge") from None


@dataclass(frozen=True)
class Metric:
    name: str
    kind: EntityKind
    unit: str
    description: str


_CATALOGUE = (
    Metric("load", EntityKind.LINK, "Mbit/s", "traffic offered to the link"),
    Metric("utilisation", EntityKind.LINK, "ratio", "offered load over capacity"),
    Metric("loss", EntityKind.LINK, "ratio", "share of offered traffic dropped"),
    Metric("latency", EntityKind.LINK, "ms", "propagation plus queueing delay"),
    Metric("up", EntityKind.LINK, "bool", "1 when the link carries traffic"),
    Metric("up", EntityKind.NODE, "bool", "1 when the router forwards"),
    Metric("ospf_adjacencies", EntityKind.NODE, "count", "OSPF neighbours in state Full"),
    Metric("ospf_routes", EntityKind.NODE, "count", "OSPF routes installed in the RIB"),
    Metric("prb_utilisation", EntityKind.CELL, "ratio", "share of physical resource blocks in use"),
    Metric("users", EntityKind.CELL, "count", "active users (RNTIs)"),
    Metric("traffic", EntityKind.CELL, "Mbit/s", "downlink plus uplink traffic of the cell"),
    Metric("up", EntityKind.CELL, "bool", "1 when the cell serves users"),
    Metric("gpu_utilisation", EntityKind.EDGE, "ratio", "share of GPU capacity busy"),
    Metric("gpu_ran_share", EntityKind.EDGE, "ratio", "share of GPU capacity reserved for RAN processing"),
    Metric("up", EntityKind.EDGE, "bool", "1 when the site serves"),
)
#: (entity kind, metric name) -> Metric: the catalogue every sample is checked against.
CATALOGUE: dict[tuple[EntityKind, str], Metric] = {(m.kind, m.name): m for m in _CATALOGUE}


def canonical_metric(name: str) -> str:
    """A metric's name as the catalogue spells it: the US ``utilization`` is accepted for ``utilisation``."""
    return name.replace("utilization", "utilisation")


def metric_of(entity: str, metric: str) -> Metric:
    kind = entity_kind(entity)
    try:
        return CATALOGUE[(kind, canonical_metric(metric))]
    except KeyError:
        known = sorted(name for k, name in CATALOGUE if k is kind)
        raise ValueError(f"metric {metric!r} is not defined for {kind.value} entities; known: "
                         f"{', '.join(known)}") from None


@dataclass(frozen=True)
class Sample:
    """One measurement: ``value`` of ``metric`` of ``entity`` at ``ts`` (UTC), in the metric's unit."""

    ts: datetime
    entity: str
    metric: str
    value: float


@dataclass(frozen=True)
class Event:
    """An alarm or notice as an operator's NMS would show it."""

    ts: datetime
    entity: str
    kind: str
    severity: str  # critical, major, minor, warning, cleared
    text: str


SEVERITIES = ("critical", "major", "minor", "warning", "cleared")


@dataclass(frozen=True)
class FaultRecord:
    """Ground truth of an injected fault: kept apart from anything an operator would see."""

    fault_id: str
    kind: str
    target: str
    start: datetime
    end: datetime | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be stored, why, and the record as it came."""

    received: datetime
    source: str
    reason: str
    raw: str


def known_entities(network: Network) -> set[str]:
    """Every entity id the network's telemetry may name."""
    entities: set[str] = set()
    for link in network.links:
        entities.add(link_entity(link.source, link.target, link.key))
    for node in network.nodes:
        if node.kind == "cell_site":
            entities.add(cell_entity(node.id))
        elif node.kind == "edge_site":
            entities.add(edge_entity(node.id))
        entities.add(node_entity(node.id))
    return entities


def parse_timestamp(value: Any) -> datetime:
    """A timezone-aware UTC datetime from ISO 8601 text (naive means UTC) or Unix seconds."""
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is a boolean")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"timestamp {value!r} is not finite")
        ts = datetime.fromtimestamp(float(value), tz=UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            ts = datetime.fromtimestamp(float(text), tz=UTC)
        except ValueError:
            try:
                ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"timestamp {value!r} is neither ISO 8601 nor Unix seconds") from None
    else:
        raise ValueError(f"timestamp {value!r} has type {type(value).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def ratio_ceiling(metric: str) -> float:
    """The largest value a ratio metric can take: a share is at most 1; utilisation (offered load over
    capacity) can pass 1 under overload, but not by a hundredfold."""
    return 100.0 if metric == "utilisation" else 1.0


def check_record(record: Any, entities: set[str] | None) -> Sample:
    """The sample a raw record (dict with timestamp, entity, metric, value and optional unit) stands for.

    Raises ValueError naming the field and what is wrong, for the dead-letter table.
    """
    if not isinstance(record, dict):
        raise ValueError(f"record is a {type(record).__name__}, not an object")
    missing = [f for f in ("timestamp", "entity", "metric", "value") if f not in record or record[f] is None]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    try:
        ts = parse_timestamp(record["timestamp"])
    except ValueError as exc:
        raise ValueError(f"timestamp: {exc}") from None
    entity = record["entity"]
    if not isinstance(entity, str):
        raise ValueError(f"entity: {entity!r} is not text")
    try:
        metric = metric_of(entity, str(record["metric"]))
    except ValueError as exc:
        raise ValueError(f"entity/metric: {exc}") from None
    if entities is not None and entity not in entities:
        raise ValueError(f"entity: {entity!r} is not in the network")
    value = record["value"]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"value: {value!r} has type {type(value).__name__}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"value: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"value: {value!r} is not finite")
    if metric.unit == "ratio" and not 0.0 <= number <= ratio_ceiling(metric.name):
        raise ValueError(f"value: {metric.name} is a ratio in [0, {ratio_ceiling(metric.name):g}], got {number:g}")
    unit = record.get("unit")
    if unit not in (None, "") and unit != metric.unit:
        raise ValueError(f"unit: {metric.name} of a {metric.kind.value} is in {metric.unit}, got {unit!r}")
    return Sample(ts, entity, metric.name, number)
