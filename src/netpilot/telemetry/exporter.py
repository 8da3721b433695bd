"""Prometheus exposition of the latest KPI of every entity, for operators who already run Grafana."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from netpilot.telemetry.schema import CATALOGUE, entity_kind
from netpilot.telemetry.store import Store

_UNIT_SUFFIX = {"Mbit/s": "mbps", "ms": "ms", "ratio": "ratio", "count": "count", "bool": ""}


class LatestKpiCollector(Collector):
    """One gauge per (entity kind, metric), labelled by entity; read from the store at every scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[tuple[str, str], GaugeMetricFamily] = {}
        for sample in self.store.latest():
            kind = entity_kind(sample.entity)
            metric = CATALOGUE[(kind, sample.metric)]
            suffix = _UNIT_SUFFIX.get(metric.unit, "")
            name = f"netpilot_{kind.value}_{metric.name}" + (f"_{suffix}" if suffix else "")
            family = families.get((kind.value, metric.name))
            if family is None:
                family = GaugeMetricFamily(name, f"{metric.description} ({metric.unit})", labels=["entity"])
                families[(kind.value, metric.name)] = family
            family.add_metric([sample.entity.split(":", 1)[1]], sample.value,
                              timestamp=sample.ts.timestamp())
        yield from families.values()


def registry_for(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(LatestKpiCollector(store))
    return registry
