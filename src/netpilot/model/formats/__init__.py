"""Importers of the topology and traffic formats operators and researchers use, chosen by file type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from netpilot.errors import InputError
from netpilot.model.demands import DemandSeries
from netpilot.model.formats.dote import read_hist, read_tunnels
from netpilot.model.formats.inventory import read_inventory
from netpilot.model.formats.nodelink import read_node_link
from netpilot.model.formats.repetita import read_repetita_demands, read_repetita_graph
from netpilot.model.formats.sndlib import read_demand_npz, read_sndlib_demands, read_sndlib_network, read_sndlib_series
from netpilot.model.formats.teal import read_matrix_file, read_path_dict
from netpilot.model.formats.zoo import read_graphml
from netpilot.model.io import load_network
from netpilot.model.network import Demand, Network

__all__ = [
    "import_demands", "import_network", "read_demand_npz", "read_graphml", "read_hist", "read_inventory",
    "read_matrix_file", "read_node_link", "read_path_dict", "read_repetita_demands", "read_repetita_graph",
    "read_sndlib_demands", "read_sndlib_network", "read_sndlib_series", "read_tunnels", "select_matrix",
    "topology_format",
]


def _head(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(size).decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError.at("no such file", file=path) from None
    except IsADirectoryError:
        raise InputError.at("is a directory, not a file", file=path) from None


def topology_format(path: str | Path) -> str:
    """Which topology format ``path`` holds: graphml, repetita, sndlib, nodelink, inventory or netpilot."""
    path = Path(path)
    suffix = path.suffix.lower()
    head = _head(path)
    if suffix == ".graphml":
        return "graphml"
    if suffix == ".graph" or head.lstrip().startswith("NODES"):
        return "repetita"
    if suffix == ".xml" or "sndlib.zib.de" in head:
        return "sndlib"
    if suffix in (".yaml", ".yml"):
        return "inventory" if "netpilot-inventory/" in head else "netpilot"
    if suffix == ".json":
        if '"netpilot-network/' in head:
            return "netpilot"
        return "nodelink"
    raise InputError.at(f"unknown topology format {suffix or '(no suffix)'!r}; expected .graphml, .graph, "
                        ".xml (SNDlib), .json (node-link or netpilot) or .yaml (netpilot or inventory)", file=path)


def import_network(path: str | Path, *, unit: str = "Mbit/s", metric: str = "inverse_capacity",
                   default_capacity: float | None = None) -> Network:
    """Read any supported topology file into the twin (Mbit/s, ms).

    ``unit`` is the capacity unit of node-link JSON, which does not state one; ``metric`` is how IGP
    metrics are derived where the source has none; ``default_capacity`` fills links without capacity.
    """
    path = Path(path)
    fmt = topology_format(path)
    if fmt == "graphml":
        kwargs: dict[str, Any] = {"default_capacity": default_capacity} if default_capacity else {}
        return read_graphml(path, metric=metric, **kwargs)
    if fmt == "repetita":
        return read_repetita_graph(path)
    if fmt == "sndlib":
        return read_sndlib_network(path, default_capacity=default_capacity, metric=metric)
    if fmt == "nodelink":
        return read_node_link(path, unit=unit, metric=metric)
    if fmt == "inventory":
        return read_inventory(path)
    return load_network(path)


def import_demands(path: str | Path, network: Network, *, unit: str = "Mbit/s") -> list[Demand] | DemandSeries:
    """Read demands for ``network``: a list for single matrices, a :class:`DemandSeries` for series."""
    path = Path(path)
    name = path.name.lower()
    node_ids = network.node_ids()
    if name.endswith(".demands"):
        _same_repetita_topology(path, network)
        return read_repetita_demands(path, node_ids)
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return read_sndlib_series(path)
    if name.endswith(".npz"):
        return read_demand_npz(path)
    if name.endswith(".hist"):
        return read_hist(path, node_ids, unit=unit)
    if name.endswith((".pkl", ".npy")):
        return read_matrix_file(path, node_ids, unit=unit)
    if name.endswith(".xml"):
        return read_sndlib_demands(path)
    if name.endswith((".yaml", ".yml", ".json")):
        return _demand_document(path)
    raise InputError.at("unknown demand format; expected .demands, .xml, .tar.gz, .npz, .hist, .pkl, .npy, "
                        ".yaml or .json", file=path)


def _same_repetita_topology(path: Path, network: Network) -> None:
    """Repetita names nodes by index, so demands of another topology would be remapped silently onto this one's
    nodes: refused when the network came from a Repetita graph of another name (``Abilene.0000.demands`` is
    Abilene's)."""
    origin = network.origin or ""
    named = re.fullmatch(r"(.+)\.\d+\.demands", path.name)  # Repetita's own naming: Topology.0000.demands
    if named is None or not origin.startswith("Repetita ") or not origin.endswith(".graph"):
        return
    topology = origin[len("Repetita "):-len(".graph")]
    if named.group(1) != topology:
        raise InputError.at(f"these are demands of {named.group(1)!r}, the network is {topology!r}: "
                            "Repetita demands name nodes by index, so another network's would land on the wrong "
                            "nodes", file=path)


def _demand_document(path: Path) -> list[Demand]:
    from pydantic import RootModel

    from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

    text = read_text(path)
    data = parse_document(text, path)
    if isinstance(data, dict) and "demands" in data:
        data = data["demands"]
    return list(parse_model(RootModel[list[Demand]], data, file=path, locator=LineLocator(text)).root)


def select_matrix(series: DemandSeries, which: str | int = 0) -> int:
    """Index of the matrix to use from a series: a number, ``peak`` (largest total) or ``last``."""
    if isinstance(which, int) or str(which).lstrip("-").isdigit():
        index = int(which)
        if not -len(series) <= index < len(series):
            raise InputError.at(f"matrix {index} is out of range: the series has {len(series)}",
                                field="--matrix")
        return index % len(series)
    if which == "peak":
        return int(np.argmax(series.volume.sum(axis=(1, 2))))
    if which == "last":
        return len(series) - 1
    raise InputError.at(f"--matrix must be a number, 'peak' or 'last', got {which!r}", field="--matrix")


def attach_demands(network: Network, demands: list[Demand] | DemandSeries, *, matrix: str | int = 0,
                   source: str | Path | None = None) -> Network:
    """``network`` with ``demands`` (one matrix of a series) as its demand matrix, checked against its nodes."""
    if isinstance(demands, DemandSeries):
        missing = sorted(set(demands.nodes) - set(network.node_ids()))
        if missing:
            raise InputError.at(f"the series names nodes the network lacks: {', '.join(missing[:8])}",
                                file=source)
        index = select_matrix(demands, matrix)
        chosen = demands.demands(index)
        note = f"demands: matrix {index} ({demands.times[index] if demands.times else index}) of {demands.origin}"
    else:
        chosen, note = demands, f"demands: {Path(source).name}" if source else "demands"
    from netpilot.model.io import network_from_data

    data = network.model_dump(mode="json")
    data["demands"] = [d.model_dump() for d in chosen]
    data["notes"] = [*network.notes, note]
    return network_from_data(data, file=source or "<demands>")


def load_paths(path: str | Path, network: Network) -> dict[tuple[str, str], list[list[str]]]:
    """Candidate path sets (DOTE ``tunnels.txt`` or Teal path pickles), by ordered node pair."""
    path = Path(path)
    if path.suffix == ".pkl":
        return read_path_dict(path, network.node_ids())
    return read_tunnels(path, network.node_ids())


