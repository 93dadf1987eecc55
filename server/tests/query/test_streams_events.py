"""ListStreams, ListEvents and sampled-stream reads, including a real ECG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aetus.query.v1 import query_service_pb2 as pb
from aetus.server import downsample
from aetus.server.records import ChannelSpec, ValueType
from aetus.server.store import EmbeddedStore

MS = 1_000_000
S = 1_000_000_000
T0 = 1_714_564_800 * S
ECG_INTERVAL_NS = 1_000_000_000 // 360  # 360 Hz, rounded down to whole ns
ECG_CHANNEL = (ChannelSpec("mlii", "mV", 0.005, -5.12),)


async def read_all_pages(
    stub, auth, request: pb.ReadStreamRequest
) -> list[pb.ReadStreamResponse]:
    pages = []
    while True:
        response = await stub.ReadStream(request, metadata=auth)
        pages.append(response)
        if not response.next_page_token:
            return pages
        request.page_token = response.next_page_token


async def test_list_streams_sorted_with_kinds(
    store: EmbeddedStore, build, stub, auth
) -> None:
    store.write(
        build.scalar("zeta", [T0, T0 + S], [1, 2], ValueType.INT64, unit="count")
    )
    data = np.arange(20, dtype="<i2").tobytes()
    channels = (ChannelSpec("x", "g"), ChannelSpec("y", "g"))
    store.write(
        build.frames(
            "accel", [(T0, 5 * MS, 10, 2, 1, channels, data)], first_sequence=5
        )
    )

    response = await stub.ListStreams(
        pb.ListStreamsRequest(device_id="dev-01"), metadata=auth
    )

    assert [s.name for s in response.streams] == ["accel", "zeta"]
    accel, zeta = response.streams
    assert accel.kind == pb.STREAM_KIND_SAMPLED
    assert [c.name for c in accel.channels] == ["x", "y"]
    assert accel.unit == "g"
    assert accel.point_count == 10
    assert accel.nominal_rate_hz == 200.0
    assert accel.last_time.ToNanoseconds() == T0 + 45 * MS
    assert zeta.kind == pb.STREAM_KIND_SCALAR
    assert zeta.value_type == pb.VALUE_TYPE_INT64
    assert zeta.unit == "count"
    assert zeta.point_count == 2
    assert zeta.first_time.ToNanoseconds() == T0


async def test_list_streams_registered_device_without_data(store, stub, auth) -> None:
    store.upsert_device("dev-07", "hw-7", "esp32", "lab", 1, b"hash")

    response = await stub.ListStreams(
        pb.ListStreamsRequest(device_id="dev-07"), metadata=auth
    )

    assert list(response.streams) == []


async def test_list_events_pages_oldest_first(store, build, stub, auth) -> None:
    times = [T0 + i * S for i in range(7)]
    store.write(build.status(times))
    request = pb.ListEventsRequest(device_id="dev-01", page_size=3)

    events = []
    while True:
        response = await stub.ListEvents(request, metadata=auth)
        events.extend(response.events)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token

    assert [e.time.ToNanoseconds() for e in events] == times
    assert [e.status.reset_reason for e in events] == [f"reason-{i}" for i in range(7)]
    assert [e.sequence for e in events] == list(range(7))
    assert events[0].boot_id == "boot-1"


async def test_read_stream_sampled_channels_raw(store, build, stub, auth) -> None:
    raw = np.arange(30, dtype="<i2").reshape(3, 10)
    channels = (
        ChannelSpec("a", "V", 0.5, 1.0),
        ChannelSpec("b", "V"),
        ChannelSpec("c", "A", None, -2.0),
    )
    store.write(build.frames("volt", [(T0, MS, 10, 2, 2, channels, raw.tobytes())]))

    response = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="dev-01", stream="volt", channels=["c", "a"]),
        metadata=auth,
    )

    assert response.mode == pb.READ_MODE_RAW
    assert response.source_point_count == 10
    assert [s.channel for s in response.series] == ["c", "a"]
    assert [p.double_value for p in response.series[0].points] == (
        raw[2] - 2.0
    ).tolist()
    assert [p.double_value for p in response.series[1].points] == (
        raw[0] * 0.5 + 1.0
    ).tolist()
    assert response.series[0].unit == "A"
    assert [p.time.ToNanoseconds() for p in response.series[1].points] == [
        T0 + i * MS for i in range(10)
    ]


def ecg_batch(build, adc: np.ndarray, frame_samples: int = 360):
    frames = []
    for index in range(len(adc) // frame_samples):
        chunk = adc[index * frame_samples : (index + 1) * frame_samples]
        start = T0 + index * frame_samples * ECG_INTERVAL_NS
        frames.append(
            (start, ECG_INTERVAL_NS, frame_samples, 2, 1, ECG_CHANNEL, chunk.tobytes())
        )
    return build.frames("ecg", frames, device_id="ecg-208")


def load_ecg(data_dir: Path) -> np.ndarray:
    return np.loadtxt(data_dir / "ecg_mitdb208_360hz.csv", skiprows=1, dtype=np.float64)


async def test_read_stream_ecg_scalar_exact(store, build, stub, auth, data_dir) -> None:
    ecg = load_ecg(data_dir)
    times = T0 + np.arange(len(ecg), dtype=np.int64) * ECG_INTERVAL_NS
    store.write(
        build.scalar(
            "ecg_mv",
            times,
            ecg,
            ValueType.DOUBLE,
            device_id="ecg-208",
            points_per_event=360,
            unit="mV",
        )
    )

    pages = await read_all_pages(
        stub,
        auth,
        pb.ReadStreamRequest(
            device_id="ecg-208",
            stream="ecg_mv",
            max_points=100_000,
            mode=pb.READ_MODE_RAW,
        ),
    )

    values = [p.double_value for page in pages for p in page.series[0].points]
    stamps = [p.time.ToNanoseconds() for page in pages for p in page.series[0].points]
    assert len(ecg) == 108_000
    assert len(pages) == 2
    assert values == ecg.tolist()
    assert stamps == times.tolist()


async def test_read_stream_ecg_frames(store, build, stub, auth, data_dir) -> None:
    ecg = load_ecg(data_dir)
    adc = np.rint(ecg * 200 + 1024).astype("<i2")
    store.write(ecg_batch(build, adc))
    decoded = adc.astype(np.float64) * 0.005 + -5.12
    times = T0 + np.arange(len(adc), dtype=np.int64) * ECG_INTERVAL_NS

    pages = await read_all_pages(
        stub,
        auth,
        pb.ReadStreamRequest(
            device_id="ecg-208", stream="ecg", max_points=60_000, mode=pb.READ_MODE_RAW
        ),
    )
    envelope = await stub.ReadStream(
        pb.ReadStreamRequest(device_id="ecg-208", stream="ecg"), metadata=auth
    )

    values = np.array([p.double_value for page in pages for p in page.series[0].points])
    assert len(pages) == 2
    assert values.tolist() == decoded.tolist()
    np.testing.assert_allclose(values, ecg, atol=1e-9)
    assert envelope.mode == pb.READ_MODE_ENVELOPE
    assert envelope.source_point_count == 108_000
    buckets = envelope.series[0].buckets
    edges = np.array(
        [b.start_time.ToNanoseconds() for b in buckets]
        + [buckets[-1].end_time.ToNanoseconds()]
    )
    reference = downsample.envelope(times, decoded, edges)
    assert [b.count for b in buckets] == reference.count.tolist()
    assert [b.min for b in buckets] == reference.minimum.tolist()
    assert [b.max for b in buckets] == reference.maximum.tolist()
    assert [
        b.max_time.ToNanoseconds() for b in buckets
    ] == reference.max_time_ns.tolist()


@pytest.mark.parametrize(
    "unit", [pb.CALENDAR_UNIT_HOUR, pb.CALENDAR_UNIT_DAY], ids=["hour", "day"]
)
async def test_read_stream_sampled_calendar(store, build, stub, auth, unit) -> None:
    raw = np.arange(3600, dtype="<i2")
    frames = [
        (
            T0 + i * 600 * S,
            S,
            600,
            2,
            1,
            (ChannelSpec("p", "W"),),
            raw[i * 600 : (i + 1) * 600].tobytes(),
        )
        for i in range(6)
    ]
    store.write(build.frames("power", frames))

    response = await stub.ReadStream(
        pb.ReadStreamRequest(
            device_id="dev-01",
            stream="power",
            calendar_unit=unit,
            time_zone="Asia/Kathmandu",
        ),
        metadata=auth,
    )

    buckets = response.series[0].buckets
    assert sum(b.count for b in buckets) == 3600
    assert buckets[0].start_time.ToNanoseconds() == T0
    assert min(b.min for b in buckets if b.count) == 0
    assert max(b.max for b in buckets if b.count) == 3599
