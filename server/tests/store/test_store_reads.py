"""Scalar envelopes computed by the store against a numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from aetus.server import downsample
from aetus.server.records import ValueType
from aetus.server.store import EmbeddedStore

S = 1_000_000_000
T0 = 1_714_564_800 * S


def noisy_series(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Unevenly spaced points with NaN, infinities and a gap."""
    rng = np.random.default_rng(3)
    times = T0 + np.cumsum(rng.integers(1, 3 * S, count)).astype(np.int64)
    times[count // 2 :] += 3600 * S
    values = rng.normal(0, 10, count)
    values[::17] = np.nan
    values[5::101] = np.inf
    values[9::103] = -np.inf
    return times, values


def assert_same_envelope(
    stored: downsample.Envelope, reference: downsample.Envelope
) -> None:
    assert stored.count.tolist() == reference.count.tolist()
    assert stored.finite_count.tolist() == reference.finite_count.tolist()
    np.testing.assert_array_equal(stored.minimum, reference.minimum)
    np.testing.assert_array_equal(stored.maximum, reference.maximum)
    np.testing.assert_array_equal(stored.first, reference.first)
    np.testing.assert_array_equal(stored.last, reference.last)
    has_value = reference.finite_count > 0
    assert (
        stored.min_time_ns[has_value].tolist()
        == reference.min_time_ns[has_value].tolist()
    )
    assert (
        stored.max_time_ns[has_value].tolist()
        == reference.max_time_ns[has_value].tolist()
    )
    assert (
        stored.first_time_ns[has_value].tolist()
        == reference.first_time_ns[has_value].tolist()
    )
    assert (
        stored.last_time_ns[has_value].tolist()
        == reference.last_time_ns[has_value].tolist()
    )
    np.testing.assert_allclose(stored.mean, reference.mean, rtol=1e-9)


@pytest.mark.parametrize("buckets", [1, 7, 500], ids=["one", "seven", "many"])
def test_store_scalar_envelope_equal_buckets(
    store: EmbeddedStore, build, buckets: int
) -> None:
    times, values = noisy_series(5000)
    store.write(
        build.scalar("v", times, values, ValueType.DOUBLE, points_per_event=100)
    )
    stream = store.find_stream("dev-01", "v")
    edges = downsample.equal_width_edges(int(times[10]), int(times[-10]), buckets)

    stored = store.scalar_envelope(stream, edges)

    assert_same_envelope(stored, downsample.envelope(times, values, edges))


def test_store_scalar_envelope_calendar_days(store: EmbeddedStore, build) -> None:
    times = T0 + np.arange(0, 5 * 86400, 60, dtype=np.int64) * S
    values = np.sin(np.arange(len(times)) / 50.0)
    store.write(
        build.scalar("v", times, values, ValueType.DOUBLE, points_per_event=500)
    )
    stream = store.find_stream("dev-01", "v")
    edges = downsample.calendar_edges(
        int(times[0]), int(times[-1]) + 1, "day", "Asia/Kathmandu", max_buckets=10
    )

    stored = store.scalar_envelope(stream, edges)

    assert_same_envelope(stored, downsample.envelope(times, values, edges))


@pytest.mark.parametrize(
    "value_type", [ValueType.INT64, ValueType.BOOL], ids=["int64", "bool"]
)
def test_store_scalar_envelope_integer_types(
    store: EmbeddedStore, build, value_type: ValueType
) -> None:
    times = T0 + np.arange(1000, dtype=np.int64) * S
    values = (
        np.arange(1000) % 2
        if value_type == ValueType.BOOL
        else np.arange(1000) * 7 - 3000
    )
    store.write(build.scalar("n", times, values, value_type, points_per_event=100))
    stream = store.find_stream("dev-01", "n")
    edges = downsample.equal_width_edges(T0, T0 + 1000 * S, 9)

    stored = store.scalar_envelope(stream, edges)
    reference = downsample.envelope(times, values.astype(np.float64), edges)

    assert stored.count.tolist() == reference.count.tolist()
    assert stored.minimum.tolist() == reference.minimum.tolist()
    assert stored.maximum.tolist() == reference.maximum.tolist()
    assert stored.first.tolist() == reference.first.tolist()


def test_store_scalar_envelope_irregular_edges(store: EmbeddedStore, build) -> None:
    # Inner edges 13 ns apart leave no coarse grid, so the store reduces the
    # points in numpy chunks.
    times, values = noisy_series(3000)
    store.write(
        build.scalar("v", times, values, ValueType.DOUBLE, points_per_event=100)
    )
    stream = store.find_stream("dev-01", "v")
    middle = int(times[1500])
    edges = np.array(
        [int(times[0]), middle, middle + 13, int(times[-1]) + 1], dtype=np.int64
    )

    stored = store.scalar_envelope(stream, edges)

    assert_same_envelope(stored, downsample.envelope(times, values, edges))
