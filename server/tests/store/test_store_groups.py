"""write_many on groups of batches: shared statements, dedupe, isolation, cost."""

from __future__ import annotations

import time

import numpy as np

from aetus.server.records import (
    ChannelSpec,
    NormalizedBatch,
    SeriesTypeConflict,
    ValueType,
    WriteResult,
)
from aetus.server.store import EmbeddedStore, InvalidFrame

S = 1_000_000_000
MS = 1_000_000
T0 = 1_714_564_800 * S
XYZ = tuple(ChannelSpec(name, "g") for name in "xyz")


def values_of(store: EmbeddedStore, name: str, device_id: str = "dev-01") -> list:
    stream = store.find_stream(device_id, name)
    assert stream is not None, f"stream {name} of {device_id} was not stored"
    return store.read_points(stream, 0, 2**62).values.tolist()


def results_of(results: list) -> list[tuple[int, int]]:
    """Return (accepted, duplicates) of each result; errors must not occur."""
    assert all(isinstance(result, WriteResult) for result in results), results
    return [(result.accepted_count, result.duplicate_count) for result in results]


def test_store_group_duplicates_first_wins(store: EmbeddedStore, build) -> None:
    first = build.scalar("t", [T0, T0 + S], [1.0, 2.0], ValueType.DOUBLE)
    repeat = build.scalar(
        "t", [T0 + S, T0 + 2 * S], [20.0, 30.0], ValueType.DOUBLE, first_sequence=1
    )
    inner = build.scalar(
        "t", [T0 + 3 * S, T0 + 4 * S], [4.0, 40.0], ValueType.DOUBLE, first_sequence=3
    )
    inner.events[1] = inner.events[0]

    results = store.write_many([first, repeat, inner])

    assert results_of(results) == [(2, 0), (1, 1), (1, 1)]
    assert values_of(store, "t") == [1.0, 2.0, 30.0, 4.0]
    assert store.get_device("dev-01").event_count == 4
    stream = store.find_stream("dev-01", "t")
    assert stream.point_count == 4
    assert stream.first_time_ns == T0
    assert stream.last_time_ns == T0 + 3 * S


def test_store_group_later_batch_sees_new_series(store: EmbeddedStore, build) -> None:
    ints = build.scalar("n", [T0], [7], ValueType.INT64)
    flags = build.scalar("n", [T0 + S], [1], ValueType.BOOL, first_sequence=1)
    doubles = build.scalar("d", [T0 + S], [0.5], ValueType.DOUBLE, first_sequence=1)
    more = build.scalar("n", [T0 + 2 * S], [8], ValueType.INT64, first_sequence=2)

    results = store.write_many([ints, flags, doubles, more])

    assert isinstance(results[1], SeriesTypeConflict)
    assert results[1].stored == ValueType.INT64
    assert results_of([results[0], results[2], results[3]]) == [(1, 0), (1, 0), (1, 0)]
    assert values_of(store, "n") == [7, 8]
    assert values_of(store, "d") == [0.5]
    assert store.find_stream("dev-01", "n").value_type == ValueType.INT64


def test_store_group_rejected_batch_frees_keys(store: EmbeddedStore, build) -> None:
    # The rejected batch stores nothing, so its event identity stays free for
    # the next batch of the same group.
    broken = build.frames("imu", [(T0, MS, 4, 1, 1, XYZ, bytes(47))])
    good = build.frames("imu", [(T0, MS, 4, 1, 1, XYZ, bytes(48))])

    results = store.write_many([broken, good])

    assert isinstance(results[0], InvalidFrame)
    assert results_of(results[1:]) == [(1, 0)]
    assert store.find_stream("dev-01", "imu").point_count == 4


def test_store_group_mixed_kinds_and_devices(store: EmbeddedStore, build) -> None:
    batches: list[NormalizedBatch] = []
    for device in range(3):
        device_id = f"dev-{device}"
        scalar = build.scalar(
            "temp",
            [T0 + device * S],
            [float(device)],
            ValueType.DOUBLE,
            device_id=device_id,
            unit="degC",
        )
        scalar.boot_times_ns[(device_id, "boot-1")] = T0 - (10 - device) * S
        frames = build.frames(
            "imu",
            [(T0, MS, 4, 1, 1, XYZ, bytes(48))],
            device_id=device_id,
            first_sequence=10,
        )
        status = build.status([T0 + 5 * S], device_id=device_id, first_sequence=20)
        batches += [scalar, frames, status]

    results = store.write_many(batches)

    assert results_of(results) == [(1, 0)] * 9
    for device in range(3):
        device_id = f"dev-{device}"
        assert values_of(store, "temp", device_id) == [float(device)]
        assert store.find_stream(device_id, "temp").unit == "degC"
        assert store.find_stream(device_id, "imu").point_count == 4
        events = store.list_device_events(device_id, None, None, None, 10)
        assert [event.sequence for event in events] == [20]
        assert store.boot_time_ns(device_id, "boot-1") == T0 - (10 - device) * S
        row = store.get_device(device_id)
        assert row.event_count == 3
        assert row.last_boot_id == "boot-1"


def _single_event_batches(build, count: int, first_sequence: int) -> list:
    return [
        build.scalar(
            "rh",
            [T0 + (first_sequence + index) * S],
            [float(index)],
            ValueType.DOUBLE,
            device_id=f"dev-{index % 8}",
            first_sequence=first_sequence + index,
        )
        for index in range(count)
    ]


def test_store_group_costs_about_one_batch(store: EmbeddedStore, build) -> None:
    # 64 single-event batches in one write_many call must cost about as much
    # as one batch holding the same 64 events: one statement per table for
    # the group, not per batch. The ratio is taken on the same machine at the
    # same time, so it does not depend on how fast the machine is.
    store.write_many(_single_event_batches(build, 64, 0))
    grouped, joined = [], []
    for run in range(1, 4):
        batches = _single_event_batches(build, 64, run * 1000)
        started = time.perf_counter()
        results = store.write_many(batches)
        grouped.append(time.perf_counter() - started)
        assert results_of(results) == [(1, 0)] * 64

        times = T0 + (run * 1000 + 500 + np.arange(64, dtype=np.int64)) * S
        one = build.scalar(
            "rh", times, np.zeros(64), ValueType.DOUBLE, first_sequence=run * 1000 + 500
        )
        started = time.perf_counter()
        store.write(one)
        joined.append(time.perf_counter() - started)

    assert min(grouped) < 4 * min(joined), (grouped, joined)
