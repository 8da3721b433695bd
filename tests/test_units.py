import math

import pytest

from netpilot.model.units import (
    fibre_latency_ms,
    great_circle_km,
    inverse_capacity_metric,
    parse_duration_ms,
    parse_rate,
    rate_from_label,
)


@pytest.mark.parametrize(("text", "mbps"), [
    ("10G", 10_000), ("2.5 Gbps", 2_500), ("400M", 400), ("100 Gbit/s", 100_000), ("1e3", 1000),
    (750, 750), ("155 Mbps", 155), ("64k", 0.064), ("1T", 1e6),
])
def test_parse_rate(text, mbps):
    assert parse_rate(text) == pytest.approx(mbps)


@pytest.mark.parametrize("bad", ["fast", "10Q", "", "G10", True])
def test_parse_rate_rejects(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


@pytest.mark.parametrize(("label", "mbps"), [
    ("OC-192c", 9953.28), ("OC-48", 2488.32), ("STM-64", 9953.28), ("10 Gbps", 10_000), ("< 2.5 Gbps", 2_500),
    ("1GE", 1000), ("T3", 44.736), ("E1", 2.048), ("Lit Fibre", None), ("", None),
])
def test_rate_from_label(label, mbps):
    got = rate_from_label(label)
    assert got == (pytest.approx(mbps) if mbps is not None else None)


def test_durations():
    assert parse_duration_ms("3ms") == 3
    assert parse_duration_ms("250us") == pytest.approx(0.25)
    assert parse_duration_ms("0.01s") == pytest.approx(10)
    with pytest.raises(ValueError):
        parse_duration_ms("soon")


def test_great_circle_new_york_chicago():
    # About 1,145 km between the two cities' centres.
    km = great_circle_km(40.71427, -74.00597, 41.85003, -87.65005)
    assert 1130 < km < 1160
    assert fibre_latency_ms(km) == pytest.approx(km / 200)
    assert great_circle_km(10, 20, 10, 20) == 0
    assert math.isclose(great_circle_km(0, 0, 0, 180), math.pi * 6371.0088, rel_tol=1e-9)


def test_inverse_capacity_metric_matches_ospf_auto_cost():
    assert inverse_capacity_metric(100_000) == 1
    assert inverse_capacity_metric(10_000) == 10
    assert inverse_capacity_metric(155) == 645
    assert inverse_capacity_metric(1) == 65535
