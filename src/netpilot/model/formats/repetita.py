"""Repetita ``.graph`` topologies and ``.demands`` matrices (kbit/s, microseconds)."""

from __future__ import annotations

from pathlib import Path

from netpilot.errors import InputError
from netpilot.model.formats.common import expect_float, expect_int, numbered_lines
from netpilot.model.io import network_from_data, read_text
from netpilot.model.network import Demand, Network

_KBPS_TO_MBPS = 1e-3
_US_TO_MS = 1e-3


def _section(lines: list[tuple[int, str]], pos: int, keyword: str, file: Path) -> tuple[int, int]:
    if pos >= len(lines):
        raise InputError.at(f"missing '{keyword} <count>' section", file=file)
    number, line = lines[pos]
    tokens = line.split()
    if len(tokens) != 2 or tokens[0] != keyword:
        raise InputError.at(f"expected '{keyword} <count>', got {line!r}", file=file, line=number)
    count = expect_int(tokens[1], file, number, f"{keyword} count")
    return count, pos + 2  # the column header line follows


def read_repetita_graph(path: str | Path) -> Network:
    """A Repetita topology: node order is the file's, links directed, capacity kbit/s, delay microseconds."""
    path = Path(path)
    lines = list(numbered_lines(read_text(path)))
    n_nodes, pos = _section(lines, 0, "NODES", path)
    nodes = []
    for number, line in lines[pos:pos + n_nodes]:
        tokens = line.split()
        if tokens[0] == "EDGES":
            raise InputError.at(f"NODES says {n_nodes} but only {len(nodes)} node lines come before EDGES",
                                file=path, line=number)
        if len(tokens) != 3:
            raise InputError.at(f"node line needs 'label x y', got {line!r}", file=path, line=number)
        lon = expect_float(tokens[1], path, number, "x (longitude)")
        lat = expect_float(tokens[2], path, number, "y (latitude)")
        node = {"id": tokens[0], "name": tokens[0].split("_", 1)[-1]}
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            node["location"] = {"lat": lat, "lon": lon}
        nodes.append(node)
    if len(nodes) != n_nodes:
        raise InputError.at(f"NODES says {n_nodes} but the file has {len(nodes)}", file=path)
    n_edges, pos = _section(lines, pos + n_nodes, "EDGES", path)
    links, self_loops = [], []
    seen: dict[tuple[int, int], int] = {}
    for number, line in lines[pos:pos + n_edges]:
        tokens = line.split()
        if len(tokens) != 6:
            raise InputError.at(f"edge line needs 'label src dest weight bw delay', got {line!r}",
                                file=path, line=number)
        src = expect_int(tokens[1], path, number, "src")
        dst = expect_int(tokens[2], path, number, "dest")
        for end, value in (("src", src), ("dest", dst)):
            if not 0 <= value < n_nodes:
                raise InputError.at(f"{end} {value} is not a node (0..{n_nodes - 1})", file=path, line=number)
        weight = expect_int(tokens[3], path, number, "weight")
        bandwidth = expect_float(tokens[4], path, number, "bw")
        delay = expect_float(tokens[5], path, number, "delay")
        if bandwidth < 0:
            raise InputError.at(f"bw must be >= 0, got {bandwidth}", file=path, line=number)
        if src == dst:
            self_loops.append(number)
            continue
        key = seen.get((src, dst), -1) + 1
        seen[(src, dst)] = key
        links.append({"source": nodes[src]["id"], "target": nodes[dst]["id"], "key": key,
                      "capacity": bandwidth * _KBPS_TO_MBPS, "latency_ms": delay * _US_TO_MS,
                      "metric": max(1, weight)})
    if len(links) + len(self_loops) != n_edges:
        raise InputError.at(f"EDGES says {n_edges} but the file has {len(links) + len(self_loops)}", file=path)
    # A self-loop carries no traffic between nodes; the model has no place for one.
    notes = [f"dropped {len(self_loops)} self-loop edges (lines {', '.join(map(str, self_loops))})"] \
        if self_loops else []
    return network_from_data({"name": path.stem, "origin": f"Repetita {path.name}", "notes": notes,
                              "nodes": nodes, "links": links}, file=path)


def read_repetita_demands(path: str | Path, node_ids: list[str]) -> list[Demand]:
    """Demands of a Repetita ``.demands`` file, src/dest being indices into ``node_ids`` (the graph's order)."""
    path = Path(path)
    lines = list(numbered_lines(read_text(path)))
    count, pos = _section(lines, 0, "DEMANDS", path)
    demands = []
    for number, line in lines[pos:pos + count]:
        tokens = line.split()
        if len(tokens) != 4:
            raise InputError.at(f"demand line needs 'label src dest bw', got {line!r}", file=path, line=number)
        src = expect_int(tokens[1], path, number, "src")
        dst = expect_int(tokens[2], path, number, "dest")
        for end, value in (("src", src), ("dest", dst)):
            if not 0 <= value < len(node_ids):
                raise InputError.at(f"{end} {value} is not a node of the network (0..{len(node_ids) - 1})",
                                    file=path, line=number)
        if src == dst:
            raise InputError.at(f"demand from node {src} to itself", file=path, line=number)
        volume = expect_float(tokens[3], path, number, "bw")
        if volume < 0:
            raise InputError.at(f"bw must be >= 0, got {volume}", file=path, line=number)
        demands.append(Demand(source=node_ids[src], target=node_ids[dst], volume=volume * _KBPS_TO_MBPS))
    if len(demands) != count:
        raise InputError.at(f"DEMANDS says {count} but the file has {len(demands)}", file=path)
    return demands
