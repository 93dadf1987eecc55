"""Raw points encoded with numpy equal those built with the protobuf message API."""

from __future__ import annotations

import numpy as np
import pytest

from aetus.query.v1 import query_service_pb2 as pb
from aetus.server.records import ValueType
from aetus.server.services import _points

NS = 1_000_000_000
KINDS = [_points.VALUE, _points.MISSING, _points.GAP]
# Times at and around the epoch, before it, at whole seconds, at the largest
# and smallest int64 and at the time ranges that change varint lengths.
EDGE_TIMES = [
    0,
    1,
    NS,
    -1,
    -NS,
    -NS - 1,
    2**63 - 1,
    -(2**63),
    127 * NS + 127,
    128 * NS + 128,
    1_714_564_800 * NS + 999_999_999,
]
VALUES = {
    ValueType.DOUBLE: [0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 5e-324, -1e308],
    ValueType.INT64: [0, 1, -1, 127, 128, 2**63 - 1, -(2**63), 300],
    ValueType.BOOL: [0, 1, 1, 0, 1, 0, 0, 1],
    ValueType.STRING: ["", "on", "ünïcode", "x" * 300, "a", "b", "c", "d"],
}
FIELDS = {
    ValueType.DOUBLE: "double_value",
    ValueType.INT64: "int_value",
    ValueType.BOOL: "bool_value",
    ValueType.STRING: "string_value",
}


def reference(value_type, times, values, kinds) -> pb.ChannelSeries:
    """Build the series point by point with the message API."""
    series = pb.ChannelSeries(channel="x", unit="g")
    for time_ns, value, kind in zip(times, values, kinds, strict=True):
        point = series.points.add()
        point.time.FromNanoseconds(int(time_ns))
        if kind == _points.VALUE:
            cast = {ValueType.BOOL: bool, ValueType.STRING: str}.get(value_type)
            setattr(point, FIELDS[value_type], cast(value) if cast else value)
        point.gap = kind == _points.GAP
    return series


def encoded(value_type, times, values, kinds) -> pb.ChannelSeries:
    series = pb.ChannelSeries(channel="x", unit="g")
    _points.add_points(
        series,
        value_type,
        np.asarray(times, dtype=np.int64),
        np.asarray(values, dtype=object if value_type == ValueType.STRING else None),
        np.asarray(kinds, dtype=np.int8),
    )
    return series


@pytest.mark.parametrize("value_type", list(VALUES), ids=lambda t: t.name.lower())
def test_points_encoding_edge_values(value_type: ValueType) -> None:
    rng = np.random.default_rng(int(value_type))
    count = 400
    times = rng.choice(EDGE_TIMES, size=count)
    values = [VALUES[value_type][i] for i in rng.integers(0, 8, size=count)]
    kinds = rng.choice(KINDS, size=count, p=[0.8, 0.1, 0.1])

    built = encoded(value_type, times, values, kinds)
    expected = reference(value_type, times, values, kinds)

    assert len(built.points) == count
    assert built.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    gaps = [point.gap for point in built.points]
    valued = [point.WhichOneof("value") is not None for point in built.points]
    assert gaps == (kinds == _points.GAP).tolist()
    assert valued == (kinds == _points.VALUE).tolist()


def test_points_encoding_random_times() -> None:
    rng = np.random.default_rng(11)
    times = rng.integers(-(2**63), 2**63 - 1, size=5000, dtype=np.int64)
    values = rng.normal(size=5000) * 10.0 ** rng.integers(-300, 300, size=5000)
    kinds = np.zeros(5000, dtype=np.int8)

    built = encoded(ValueType.DOUBLE, times, values, kinds)
    expected = reference(ValueType.DOUBLE, times, values, kinds)

    assert built.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )


def test_points_encoding_empty_page() -> None:
    built = encoded(ValueType.DOUBLE, [], [], [])

    assert len(built.points) == 0
    assert built.channel == "x"


def test_points_gap_markers_halfway() -> None:
    times = np.array([0, 10, 100, 110], dtype=np.int64)
    missing = np.array([False, True, False, False])
    gaps = np.array([False, True, False, True])

    placed, kinds, sources = _points.place_gap_markers(times, missing, gaps, 210)

    assert placed.tolist() == [0, 10, 55, 100, 110, 160]
    assert kinds.tolist() == [0, 1, 2, 0, 0, 2]
    assert sources.tolist() == [0, 1, 1, 2, 3, 3]
