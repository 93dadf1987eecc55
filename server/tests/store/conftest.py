"""Fixtures for store tests: a store in a temporary folder and batch builders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from aetus.server.records import (
    ChannelSpec,
    DeviceEventRecord,
    EventKey,
    EventKind,
    EventRecord,
    FrameRecord,
    MetricSeriesPoints,
    NormalizedBatch,
    ValueType,
)
from aetus.server.store import EmbeddedStore
from aetus.telemetry.v1 import telemetry_pb2

RECEIVED_NS = 1_714_564_800_000_000_000


def event_record(
    device_id: str, boot_id: str, sequence: int, kind: EventKind, time_ns: int
) -> EventRecord:
    """Build an EventRecord whose payload is a real serialised Event."""
    event = telemetry_pb2.Event(device_id=device_id, boot_id=boot_id, sequence=sequence)
    event.time.FromNanoseconds(time_ns)
    return EventRecord(
        key=EventKey(device_id, boot_id, sequence),
        kind=kind,
        time_ns=time_ns,
        time_source=1,
        uptime_ms=0,
        firmware_version=0x010203,
        payload=event.SerializeToString(),
    )


def scalar_batch(
    name: str,
    times: Sequence[int] | np.ndarray,
    values: Sequence[object] | np.ndarray,
    value_type: ValueType,
    *,
    device_id: str = "dev-01",
    boot_id: str = "boot-1",
    first_sequence: int = 0,
    points_per_event: int = 1,
    unit: str = "",
) -> NormalizedBatch:
    """Build a batch of one scalar series, ``points_per_event`` points per event."""
    times = np.asarray(times, dtype=np.int64)
    count = len(times)
    event_index = np.arange(count, dtype=np.int64) // points_per_event
    events = [
        event_record(
            device_id,
            boot_id,
            first_sequence + index,
            EventKind.METRIC_COLUMNS,
            int(times[index * points_per_event]),
        )
        for index in range(int(event_index[-1]) + 1 if count else 0)
    ]
    if value_type == ValueType.STRING:
        column: object = [str(value) for value in values]
    elif value_type == ValueType.DOUBLE:
        column = np.asarray(values, dtype=np.float64)
    else:
        column = np.asarray(values, dtype=np.int64)
    points = MetricSeriesPoints(
        device_id,
        name,
        unit,
        value_type,
        event_index,
        times,
        column,  # type: ignore[arg-type]
    )
    return NormalizedBatch(RECEIVED_NS, events=events, metrics=[points])


def frame_batch(
    stream: str,
    frames: Sequence[tuple[int, int, int, int, int, tuple[ChannelSpec, ...], bytes]],
    *,
    device_id: str = "dev-01",
    boot_id: str = "boot-1",
    first_sequence: int = 0,
) -> NormalizedBatch:
    """Build a batch with one event per frame.

    Each frame is (start_ns, interval_ns, sample_count, encoding, layout,
    channels, samples).
    """
    batch = NormalizedBatch(RECEIVED_NS)
    for index, (start, interval, count, encoding, layout, channels, data) in enumerate(
        frames
    ):
        batch.events.append(
            event_record(
                device_id,
                boot_id,
                first_sequence + index,
                EventKind.SIGNAL_FRAME,
                start,
            )
        )
        batch.frames.append(
            FrameRecord(
                index,
                device_id,
                stream,
                start,
                interval,
                count,
                encoding,
                layout,
                channels,
                data,
            )
        )
    return batch


def status_batch(
    times: Sequence[int],
    *,
    device_id: str = "dev-01",
    boot_id: str = "boot-1",
    first_sequence: int = 0,
) -> NormalizedBatch:
    """Build a batch of status events whose reset reason names their index."""
    batch = NormalizedBatch(RECEIVED_NS)
    for index, time_ns in enumerate(times):
        batch.events.append(
            event_record(
                device_id, boot_id, first_sequence + index, EventKind.STATUS, time_ns
            )
        )
        body = telemetry_pb2.StatusEvent(reset_reason=f"reason-{index}")
        batch.device_events.append(
            DeviceEventRecord(
                index, device_id, EventKind.STATUS, time_ns, body.SerializeToString()
            )
        )
    return batch


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Folder for the store's files."""
    return tmp_path / "data"


@pytest.fixture
def store(store_dir: Path) -> Iterator[EmbeddedStore]:
    """An open store in a temporary folder, closed after the test."""
    opened = EmbeddedStore(store_dir)
    yield opened
    opened.close()


class Builders:
    """The batch builders of this module, handed to tests as a fixture."""

    scalar = staticmethod(scalar_batch)
    frames = staticmethod(frame_batch)
    status = staticmethod(status_batch)
    event = staticmethod(event_record)


@pytest.fixture
def build() -> Builders:
    """Batch builders."""
    return Builders()
