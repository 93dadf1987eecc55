"""ReadStream over a real gRPC server: raw points, envelopes, calendars, pages."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import numpy as np
import pytest
from google.protobuf import timestamp_pb2

from aetus.query.v1 import query_service_pb2 as pb
from aetus.server.records import ValueType
from aetus.server.store import EmbeddedStore

MS = 1_000_000
S = 1_000_000_000
T0 = 1_714_564_800 * S  # 2024-05-01T12:00:00Z


def stamp(time_ns: int) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromNanoseconds(time_ns)
    return result


def ns(value: timestamp_pb2.Timestamp) -> int:
    return value.ToNanoseconds()


async def test_read_stream_raw_double_specials(
    store: EmbeddedStore, build, stub, auth
) -> None:
    times = T0 + np.arange(4, dtype=np.int64) * S
    store.write(
        build.scalar(
            "temp",
            times,
            [21.5, np.nan, np.inf, -np.inf],
            ValueType.DOUBLE,
            unit="degC",
        )
    )

    response = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="dev-01", stream="temp"), metadata=auth
    )

    assert response.mode == pb.READ_MODE_RAW
    assert response.source_point_count == 4
    series = response.series[0]
    assert series.unit == "degC"
    assert [ns(p.time) for p in series.points] == times.tolist()
    values = [p.double_value for p in series.points]
    assert values[0] == 21.5
    assert math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf]


@pytest.mark.parametrize(
    ("value_type", "values", "field"),
    [
        (ValueType.INT64, [2**62 + 3, -1, 0], "int_value"),
        (ValueType.BOOL, [1, 0, 1], "bool_value"),
        (ValueType.STRING, ["warming", "ready", ""], "string_value"),
    ],
    ids=["int64", "bool", "string"],
)
async def test_read_stream_raw_typed_values(
    store, build, stub, auth, value_type, values, field
) -> None:
    times = T0 + np.arange(3, dtype=np.int64) * S
    store.write(build.scalar("state", times, values, value_type))

    response = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="dev-01", stream="state"), metadata=auth
    )

    points = response.series[0].points
    assert [p.WhichOneof("value") for p in points] == [field] * 3
    expected = [bool(v) for v in values] if value_type == ValueType.BOOL else values
    assert [getattr(p, field) for p in points] == expected
    assert response.stream.value_type == int(value_type)


async def test_read_stream_envelope_keeps_spikes(store, build, stub, auth) -> None:
    times = T0 + np.arange(16_000, dtype=np.int64) * MS
    values = np.sin(np.arange(16_000) / 100.0)
    values[7000], values[9000] = -50.0, 50.0
    store.write(
        build.scalar("vib", times, values, ValueType.DOUBLE, points_per_event=1000)
    )

    response = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="dev-01", stream="vib", max_points=1600),
        metadata=auth,
    )

    assert response.mode == pb.READ_MODE_ENVELOPE
    buckets = response.series[0].buckets
    assert len(buckets) == 800
    drawn = {(ns(b.min_time), b.min) for b in buckets} | {
        (ns(b.max_time), b.max) for b in buckets
    }
    assert len(drawn) <= 1600
    assert (int(times[7000]), -50.0) in drawn
    assert (int(times[9000]), 50.0) in drawn
    assert buckets[0].first == values[0]
    assert ns(buckets[0].start_time) == times[0]
    assert buckets[-1].last == values[-1]
    assert sum(b.count for b in buckets) == 16_000
    assert response.source_point_count == 16_000
    assert response.bucket_width.ToNanoseconds() == ns(buckets[0].end_time) - ns(
        buckets[0].start_time
    )


def b39_times_values() -> tuple[np.ndarray, np.ndarray]:
    start = T0 - 2 * 3600 * S  # 10:00Z
    seconds = np.arange(3600)
    seconds = seconds[(seconds < 1200) | (seconds >= 1800)]
    values = np.cos(seconds / 60.0)
    values[(seconds >= 2400) & (seconds < 2410)] = np.nan
    return start + seconds.astype(np.int64) * S, values


async def test_read_stream_raw_gap_marker(store, build, stub, auth) -> None:
    times, values = b39_times_values()
    store.write(
        build.scalar("rh", times, values, ValueType.DOUBLE, points_per_event=100)
    )

    response = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="dev-01", stream="rh", max_points=5000),
        metadata=auth,
    )

    points = response.series[0].points
    gaps = [p for p in points if p.gap]
    assert len(gaps) == 1
    assert gaps[0].WhichOneof("value") is None
    gap_ns = ns(gaps[0].time)
    assert times[1199] < gap_ns < times[1200]
    assert len(points) == len(times) + 1


async def test_read_stream_envelope_nan_and_gap(store, build, stub, auth) -> None:
    times, values = b39_times_values()
    store.write(
        build.scalar("rh", times, values, ValueType.DOUBLE, points_per_event=100)
    )
    start = T0 - 2 * 3600 * S

    response = await stub.ReadStream(
        pb.ReadStreamRequest(
            device_id="dev-01",
            stream="rh",
            max_points=200,
            start_time=stamp(start),
            end_time=stamp(start + 3600 * S),
        ),
        metadata=auth,
    )

    buckets = response.series[0].buckets
    assert len(buckets) == 100
    empty = [b for b in buckets if b.count == 0]
    assert len(empty) == 16
    assert not any(b.HasField("min") or b.HasField("mean") for b in empty)
    for bucket in buckets:
        if bucket.count:
            inside = (times >= ns(bucket.start_time)) & (times < ns(bucket.end_time))
            assert bucket.min == np.nanmin(values[inside])
            assert bucket.max == np.nanmax(values[inside])
            assert not math.isnan(bucket.mean)


@pytest.mark.parametrize(
    ("day", "count"),
    [("2024-10-27", 1500), ("2024-03-31", 1380)],
    ids=["fall-back", "spring-forward"],
)
async def test_read_stream_calendar_day_berlin(
    store, build, stub, auth, day, count
) -> None:
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=zone)
    start = int(midnight.timestamp()) * S
    times = start - 6 * 3600 * S + np.arange(60 * 36, dtype=np.int64) * 60 * S
    store.write(
        build.scalar(
            "power", times, np.ones(len(times)), ValueType.DOUBLE, points_per_event=60
        )
    )
    next_midnight = dt.datetime.combine(
        midnight.date() + dt.timedelta(days=1), dt.time(), zone
    )

    response = await stub.ReadStream(
        pb.ReadStreamRequest(
            device_id="dev-01",
            stream="power",
            calendar_unit=pb.CALENDAR_UNIT_DAY,
            time_zone="Europe/Berlin",
            start_time=stamp(start),
            end_time=stamp(int(next_midnight.timestamp()) * S),
        ),
        metadata=auth,
    )

    buckets = response.series[0].buckets
    assert len(buckets) == 1
    assert buckets[0].count == count
    assert ns(buckets[0].end_time) - ns(buckets[0].start_time) == count * 60 * S
    assert not response.HasField("bucket_width")


async def test_read_stream_raw_pages(store, build, stub, auth) -> None:
    times = T0 + np.arange(5000, dtype=np.int64) * S
    values = np.arange(5000, dtype=np.float64)
    store.write(
        build.scalar("level", times, values, ValueType.DOUBLE, points_per_event=50)
    )
    request = pb.ReadStreamRequest(
        device_id="dev-01", stream="level", max_points=1000, mode=pb.READ_MODE_RAW
    )

    pages = []
    while True:
        response = await stub.ReadStream(request, metadata=auth)
        pages.append(response)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token

    assert len(pages) == 5
    read = [p.double_value for page in pages for p in page.series[0].points]
    assert read == values.tolist()
    assert all(page.source_point_count == 5000 for page in pages)


async def test_read_stream_string_markers_page(store, build, stub, auth) -> None:
    times = T0 + np.arange(30, dtype=np.int64) * S
    markers = [f"state-{i}" for i in range(30)]
    store.write(build.scalar("mode", times, markers, ValueType.STRING))
    request = pb.ReadStreamRequest(device_id="dev-01", stream="mode", max_points=20)

    first = await stub.ReadStream(request, metadata=auth)
    request.page_token = first.next_page_token
    second = await stub.ReadStream(request, metadata=auth)

    assert first.mode == pb.READ_MODE_RAW
    read = [p.string_value for page in (first, second) for p in page.series[0].points]
    assert read == markers
    assert second.next_page_token == ""


async def test_read_stream_week_without_max_points(store, build, stub, auth) -> None:
    # A week at 1 Hz, read with every option left at its default.
    times = T0 + np.arange(7 * 86400, dtype=np.int64) * S
    values = np.sin(np.arange(len(times)) / 600.0)
    store.write(
        build.scalar("week", times, values, ValueType.DOUBLE, points_per_event=1000)
    )

    response = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="dev-01", stream="week"), metadata=auth
    )

    assert response.mode == pb.READ_MODE_ENVELOPE
    assert len(response.series[0].buckets) == 1000
    assert sum(b.count for b in response.series[0].buckets) == len(times)
    assert response.source_point_count == len(times)
    assert response.ByteSize() < 4 * 1024 * 1024


async def test_read_stream_max_points_ceiling_stays_under_limit(
    store, build, stub, auth
) -> None:
    times = T0 + np.arange(300_000, dtype=np.int64) * MS
    store.write(
        build.scalar(
            "fast",
            times,
            np.cos(np.arange(300_000) / 50.0),
            ValueType.DOUBLE,
            points_per_event=1000,
        )
    )

    raw = await stub.ReadStream(
        pb.ReadStreamRequest(
            device_id="dev-01", stream="fast", max_points=100_000, mode=pb.READ_MODE_RAW
        ),
        metadata=auth,
    )
    buckets = await stub.ReadStream(
        pb.ReadStreamRequest(
            device_id="dev-01",
            stream="fast",
            max_points=100_000,
            mode=pb.READ_MODE_ENVELOPE,
        ),
        metadata=auth,
    )

    assert len(raw.series[0].points) == 100_000
    assert raw.next_page_token
    assert raw.ByteSize() < 4 * 1024 * 1024
    assert len(buckets.series[0].buckets) == 30_000
    assert buckets.ByteSize() < 4 * 1024 * 1024
