"""SNDlib network XML, single demand-matrix XML and archives of measured demand-matrix series."""

from __future__ import annotations

import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from netpilot.errors import InputError
from netpilot.model.demands import DemandSeries
from netpilot.model.formats.common import latency_between, metric_for
from netpilot.model.io import network_from_data
from netpilot.model.network import Demand, Network

NS = {"s": "http://sndlib.zib.de/network"}
_UNIT_TO_MBPS = {"MBITPERSEC": 1.0, "GBITPERSEC": 1e3, "KBITPERSEC": 1e-3, "BITPERSEC": 1e-6}


def _parse(data: bytes, file: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError.at(f"malformed XML: {exc}", file=file, line=exc.position[0]) from None


def _text(element: ET.Element, path: str, file: str, what: str) -> str:
    found = element.find(path, NS)
    if found is None or found.text is None:
        raise InputError.at(f"missing <{what}>", file=file, field=element.get("id"))
    return found.text.strip()


def _nodes(root: ET.Element, file: str) -> list[dict]:
    nodes = []
    for node in root.iterfind("s:networkStructure/s:nodes/s:node", NS):
        entry = {"id": node.get("id")}
        x, y = node.find("s:coordinates/s:x", NS), node.find("s:coordinates/s:y", NS)
        if x is not None and y is not None:
            entry["location"] = {"lat": float(y.text), "lon": float(x.text)}
        nodes.append(entry)
    if not nodes:
        raise InputError.at("no <node> elements: not an SNDlib network file", file=file)
    return nodes


def read_sndlib_network(path: str | Path, *, default_capacity: float | None = None,
                        metric: str = "inverse_capacity") -> Network:
    """An SNDlib network; each undirected link becomes a link each way, capacity in Mbit/s.

    SNDlib gives installed capacity as ``preInstalledModule``. Where a link has none (GEANT, Germany50 are
    network-design instances), it gets ``default_capacity`` if given, else its largest candidate module;
    the choice is recorded in the notes.
    """
    path = Path(path)
    root = _parse(path.read_bytes() if path.exists() else _missing(path), str(path))
    nodes = _nodes(root, str(path))
    where = {n["id"]: n.get("location") for n in nodes}
    links, from_modules = [], 0
    for link in root.iterfind("s:networkStructure/s:links/s:link", NS):
        lid = link.get("id")
        source = _text(link, "s:source", str(path), "source")
        target = _text(link, "s:target", str(path), "target")
        pre = link.find("s:preInstalledModule/s:capacity", NS)
        if pre is not None:
            capacity = float(pre.text)
        elif default_capacity is not None:
            capacity, from_modules = default_capacity, from_modules + 1
        else:
            modules = [float(c.text) for c in link.iterfind("s:additionalModules/s:addModule/s:capacity", NS)]
            if not modules:
                raise InputError.at("link has neither a pre-installed nor a candidate capacity",
                                    file=path, field=f"link {lid}")
            capacity, from_modules = max(modules), from_modules + 1
        latency = latency_between(where.get(source), where.get(target)) or 0.0
        for s, t in ((source, target), (target, source)):
            links.append({"source": s, "target": t, "capacity": capacity, "latency_ms": latency,
                          "metric": metric_for(metric, capacity, latency)})
    notes = [f"IGP metrics: {metric}"]
    if from_modules:
        rule = f"{default_capacity:g} Mbit/s" if default_capacity is not None else "its largest candidate module"
        notes.append(f"{from_modules} links have no pre-installed capacity; each was given {rule}")
    return network_from_data({"name": path.stem, "origin": f"SNDlib {path.name}", "notes": notes,
                              "nodes": nodes, "links": _merge_parallel_keys(links)}, file=path)


def _merge_parallel_keys(links: list[dict]) -> list[dict]:
    seen: dict[tuple[str, str], int] = {}
    for link in links:
        key = seen.get((link["source"], link["target"]), -1) + 1
        seen[(link["source"], link["target"])] = key
        link["key"] = key
    return links


def _missing(path: Path) -> bytes:
    raise InputError.at("no such file", file=path)


def _demand_matrix(root: ET.Element, file: str) -> tuple[str, list[tuple[str, str, float]], str | None]:
    unit = root.findtext("s:meta/s:unit", default="MBITPERSEC", namespaces=NS).strip()
    if unit not in _UNIT_TO_MBPS:
        raise InputError.at(f"unknown demand unit {unit!r}", file=file, field="meta.unit")
    scale = _UNIT_TO_MBPS[unit]
    entries = []
    for demand in root.iterfind("s:demands/s:demand", NS):
        value = float(_text(demand, "s:demandValue", file, "demandValue"))
        if value < 0:
            raise InputError.at(f"negative demand {value}", file=file, field=f"demand {demand.get('id')}")
        entries.append((_text(demand, "s:source", file, "source"), _text(demand, "s:target", file, "target"),
                        value * scale))
    return unit, entries, root.findtext("s:meta/s:time", namespaces=NS)


def read_sndlib_demands(path: str | Path) -> list[Demand]:
    """The demands of one SNDlib XML file (a network file with <demands>, or one demand matrix)."""
    path = Path(path)
    root = _parse(path.read_bytes() if path.exists() else _missing(path), str(path))
    _, entries, _ = _demand_matrix(root, str(path))
    return [Demand(source=s, target=t, volume=v) for s, t, v in entries if s != t]


def read_sndlib_series(path: str | Path, *, limit: int | None = None) -> DemandSeries:
    """A ``.tar.gz`` of SNDlib demand matrices, ordered by their <time>, as a dense series in Mbit/s."""
    path = Path(path)
    if not path.exists():
        _missing(path)
    matrices: list[tuple[str, list[tuple[str, str, float]]]] = []
    nodes: list[str] | None = None
    try:
        with tarfile.open(path, "r:*") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".xml")),
                             key=lambda m: m.name)
            for member in members[:limit]:
                file = f"{path}!{member.name}"
                root = _parse(archive.extractfile(member).read(), file)
                if nodes is None:
                    nodes = [n["id"] for n in _nodes(root, file)]
                _, entries, time = _demand_matrix(root, file)
                matrices.append((time or member.name, entries))
    except tarfile.TarError as exc:
        raise InputError.at(f"not a readable tar archive: {exc}", file=path) from None
    if not matrices or nodes is None:
        raise InputError.at("the archive holds no SNDlib demand matrices", file=path)
    matrices.sort(key=lambda item: item[0])
    index = {n: i for i, n in enumerate(nodes)}
    volume = np.zeros((len(matrices), len(nodes), len(nodes)))
    for t, (time, entries) in enumerate(matrices):
        for s, d, v in entries:
            if s not in index or d not in index:
                raise InputError.at(f"demand between unknown nodes {s!r} -> {d!r}", file=path, field=time)
            if s != d:
                volume[t, index[s], index[d]] += v
    return DemandSeries(nodes=tuple(nodes), volume=volume, times=tuple(t for t, _ in matrices),
                        origin=f"SNDlib {path.name}")


def read_demand_npz(path: str | Path) -> DemandSeries:
    """A series saved as ``.npz`` with arrays ``tm`` (T, N, N), ``nodes`` and optionally ``time``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "tm" not in data or "nodes" not in data:
                raise InputError.at("expected arrays 'tm' and 'nodes'", file=path)
            times = tuple(str(t) for t in data["time"]) if "time" in data else ()
            unit = str(np.asarray(data["unit"]).ravel()[0]) if "unit" in data else "Mbit/s"
            scale = {"Mbit/s": 1.0, "MBITPERSEC": 1.0, "bit/s": 1e-6, "kbit/s": 1e-3, "Gbit/s": 1e3}.get(unit)
            if scale is None:
                raise InputError.at(f"unknown unit {unit!r}", file=path, field="unit")
            return DemandSeries(nodes=tuple(str(n) for n in data["nodes"]),
                                volume=np.asarray(data["tm"], dtype=float) * scale, times=times,
                                origin=f"{path.name}")
    except FileNotFoundError:
        raise InputError.at("no such file", file=path) from None
    except (ValueError, OSError) as exc:
        raise InputError.at(f"not a readable .npz: {exc}", file=path) from None
