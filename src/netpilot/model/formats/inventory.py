"""netpilot's YAML inventory for operator networks: sites, circuits, cell sites and edge GPU sites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from netpilot.errors import InputError, Problem
from netpilot.model.formats.common import latency_between, metric_for
from netpilot.model.io import LineLocator, _field_path_to_loc, network_from_data, parse_document, parse_model, read_text
from netpilot.model.network import Network
from netpilot.model.units import parse_duration_ms, parse_rate

INVENTORY_FORMAT = "netpilot-inventory/1"


def _rate(value: object) -> float:
    return parse_rate(value)  # type: ignore[arg-type]


def _duration(value: object) -> float:
    return parse_duration_ms(value)  # type: ignore[arg-type]


Rate = Annotated[float, BeforeValidator(_rate), Field(ge=0, allow_inf_nan=False)]
Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0, allow_inf_nan=False)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Site(_Entry):
    id: str = Field(min_length=1, pattern=r"^[^\s]+$")
    name: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class RouterEntry(Site):
    pass


class Attached(Site):
    router: str = Field(description="The router this site's uplink connects to.")
    uplink: Rate = Field(description="Uplink capacity, e.g. 10G.")
    uplink_latency: Duration | None = Field(default=None, description="Defaults to distance, else 0.1 ms.")


class CellEntry(Attached):
    prbs: int = Field(default=273, gt=0)
    slices: list[str] = Field(default_factory=lambda: ["eMBB"])


class EdgeEntry(Attached):
    gpus: int = Field(ge=0)
    gpu_memory_gb: float = Field(ge=0)


class Circuit(_Entry):
    a: str
    b: str
    capacity: Rate
    latency: Duration | None = Field(default=None, description="Defaults to great-circle distance in fibre.")
    metric: int | None = Field(default=None, ge=1, le=65535)
    state: Literal["up", "down"] = "up"


class Inventory(_Entry):
    format: Literal["netpilot-inventory/1"]
    name: str = ""
    metric: Literal["inverse_capacity", "hop", "latency"] = "inverse_capacity"
    routers: list[RouterEntry] = Field(default_factory=list)
    cells: list[CellEntry] = Field(default_factory=list)
    edge_sites: list[EdgeEntry] = Field(default_factory=list)
    circuits: list[Circuit] = Field(default_factory=list)


ACCESS_LATENCY_MS = 0.1


def read_inventory(path: str | Path) -> Network:
    """The network an inventory describes; every circuit and uplink becomes a link each way."""
    path = Path(path)
    text = read_text(path)
    data = parse_document(text, path)
    locator = LineLocator(text)
    inventory = parse_model(Inventory, data, file=path, locator=locator)

    def location(site: Site) -> dict | None:
        return {"lat": site.lat, "lon": site.lon} if site.lat is not None and site.lon is not None else None

    problems: list[Problem] = []
    nodes, where = [], {}
    for group, kind in (("routers", "router"), ("cells", "cell_site"), ("edge_sites", "edge_site")):
        for i, site in enumerate(getattr(inventory, group)):
            node = {"id": site.id, "kind": kind, **({"name": site.name} if site.name else {})}
            if loc := location(site):
                node["location"] = loc
            if kind == "cell_site":
                node.update(prbs=site.prbs, slices=site.slices)
            elif kind == "edge_site":
                node.update(gpus=site.gpus, gpu_memory_gb=site.gpu_memory_gb)
            nodes.append(node)
            where[site.id] = (group, i, loc)
    links = []
    for i, circuit in enumerate(inventory.circuits):
        for end in ("a", "b"):
            if getattr(circuit, end) not in where:
                problems.append(Problem(f"circuit end {getattr(circuit, end)!r} is not a router, cell or edge site",
                                        file=str(path), field=f"circuits[{i}].{end}"))
        if problems:
            continue
        latency = circuit.latency
        if latency is None:
            latency = latency_between(where[circuit.a][2], where[circuit.b][2])
        if latency is None:
            problems.append(Problem("latency is needed when either end has no lat/lon", file=str(path),
                                    field=f"circuits[{i}].latency"))
            continue
        metric = circuit.metric or metric_for(inventory.metric, circuit.capacity, latency)
        links += _both_ways(circuit.a, circuit.b, circuit.capacity, latency, metric, circuit.state)
    for group in ("cells", "edge_sites"):
        for i, site in enumerate(getattr(inventory, group)):
            if site.router not in where or where[site.router][0] != "routers":
                problems.append(Problem(f"{site.router!r} is not a router of this inventory", file=str(path),
                                        field=f"{group}[{i}].router"))
                continue
            latency = site.uplink_latency
            if latency is None:
                latency = latency_between(location(site), where[site.router][2])
            latency = ACCESS_LATENCY_MS if latency is None else latency
            links += _both_ways(site.id, site.router, site.uplink, latency,
                                metric_for(inventory.metric, site.uplink, latency), "up")
    if problems:
        raise InputError([Problem(p.message, p.file, locator.locate(_field_path_to_loc(p.field))[0], p.field)
                          for p in problems])
    keys: dict[tuple[str, str], int] = {}
    for link in links:
        link["key"] = keys[(link["source"], link["target"])] = keys.get((link["source"], link["target"]), -1) + 1
    return network_from_data({"name": inventory.name or path.stem, "origin": f"inventory {path.name}",
                              "notes": [f"IGP metrics: {inventory.metric} where not given"],
                              "nodes": nodes, "links": links}, file=path)


def _both_ways(a: str, b: str, capacity: float, latency: float, metric: int, state: str) -> list[dict]:
    return [{"source": s, "target": t, "capacity": capacity, "latency_ms": latency, "metric": metric,
             "state": state} for s, t in ((a, b), (b, a))]
