"""Dedup, value types, batch isolation, boot times and device bookkeeping."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aetus.server.records import (
    NormalizedBatch,
    SeriesTypeConflict,
    StoreError,
    ValueType,
    WriteResult,
)
from aetus.server.store import EmbeddedStore, StoreClosed

S = 1_000_000_000
T0 = 1_714_564_800 * S


def read_values(store: EmbeddedStore, name: str, device_id: str = "dev-01") -> list:
    stream = store.find_stream(device_id, name)
    assert stream is not None
    return store.read_points(stream, 0, 2**62).values.tolist()


def merge(*batches: NormalizedBatch) -> NormalizedBatch:
    """Join batches into one, renumbering event indices."""
    joined = NormalizedBatch(batches[0].received_time_ns)
    for batch in batches:
        offset = len(joined.events)
        joined.events.extend(batch.events)
        for points in batch.metrics:
            points.event_index = points.event_index + offset
            joined.metrics.append(points)
    return joined


def test_store_duplicate_key_within_batch(store: EmbeddedStore, build) -> None:
    first = build.scalar("t", [T0], [1.0], ValueType.DOUBLE, first_sequence=5)
    retry = build.scalar("t", [T0 + S], [2.0], ValueType.DOUBLE, first_sequence=5)

    result = store.write(merge(first, retry))

    assert result.accepted_count == 1
    assert result.duplicate_count == 1
    assert read_values(store, "t") == [1.0]


def test_store_dedup_scoped_to_boot(store: EmbeddedStore, build) -> None:
    times = T0 + np.arange(50, dtype=np.int64) * S
    boot7 = build.scalar(
        "n", times, np.arange(50), ValueType.INT64, boot_id="7", first_sequence=100
    )
    replay = build.scalar(
        "n", times, np.arange(50), ValueType.INT64, boot_id="7", first_sequence=100
    )
    boot8 = build.scalar(
        "n",
        times + 3600 * S,
        np.arange(50),
        ValueType.INT64,
        boot_id="8",
        first_sequence=0,
    )

    results = [store.write(batch) for batch in (boot7, replay, boot8)]

    assert [r.accepted_count for r in results] == [50, 0, 50]
    assert [r.duplicate_count for r in results] == [0, 50, 0]
    assert len(read_values(store, "n")) == 100
    assert store.get_device("dev-01").event_count == 100


def test_store_int_into_double_series_converts(store: EmbeddedStore, build) -> None:
    store.write(build.scalar("v", [T0], [0.5], ValueType.DOUBLE))

    store.write(build.scalar("v", [T0 + S], [3], ValueType.INT64, first_sequence=1))

    assert read_values(store, "v") == [0.5, 3.0]
    assert store.find_stream("dev-01", "v").value_type == ValueType.DOUBLE


def test_store_new_series_mixing_int_and_double(store: EmbeddedStore, build) -> None:
    ints = build.scalar("mix", [T0], [7], ValueType.INT64)
    doubles = build.scalar("mix", [T0 + S], [0.25], ValueType.DOUBLE, first_sequence=1)

    store.write(merge(ints, doubles))

    assert store.find_stream("dev-01", "mix").value_type == ValueType.DOUBLE
    assert read_values(store, "mix") == [7.0, 0.25]


def test_store_type_conflict_stores_nothing(store: EmbeddedStore, build) -> None:
    store.write(build.scalar("v", [T0], [0.5], ValueType.DOUBLE))
    other = build.scalar("other", [T0 + S], [1.0], ValueType.DOUBLE, first_sequence=1)
    wrong = build.scalar("v", [T0 + 2 * S], [1], ValueType.BOOL, first_sequence=2)

    with pytest.raises(SeriesTypeConflict) as caught:
        store.write(merge(other, wrong))

    assert caught.value.name == "v"
    assert caught.value.stored == ValueType.DOUBLE
    assert caught.value.received == ValueType.BOOL
    assert caught.value.event_index == 1
    assert store.find_stream("dev-01", "other") is None
    assert store.get_device("dev-01").event_count == 1
    retry = store.write(
        build.scalar("other", [T0 + S], [1.0], ValueType.DOUBLE, first_sequence=1)
    )
    assert retry.accepted_count == 1


def test_store_write_many_isolates_batches(store: EmbeddedStore, build) -> None:
    store.write(build.scalar("v", [T0], [0.5], ValueType.DOUBLE))
    good = build.scalar("v", [T0 + S], [1.5], ValueType.DOUBLE, first_sequence=1)
    bad = build.scalar(
        "v", [T0 + 2 * S], ["x"], ValueType.STRING, first_sequence=2, device_id="dev-01"
    )
    again = build.scalar("v", [T0 + S], [1.5], ValueType.DOUBLE, first_sequence=1)
    fresh = build.scalar("w", [T0], [9], ValueType.INT64, device_id="dev-02")

    results = store.write_many([good, bad, again, fresh])

    assert isinstance(results[0], WriteResult)
    assert results[0].accepted_count == 1
    assert isinstance(results[1], SeriesTypeConflict)
    assert isinstance(results[2], WriteResult)
    assert results[2].duplicate_count == 1
    assert isinstance(results[3], WriteResult)
    assert results[0].commit_time_ns == results[3].commit_time_ns
    assert read_values(store, "v") == [0.5, 1.5]
    assert read_values(store, "w", "dev-02") == [9]


def test_store_boot_time_keeps_minimum(store: EmbeddedStore, build) -> None:
    for sequence, estimate in enumerate([T0 + 100, T0 + 50, T0 + 70]):
        batch = build.scalar(
            "u",
            [T0 + sequence],
            [1.0],
            ValueType.DOUBLE,
            boot_id="b9",
            first_sequence=sequence,
        )
        batch.boot_times_ns[("dev-01", "b9")] = estimate
        store.write(batch)

    assert store.boot_time_ns("dev-01", "b9") == T0 + 50
    assert store.boot_time_ns("dev-01", "unknown") is None


def test_store_write_updates_device_row(store: EmbeddedStore, build) -> None:
    store.write(build.scalar("u", [T0], [1.0], ValueType.DOUBLE, boot_id="b1"))
    batch = build.scalar(
        "u", [T0 + S, T0 + 2 * S], [1.0, 2.0], ValueType.DOUBLE, boot_id="b2"
    )
    batch.received_time_ns += 5 * S

    store.write(batch)

    row = store.get_device("dev-01")
    assert row.event_count == 3
    assert row.last_boot_id == "b2"
    assert row.last_seen_time_ns == batch.received_time_ns


def test_store_restart_continues_keys(store_dir: Path, build) -> None:
    first = EmbeddedStore(store_dir)
    first.write(build.scalar("a", [T0], [1.0], ValueType.DOUBLE))
    first.close()

    second = EmbeddedStore(store_dir)
    try:
        second.write(build.scalar("b", [T0], [2.0], ValueType.DOUBLE, first_sequence=1))
        second.write(
            build.scalar("a", [T0 + S], [3.0], ValueType.DOUBLE, first_sequence=2)
        )
        assert read_values(second, "a") == [1.0, 3.0]
        assert read_values(second, "b") == [2.0]
        assert [s.name for s in second.list_streams("dev-01")] == ["a", "b"]
    finally:
        second.close()


def test_store_concurrent_writers_and_readers(store: EmbeddedStore, build) -> None:
    errors: list[BaseException] = []

    def write(device: int) -> None:
        try:
            for sequence in range(20):
                batch = build.scalar(
                    "c",
                    [T0 + sequence * S],
                    [float(sequence)],
                    ValueType.DOUBLE,
                    device_id=f"dev-{device}",
                    first_sequence=sequence,
                )
                store.write(batch)
                store.list_streams(f"dev-{device}")
        except BaseException as exc:  # collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for device in range(4):
        assert read_values(store, "c", f"dev-{device}") == [float(i) for i in range(20)]


def test_store_rejects_use_after_close(store_dir: Path, build) -> None:
    opened = EmbeddedStore(store_dir)
    opened.close()

    with pytest.raises(StoreClosed):
        opened.write(build.scalar("a", [T0], [1.0], ValueType.DOUBLE))
    with pytest.raises(StoreClosed):
        opened.list_streams("dev-01")


def test_store_write_many_survives_failing_batch(store: EmbeddedStore, build) -> None:
    good = build.scalar("v", [T0], [1.0], ValueType.DOUBLE)
    broken = build.scalar("v", [T0 + S], [2.0], ValueType.DOUBLE, first_sequence=1)
    broken.events[0] = replace(broken.events[0], time_ns=2**64)
    later = build.scalar("v", [T0 + 2 * S], [3.0], ValueType.DOUBLE, first_sequence=2)

    results = store.write_many([good, broken, later])

    assert isinstance(results[0], WriteResult)
    assert isinstance(results[1], StoreError)
    assert "Storing the batch failed" in str(results[1])
    assert isinstance(results[2], WriteResult)
    assert read_values(store, "v") == [1.0, 3.0]
    assert store.get_device("dev-01").event_count == 2
