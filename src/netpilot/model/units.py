"""Units of the twin (Mbit/s, milliseconds) and parsing of the ways people write them."""

from __future__ import annotations

import math
import re

CAPACITY_UNIT = "Mbit/s"
LATENCY_UNIT = "ms"

#: Light in fibre covers about 200 km per millisecond (refractive index ~1.5).
FIBRE_KM_PER_MS = 200.0
EARTH_RADIUS_KM = 6371.0088

_RATE_SCALE_TO_MBPS = {
    "": 1e-6, "b": 1e-6, "bps": 1e-6, "bit/s": 1e-6,
    "k": 1e-3, "kb": 1e-3, "kbps": 1e-3, "kbit/s": 1e-3,
    "m": 1.0, "mb": 1.0, "mbps": 1.0, "mbit/s": 1.0,
    "g": 1e3, "gb": 1e3, "gbps": 1e3, "gbit/s": 1e3, "ge": 1e3, "gige": 1e3,
    "t": 1e6, "tb": 1e6, "tbps": 1e6, "tbit/s": 1e6,
}

# Line rates of the named circuits that appear in Topology Zoo labels (Mbit/s).
_NAMED_CIRCUITS = {
    "t1": 1.544, "ds1": 1.544, "e1": 2.048, "e3": 34.368, "t3": 44.736, "ds3": 44.736,
}
_OC_BASE_MBPS = 51.84  # OC-1; OC-n and STM-(n/3) scale linearly

_NUMBER_UNIT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z/]*)\s*$", re.IGNORECASE)
_OC = re.compile(r"\boc-?(\d+)c?\b", re.IGNORECASE)
_STM = re.compile(r"\bstm-?(\d+)\b", re.IGNORECASE)
_IN_TEXT = re.compile(r"([0-9]*\.?[0-9]+)\s*(tbps|gbps|mbps|kbps|tb|gb|mb|kb|ge|gige|g|m|k)\b", re.IGNORECASE)


def rate_to_mbps(value: float, unit: str) -> float:
    """Convert ``value`` in ``unit`` (bit/s, kbit/s, Mbit/s, Gbit/s, Tbit/s and spellings) to Mbit/s."""
    key = unit.strip().lower()
    if key not in _RATE_SCALE_TO_MBPS:
        raise ValueError(f"unknown rate unit {unit!r}; use one of bit/s, kbit/s, Mbit/s, Gbit/s, Tbit/s")
    return float(value) * _RATE_SCALE_TO_MBPS[key]


def parse_rate(text: str | float | int) -> float:
    """Parse a bandwidth such as ``100G``, ``2.5 Gbps``, ``400 Mbit/s`` or a bare number (Mbit/s)."""
    if isinstance(text, bool):
        raise ValueError(f"not a bandwidth: {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    match = _NUMBER_UNIT.match(text)
    if not match:
        raise ValueError(f"not a bandwidth: {text!r} (write e.g. 10G, 2.5 Gbit/s, 400M)")
    number, unit = match.groups()
    if unit == "":
        return float(number)
    return rate_to_mbps(float(number), unit)


def rate_from_label(label: str) -> float | None:
    """Best reading of a free-text link label (``OC-192c``, ``10 Gbps``, ``< 2.5 Gbps``, ``STM-16``) in Mbit/s."""
    text = label.strip()
    if not text:
        return None
    if m := _OC.search(text):
        return _OC_BASE_MBPS * int(m.group(1))
    if m := _STM.search(text):
        return _OC_BASE_MBPS * 3 * int(m.group(1))
    lowered = text.lower()
    for name, mbps in _NAMED_CIRCUITS.items():
        if re.search(rf"\b{name}\b", lowered):
            return mbps
    if m := _IN_TEXT.search(text):
        return rate_to_mbps(float(m.group(1)), m.group(2))
    return None


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*(us|µs|ms|s)?\s*$", re.IGNORECASE)
_DURATION_TO_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, None: 1.0}


def parse_duration_ms(text: str | float | int) -> float:
    """Parse a latency such as ``3ms``, ``250us``, ``0.01s`` or a bare number (milliseconds)."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (write e.g. 3ms, 250us)")
    number, unit = match.groups()
    return float(number) * _DURATION_TO_MS[unit.lower() if unit else None]


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points on the Earth, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def fibre_latency_ms(distance_km: float) -> float:
    """One-way propagation delay over ``distance_km`` of fibre laid along the great circle."""
    return distance_km / FIBRE_KM_PER_MS


#: OSPF's auto-cost reference bandwidth used for inverse-capacity metrics (100 Gbit/s).
REFERENCE_BANDWIDTH_MBPS = 100_000.0


def inverse_capacity_metric(capacity_mbps: float, reference_mbps: float = REFERENCE_BANDWIDTH_MBPS) -> int:
    """The IGP cost an OSPF router derives from the link speed: reference / capacity, at least 1."""
    if capacity_mbps <= 0:
        return 65535
    return int(min(65535, max(1, round(reference_mbps / capacity_mbps))))
