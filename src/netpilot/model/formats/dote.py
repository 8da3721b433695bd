"""DOTE/FIGRET demand histories (``.hist`` + ``.opt``) and tunnel files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netpilot.errors import InputError
from netpilot.model.demands import DemandSeries
from netpilot.model.formats.common import expect_float, node_index_map, numbered_lines
from netpilot.model.io import read_text
from netpilot.model.units import rate_to_mbps


def read_hist(path: str | Path, node_ids: list[str], *, unit: str = "Mbit/s") -> DemandSeries:
    """One N×N demand matrix per line (row-major, ``src*N + dst``); a sibling ``.opt`` gives optimal MLUs."""
    path = Path(path)
    n = len(node_ids)
    scale = rate_to_mbps(1.0, unit)
    rows = []
    for number, line in numbered_lines(read_text(path)):
        tokens = line.split()
        if len(tokens) != n * n:
            raise InputError.at(f"expected {n * n} values for {n} nodes, got {len(tokens)}", file=path,
                                line=number)
        try:
            row = np.array(tokens, dtype=float)
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise InputError.at(f"not a number: {bad!r}", file=path, line=number) from None
        if not np.isfinite(row).all() or (row < 0).any():
            raise InputError.at("values must be finite and >= 0", file=path, line=number)
        rows.append(row * scale)
    if not rows:
        raise InputError.at("no demand matrices in the file", file=path)
    volume = np.stack(rows).reshape(len(rows), n, n)
    mapping = node_index_map(node_ids)
    opt_path = path.with_suffix(".opt")
    optimal = read_opt(opt_path, len(rows)) if opt_path.exists() else None
    return DemandSeries(nodes=tuple(mapping[i] for i in range(n)), volume=volume, origin=f"DOTE/FIGRET {path.name}",
                        optimal_mlu=optimal)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_opt(path: str | Path, expected: int | None = None) -> np.ndarray:
    """Optimal max-link-utilisation per demand matrix, one per line."""
    path = Path(path)
    values = [expect_float(line, path, number, "optimal MLU") for number, line in numbered_lines(read_text(path))]
    if expected is not None and len(values) != expected:
        raise InputError.at(f"{len(values)} optimal values for {expected} demand matrices", file=path)
    return np.array(values)


def read_tunnels(path: str | Path, node_ids: list[str]) -> dict[tuple[str, str], list[list[str]]]:
    """Candidate paths per ordered pair: lines ``s d:p1,p2`` with each path ``n0-n1-...``."""
    path = Path(path)
    mapping = node_index_map(node_ids)
    tunnels: dict[tuple[str, str], list[list[str]]] = {}
    for number, line in numbered_lines(read_text(path)):
        head, sep, body = line.partition(":")
        pair = head.split()
        if not sep or len(pair) != 2:
            raise InputError.at(f"expected 's d:path,path', got {line!r}", file=path, line=number)
        try:
            s, d = (mapping[int(x)] for x in pair)
            paths = [[mapping[int(x)] for x in p.split("-")] for p in body.split(",") if p]
        except (ValueError, KeyError) as exc:
            raise InputError.at(f"bad node index {exc}", file=path, line=number) from None
        for p in paths:
            if p[0] != s or p[-1] != d:
                raise InputError.at(f"path {'-'.join(p)} does not run from {s} to {d}", file=path, line=number)
        tunnels[(s, d)] = paths
    return tunnels
