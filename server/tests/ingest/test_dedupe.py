"""Retries are stored once, and uptime-only boots keep one consistent clock."""

from __future__ import annotations

import asyncio
import time

import grpc

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.app import RunningServer
from aetus.server.testing import bearer, running_server
from aetus.telemetry.v1 import telemetry_pb2


def _request(*events: telemetry_pb2.Event) -> ingest_service_pb2.IngestEventsRequest:
    return ingest_service_pb2.IngestEventsRequest(events=list(events))


async def _point_times(server: RunningServer, name: str) -> list[int]:
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", name)
    assert stream is not None
    page = await asyncio.to_thread(server.store.read_points, stream, 0, 2**63 - 1)
    return [int(t) for t in page.time_ns]


async def test_retry_is_stored_once(server, ingest, device, events) -> None:
    request = _request(events.metrics(1), events.frame(2), events.status(3))

    first = await ingest.IngestEvents(request, metadata=device.metadata)
    retry = await ingest.IngestEvents(request, metadata=device.metadata)

    assert (first.accepted_count, first.duplicate_count) == (3, 0)
    assert (retry.accepted_count, retry.duplicate_count) == (0, 3)
    assert await _point_times(server, "temp") == [events.time_ns + 1_000_000]
    row = await asyncio.to_thread(server.store.get_device, "dev-01")
    assert row is not None
    assert row.event_count == 3


async def test_repeat_within_request_kept_once(server, ingest, device, events):
    original = events.metrics(1, temp=20.0)
    corrected = events.metrics(1, temp=20.5)

    response = await ingest.IngestEvents(
        _request(original, corrected, events.metrics(2)), metadata=device.metadata
    )

    assert (response.accepted_count, response.duplicate_count) == (2, 1)
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", "temp")
    assert stream is not None
    page = await asyncio.to_thread(server.store.read_points, stream, 0, 2**63 - 1)
    # The first copy of an identity wins; the corrected resend is dropped.
    assert [float(v) for v in page.values] == [20.0, 21.5]


async def test_replay_after_reboot_keeps_both_boots(server, ingest, device, events):
    def boot(boot_id: str, sequences: range) -> list[telemetry_pb2.Event]:
        batch = []
        for sequence in sequences:
            event = events.metrics(sequence)
            event.boot_id = boot_id
            batch.append(event)
        return batch

    first = await ingest.IngestEvents(
        _request(*boot("boot-7", range(100, 150))), metadata=device.metadata
    )
    replay = await ingest.IngestEvents(
        _request(*boot("boot-7", range(100, 150))), metadata=device.metadata
    )
    second_boot = await ingest.IngestEvents(
        _request(*boot("boot-8", range(50))), metadata=device.metadata
    )

    assert (first.accepted_count, first.duplicate_count) == (50, 0)
    assert (replay.accepted_count, replay.duplicate_count) == (0, 50)
    assert (second_boot.accepted_count, second_boot.duplicate_count) == (50, 0)
    row = await asyncio.to_thread(server.store.get_device, "dev-01")
    assert row is not None
    assert row.event_count == 100


def _uptime_event(sequence: int, uptime_ms: int) -> telemetry_pb2.Event:
    event = telemetry_pb2.Event(
        device_id="dev-01", boot_id="boot-u", sequence=sequence, uptime_ms=uptime_ms
    )
    event.metrics.metrics.add(name="level", double_value=float(sequence))
    return event


async def test_uptime_boot_clock_consistent(tmp_path) -> None:
    data_dir = tmp_path / "data"
    times: dict[int, int] = {}
    for sequence, uptime_ms in ((1, 5_000), (2, 1_000), (3, 9_000), (4, 2_000)):
        # The server restarts between batches, so the boot start of every
        # batch after the first comes from the store.
        async with (
            running_server(data_dir) as running,
            grpc.aio.insecure_channel(running.address) as channel,
        ):
            stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
            await stub.IngestEvents(
                _request(_uptime_event(sequence, uptime_ms)),
                metadata=bearer(running.admin_token),
            )
            times = await _times_by_value(running, "level")

    # Batch 2 arrives later with a smaller uptime, so it reuses the boot start
    # of batch 1. Batch 3's larger uptime moves the boot start earlier, and
    # batch 4 uses that earlier start.
    assert times[1] - times[2] == 4_000 * 1_000_000
    assert times[3] - times[4] == 7_000 * 1_000_000
    assert times[3] <= time.time_ns()


async def _times_by_value(server: RunningServer, name: str) -> dict[int, int]:
    stream = await asyncio.to_thread(server.store.find_stream, "dev-01", name)
    assert stream is not None
    page = await asyncio.to_thread(server.store.read_points, stream, 0, 2**63 - 1)
    return {int(v): int(t) for t, v in zip(page.time_ns, page.values, strict=True)}


async def test_untimed_events_get_arrival_times(server, ingest, device) -> None:
    before_ns = time.time_ns()
    for sequence in (1, 2, 3):
        event = telemetry_pb2.Event(
            device_id="dev-01", boot_id="boot-n", sequence=sequence
        )
        event.metrics.metrics.add(name="level", double_value=float(sequence))
        await ingest.IngestEvents(_request(event), metadata=device.metadata)
        await asyncio.sleep(0.3)
    after_ns = time.time_ns()

    times = await _times_by_value(server, "level")

    # Each event without time and uptime_ms is placed at its own arrival.
    assert times[2] - times[1] >= 250_000_000
    assert times[3] - times[2] >= 250_000_000
    assert before_ns <= times[1]
    assert times[3] <= after_ns
