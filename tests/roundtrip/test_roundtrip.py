"""Every recording round-trips exactly: ingest, read back, compare raw values and times.

Two ingest paths: the SDK's bidi stream straight to the gRPC server, and raw
protobuf posted to ``/v1/ingest`` through Envoy. The read goes through
QueryService in raw mode. Decoded signal values must equal ``raw * scale``
computed here in float64 (so int16 and int32 samples come back exactly, and
float32 samples exactly as float32), and every time must match to the
nanosecond.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2
from aetus.sdk import AsyncClient, DeviceIdentity, Series
from aetus.server.recordings import ReadOptions, Recording, read_recording
from aetus.server.replay import build_item_events, replay_recording, schedule_recording

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.envoy,
    pytest.mark.slow,
]

RECORDINGS = [
    "fan_vibration_esp32_msa301.npz",
    "motor_current_itsc_1khz.npz",
    "imu_xio_fusion_sensor_data.csv",
    "imu_xio_gait_short_walk.csv",
    "airquality_uci_hourly.csv",
    "ecg_mitdb208_360hz.csv",
]

# Largest protobuf body posted at once; below the front door's 1 MiB limit.
POST_BYTES = 900_000
_devices = itertools.count(1)


@dataclass
class Expected:
    """What one stream (or one channel of it) must read back as."""

    stream: str
    channel: str
    times_ns: np.ndarray
    values: np.ndarray | list[str]


def _expected(recording: Recording, start_ns: int) -> Iterator[Expected]:
    for track in recording.signals:
        times = np.concatenate(
            [
                start_ns
                + frame.offset_ns
                + np.arange(len(frame.samples), dtype=np.int64)
                * track.sample_interval_ns
                for frame in track.frames
            ]
        )
        raw = np.concatenate([frame.samples for frame in track.frames])
        for index, channel in enumerate(track.channels):
            column = raw[:, index].astype(np.float64)
            decoded = column if track.scale is None else column * track.scale
            yield Expected(track.stream, channel.name, times, decoded)
    for metric in recording.metrics:
        yield Expected(metric.name, "", start_ns + metric.offsets_ns, metric.values)


def _start_ns(recording: Recording) -> int:
    # Whole seconds an hour before the recording would end now, so that every
    # time is in the past and the offsets show up unrounded.
    now_s = time.time_ns() // 1_000_000_000
    return (now_s - 3600) * 1_000_000_000 - recording.duration_ns


async def _new_device(front_door: Any, label: str) -> tuple[str, str]:
    device_id = f"rt-{label}-{next(_devices)}"
    admin = front_door.admin_token
    async with AsyncClient(front_door.grpc_address, token=admin) as client:
        stub = device_service_pb2_grpc.DeviceServiceStub(client.channel)
        request = device_service_pb2.ProvisionDeviceRequest(
            device_id=device_id, hardware_id=f"hw-{device_id}", model="roundtrip"
        )
        reply = await stub.ProvisionDevice(request, metadata=client.metadata)
    return device_id, reply.token


async def _assert_reads_back(
    front_door: Any, device_id: str, recording: Recording, start_ns: int
) -> None:
    by_stream: dict[str, list[Expected]] = {}
    for expected in _expected(recording, start_ns):
        by_stream.setdefault(expected.stream, []).append(expected)
    admin = front_door.admin_token
    async with AsyncClient(front_door.grpc_address, token=admin) as client:
        for stream, channels in by_stream.items():
            # One read returns every channel of a signal stream.
            data = await client.read_stream(device_id, stream, mode="raw")
            assert sorted(data.series) == sorted(e.channel for e in channels), stream
            for expected in channels:
                series = data[expected.channel]
                assert isinstance(series, Series)
                _assert_series(series, expected)


def _assert_series(series: Series, expected: Expected) -> None:
    keep = ~np.asarray(series.gaps, dtype=bool)
    label = f"{expected.stream}[{expected.channel}]"
    times = series.times_ns[keep]
    assert len(times) == len(expected.times_ns), label
    assert np.array_equal(times, expected.times_ns), label
    values = series.values[keep]
    if isinstance(expected.values, list):
        assert list(values) == expected.values, label
        return
    stored = np.asarray(values, dtype=np.float64)
    # Bit-for-bit: NaN matches NaN, and no value is off by one ulp.
    assert np.array_equal(stored.view(np.int64), expected.values.view(np.int64)), label


def _read(data_dir: Path, name: str) -> Recording:
    path = data_dir / name
    if not path.is_file():
        pytest.skip(f"recording {name} is not in {data_dir}")
    return read_recording(path, ReadOptions())


@pytest.mark.parametrize("name", RECORDINGS)
async def test_roundtrip_sdk_stream(front_door: Any, data_dir: Path, name: str) -> None:
    recording = _read(data_dir, name)
    device_id, token = await _new_device(front_door, "sdk")
    start_ns = _start_ns(recording)

    async with AsyncClient(front_door.grpc_address, token=token) as client:
        stream = client.open_stream()
        report = await replay_recording(
            recording,
            stream,
            DeviceIdentity(device_id),
            rate=None,
            start_time_ns=start_ns,
        )
        result = await stream.close()

    assert result.complete
    assert result.accepted_count == report.events
    assert result.rejected_event_count == 0
    await _assert_reads_back(front_door, device_id, recording, start_ns)


@pytest.mark.parametrize("name", RECORDINGS)
async def test_roundtrip_protobuf_post(
    front_door: Any, data_dir: Path, name: str
) -> None:
    recording = _read(data_dir, name)
    device_id, token = await _new_device(front_door, "post")
    start_ns = _start_ns(recording)
    identity = DeviceIdentity(device_id)
    events = [
        event
        for item in schedule_recording(recording)
        for event in build_item_events(item, identity, start_ns)
    ]

    accepted = 0
    for body in _bodies(events):
        reply = await front_door.http(
            "POST",
            "/v1/ingest",
            body,
            {"content-type": "application/x-protobuf", **front_door.bearer(token)},
        )
        assert reply.status == 200, reply.body[:300]
        assert reply.headers.get("grpc-status", "0") == "0", reply.headers
        response = ingest_service_pb2.IngestEventsResponse.FromString(reply.body)
        assert response.duplicate_count == 0
        accepted += response.accepted_count

    assert accepted == len(events)
    await _assert_reads_back(front_door, device_id, recording, start_ns)


def _bodies(events: list[Any]) -> Iterator[bytes]:
    """Pack events into IngestEventsRequest bodies below POST_BYTES each."""
    batch: list[Any] = []
    size = 0
    for event in events:
        # Each repeated field entry costs its length plus a tag and a length
        # prefix of at most 6 bytes.
        cost = event.ByteSize() + 6
        if batch and size + cost > POST_BYTES:
            yield ingest_service_pb2.IngestEventsRequest(
                events=batch
            ).SerializeToString()
            batch, size = [], 0
        batch.append(event)
        size += cost
    if batch:
        yield ingest_service_pb2.IngestEventsRequest(events=batch).SerializeToString()
