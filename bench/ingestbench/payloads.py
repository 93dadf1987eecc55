"""Serialised ingest requests for the benchmark, built before any timing starts.

Every builder is deterministic: the same arguments give the same bytes, and
each repetition uses its own boot id, so no event of one repetition repeats
an identity of another and the server stores every point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aetus.ingest.v1 import ingest_service_pb2
from aetus.telemetry.v1 import telemetry_pb2

# Metrics of one device reading: 8 doubles, an int64 counter and a bool.
DOUBLE_METRICS = tuple(f"sensor/ch{index:02d}" for index in range(8))
COUNTER_METRIC = "sensor/frames"
SWITCH_METRIC = "sensor/relay"
METRICS_PER_READING = len(DOUBLE_METRICS) + 2
# Time between two readings of one device, in nanoseconds (100 Hz).
READING_INTERVAL_NS = 10_000_000
FIRMWARE_VERSION = (1 << 24) | (4 << 16) | 2


@dataclass(frozen=True, slots=True)
class BatchPayloads:
    """One workload as wire bytes.

    Attributes:
        stream_requests: Serialised StreamEventsRequest messages, numbered
            from 1, for the bidi stream.
        ingest_requests: Serialised IngestEventsRequest messages with the same
            events, for unary calls, HTTP posts and the parse baseline.
        events: Events in the whole workload.
        points: Scalar points in the whole workload.
    """

    stream_requests: list[bytes]
    ingest_requests: list[bytes]
    events: int
    points: int


@dataclass(frozen=True, slots=True)
class DevicePayloads:
    """Small device batches: one list of serialised IngestEventsRequest per client.

    Attributes:
        requests: ``requests[client]`` are the posts of device ``client``.
        points_per_request: Scalar points in each request.
    """

    requests: list[list[bytes]]
    points_per_request: int


def _reading(
    event: telemetry_pb2.Event, values: np.ndarray, counter: int, switch: bool
) -> None:
    """Fill ``event.metrics`` with one reading of every metric."""
    metrics = event.metrics.metrics
    for name, value in zip(DOUBLE_METRICS, values.tolist(), strict=True):
        metrics.add(name=name, unit="V", double_value=value)
    metrics.add(name=COUNTER_METRIC, int_value=counter)
    metrics.add(name=SWITCH_METRIC, bool_value=switch)


def _event(
    device_id: str, boot_id: str, sequence: int, time_ns: int
) -> telemetry_pb2.Event:
    event = telemetry_pb2.Event(
        device_id=device_id,
        boot_id=boot_id,
        sequence=sequence,
        uptime_ms=sequence * 10,
        time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
        firmware_version=FIRMWARE_VERSION,
    )
    event.time.FromNanoseconds(time_ns)
    return event


def _encode(
    batch_number: int, events: list[telemetry_pb2.Event]
) -> tuple[bytes, bytes]:
    stream = ingest_service_pb2.StreamEventsRequest(
        batch_sequence=batch_number, events=events
    )
    unary = ingest_service_pb2.IngestEventsRequest(events=events)
    return stream.SerializeToString(), unary.SerializeToString()


def row_batches(
    repetition: int, batches: int, points_per_batch: int, start_ns: int
) -> BatchPayloads:
    """Build batches of MetricSet events: one event per reading of 10 metrics.

    Args:
        repetition: Repetition number; selects the boot id and time range.
        batches: Number of batches.
        points_per_batch: Points per batch, rounded down to whole readings.
        start_ns: Time of the first reading of repetition 0.
    """
    readings = max(1, points_per_batch // METRICS_PER_READING)
    first_ns = start_ns + repetition * batches * readings * READING_INTERVAL_NS
    rng = np.random.default_rng(repetition)
    payloads = BatchPayloads(
        [], [], batches * readings, batches * readings * METRICS_PER_READING
    )
    for batch in range(batches):
        values = rng.normal(1.0, 0.1, (readings, len(DOUBLE_METRICS)))
        events = []
        for reading in range(readings):
            sequence = batch * readings + reading
            event = _event(
                "bench-gateway-rows",
                f"rows-r{repetition}",
                sequence,
                first_ns + sequence * READING_INTERVAL_NS,
            )
            _reading(event, values[reading], sequence, sequence % 7 == 0)
            events.append(event)
        stream, unary = _encode(batch + 1, events)
        payloads.stream_requests.append(stream)
        payloads.ingest_requests.append(unary)
    return payloads


def column_batches(
    repetition: int,
    batches: int,
    points_per_batch: int,
    start_ns: int,
    *,
    events_per_batch: int = 10,
) -> BatchPayloads:
    """Build batches of MetricColumns events, each event one block of readings.

    Every event packs consecutive readings of the 8 double metrics, names
    once, then one name index, time offset and value per point.
    """
    names = len(DOUBLE_METRICS)
    readings = max(1, points_per_batch // (events_per_batch * names))
    block_ns = readings * READING_INTERVAL_NS
    first_ns = start_ns + repetition * batches * events_per_batch * block_ns
    offsets = np.repeat(np.arange(readings, dtype=np.int64), names)
    offsets_ns = (offsets * READING_INTERVAL_NS).tolist()
    indices = np.tile(np.arange(names, dtype=np.uint32), readings).tolist()
    rng = np.random.default_rng(1_000 + repetition)
    total_events = batches * events_per_batch
    payloads = BatchPayloads([], [], total_events, total_events * readings * names)
    for batch in range(batches):
        events = []
        for position in range(events_per_batch):
            sequence = batch * events_per_batch + position
            event = _event(
                "bench-gateway-columns",
                f"columns-r{repetition}",
                sequence,
                first_ns + sequence * block_ns,
            )
            columns = event.metric_columns
            columns.names.extend(DOUBLE_METRICS)
            columns.units.extend(["V"] * names)
            columns.name_indices.extend(indices)
            columns.time_offsets_ns.extend(offsets_ns)
            columns.values.extend(rng.normal(1.0, 0.1, readings * names).tolist())
            events.append(event)
        stream, unary = _encode(batch + 1, events)
        payloads.stream_requests.append(stream)
        payloads.ingest_requests.append(unary)
    return payloads


def device_batches(
    label: str,
    repetition: int,
    device_ids: list[str],
    requests_per_device: int,
    start_ns: int,
) -> DevicePayloads:
    """Build small device posts: one event with one reading of 10 metrics each.

    Args:
        label: Run name (for example ``envoy`` or ``grpc``); part of the
            boot id, so every run stores new events.
        repetition: Repetition number; part of the boot id.
        device_ids: One device per client.
        requests_per_device: Posts per device.
        start_ns: Time of the first reading.
    """
    rng = np.random.default_rng(2_000 + repetition)
    per_device = []
    for device_id in device_ids:
        values = rng.normal(1.0, 0.1, (requests_per_device, len(DOUBLE_METRICS)))
        posts = []
        for sequence in range(requests_per_device):
            event = _event(
                device_id,
                f"{label}-r{repetition}",
                sequence,
                start_ns + sequence * READING_INTERVAL_NS,
            )
            _reading(event, values[sequence], sequence, sequence % 2 == 0)
            request = ingest_service_pb2.IngestEventsRequest(events=[event])
            posts.append(request.SerializeToString())
        per_device.append(posts)
    return DevicePayloads(per_device, METRICS_PER_READING)
