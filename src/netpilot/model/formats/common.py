"""Helpers shared by the importers: line-numbered text parsing and link construction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from netpilot.errors import InputError
from netpilot.model.units import fibre_latency_ms, great_circle_km, inverse_capacity_metric

#: How a network imported without IGP metrics gets them.
METRIC_RULES = ("inverse_capacity", "hop", "latency")


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for every non-blank line."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def metric_for(rule: str, capacity: float, latency_ms: float) -> int:
    """The IGP metric a link gets under ``rule`` when the source gives none."""
    if rule == "inverse_capacity":
        return inverse_capacity_metric(capacity)
    if rule == "hop":
        return 1
    if rule == "latency":
        # Tenths of a millisecond, as operators do for delay-based IGP costs.
        return int(min(65535, max(1, round(latency_ms * 10))))
    raise ValueError(f"unknown metric rule {rule!r}; use one of {', '.join(METRIC_RULES)}")


def latency_between(a: dict | None, b: dict | None) -> float | None:
    """Propagation latency between two locations (``{'lat', 'lon'}``), or None if either is unknown."""
    if not a or not b:
        return None
    return fibre_latency_ms(great_circle_km(a["lat"], a["lon"], b["lat"], b["lon"]))


def expect_int(token: str, file: str | Path, line: int, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise InputError.at(f"{what} must be an integer, got {token!r}", file=file, line=line) from None


def expect_float(token: str, file: str | Path, line: int, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise InputError.at(f"{what} must be a number, got {token!r}", file=file, line=line) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError.at(f"{what} must be finite, got {token!r}", file=file, line=line)
    return value


def node_index_map(node_ids: list[str]) -> dict[int, str]:
    """How integer node indices in index-based formats map to node ids.

    Node-link files name nodes by their integer id, so index ``i`` is the node ``"i"``; formats that list
    nodes in order (Repetita) use the position.
    """
    if all(str(i) in set(node_ids) for i in range(len(node_ids))):
        return {i: str(i) for i in range(len(node_ids))}
    return dict(enumerate(node_ids))
