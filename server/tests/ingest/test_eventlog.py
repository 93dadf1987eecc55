"""The embedded event log: group commit, storage failures and draining shutdown."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.app import RunningServer, start_server
from aetus.server.checks import Limits
from aetus.server.config import Settings
from aetus.server.errors import ApiError
from aetus.server.eventlog import EmbeddedEventLog
from aetus.server.normalize import BootClock, Normalizer
from aetus.server.records import NormalizedBatch
from aetus.server.store import EmbeddedStore
from aetus.server.testing import bearer


def _request(*events) -> ingest_service_pb2.IngestEventsRequest:
    return ingest_service_pb2.IngestEventsRequest(events=list(events))


async def test_eventlog_groups_concurrent_batches(
    server: RunningServer, ingest, device, events
) -> None:
    server.event_log.pause_commits()
    commits_before = server.event_log.commit_count
    calls = [
        asyncio.ensure_future(
            ingest.IngestEvents(_request(events.metrics(i)), metadata=device.metadata)
        )
        for i in range(20)
    ]
    await asyncio.sleep(0.3)

    assert not any(call.done() for call in calls)
    server.event_log.resume_commits()
    responses = await asyncio.gather(*calls)

    assert [r.accepted_count for r in responses] == [1] * 20
    # The first batch may start a commit alone; the other 19 wait behind it
    # and are stored together.
    assert server.event_log.commit_count - commits_before <= 2


async def test_eventlog_storage_failure_unavailable(
    server: RunningServer, ingest, admin, events
) -> None:
    await asyncio.to_thread(server.store.close)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(_request(events.metrics(1)), metadata=admin)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert raised.value.details() == (
        "storing the batch failed (StoreClosed) and nothing of it was "
        "acknowledged; retry with backoff, which is safe because events are "
        "deduplicated"
    )


async def test_eventlog_registry_failure_unavailable(
    server: RunningServer, ingest, device, events
) -> None:
    await asyncio.to_thread(server.store.close)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(_request(events.metrics(1)), metadata=device.metadata)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert raised.value.details() == (
        "the device registry failed (StoreClosed); retry with backoff"
    )


async def test_eventlog_drains_on_shutdown(tmp_path, events) -> None:
    data_dir = tmp_path / "data"
    running = await start_server(
        Settings.load({}, data_dir=data_dir, grpc_address="127.0.0.1:0")
    )
    running.event_log.commit_delay_s = 0.5
    metadata = bearer(running.admin_token)
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        calls = [
            asyncio.ensure_future(
                stub.IngestEvents(_request(events.metrics(i)), metadata=metadata)
            )
            for i in range(5)
        ]
        await asyncio.sleep(0.1)
        stopping = asyncio.create_task(running.stop(grace_s=5.0))
        await asyncio.sleep(0.1)

        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.IngestEvents(_request(events.metrics(99)), metadata=metadata)
        responses = await asyncio.gather(*calls)
        await stopping

    assert late.value.code() == grpc.StatusCode.UNAVAILABLE
    assert sum(r.accepted_count for r in responses) == 5
    store = await asyncio.to_thread(EmbeddedStore, data_dir)
    try:
        row = await asyncio.to_thread(store.get_device, "dev-01")
    finally:
        await asyncio.to_thread(store.close)
    assert row is not None
    assert row.event_count == 5


async def test_eventlog_rejects_append_after_close(tmp_path) -> None:
    store = await asyncio.to_thread(EmbeddedStore, tmp_path)
    log = EmbeddedEventLog(store)
    await log.start()
    await log.close()

    with pytest.raises(ApiError) as raised:
        await log.append(NormalizedBatch(received_time_ns=0))

    await asyncio.to_thread(store.close)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.reason == "SHUTTING_DOWN"
    assert raised.value.message == (
        "the server is shutting down and stored nothing from this batch; retry, "
        "which is safe because events are deduplicated"
    )


async def test_eventlog_waits_for_space(tmp_path, events) -> None:
    store = await asyncio.to_thread(EmbeddedStore, tmp_path)
    log = EmbeddedEventLog(store, max_pending_bytes=1)
    await log.start()
    normalizer = Normalizer(Limits(), BootClock(store.boot_time_ns))
    log.pause_commits()
    batches = [
        (await normalizer.normalize([events.metrics(i)], device_id=None)).batch
        for i in range(3)
    ]
    appends = [asyncio.create_task(log.append(batch)) for batch in batches]
    await asyncio.sleep(0.2)

    # One batch is pending; the others wait for space instead of queueing.
    assert log.pending_bytes == sum(len(e.payload) + 64 for e in batches[0].events)
    log.resume_commits()
    results = await asyncio.gather(*appends)
    await log.close()
    await asyncio.to_thread(store.close)

    assert [result.accepted_count for result in results] == [1, 1, 1]
    assert log.pending_bytes == 0
