"""StreamEvents over a real socket: cumulative acks, rejections, flow control."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from aetus.ingest.v1 import ingest_service_pb2
from aetus.server.app import RunningServer


def _batch(sequence: int, *events) -> ingest_service_pb2.StreamEventsRequest:
    return ingest_service_pb2.StreamEventsRequest(
        batch_sequence=sequence, events=list(events)
    )


async def _collect(call) -> list[ingest_service_pb2.StreamEventsResponse]:
    return [response async for response in call]


def _totals(responses) -> tuple[int, int, int, list[int]]:
    rejected = [r.batch_sequence for resp in responses for r in resp.rejections]
    return (
        responses[-1].acked_batch_sequence,
        sum(resp.accepted_count for resp in responses),
        sum(resp.duplicate_count for resp in responses),
        rejected,
    )


async def test_stream_acks_and_rejects(server, ingest, device, events) -> None:
    bad = events.frame(3, samples=bytes(47))
    requests = [
        _batch(1, events.metrics(1)),
        _batch(2, events.metrics(2), events.status(20)),
        _batch(3, events.metrics(30), bad),
        _batch(4, events.alert(4)),
        _batch(5, events.metrics(1)),
    ]
    call = ingest.StreamEvents(metadata=device.metadata)
    for request in requests:
        await call.write(request)
    await call.done_writing()

    responses = await _collect(call)

    assert await call.code() == grpc.StatusCode.OK
    acked = [response.acked_batch_sequence for response in responses]
    assert acked == sorted(acked)
    assert _totals(responses) == (5, 4, 1, [3])
    rejection = next(r for resp in responses for r in resp.rejections)
    assert rejection.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert rejection.status.message == (
        "events[1].signal_frame.samples: length 47 does not match sample_count "
        "4 x 3 channels x 4 bytes = 48"
    )
    assert len(rejection.status.details) == 2
    row = await asyncio.to_thread(server.store.get_device, "dev-01")
    assert row is not None
    assert row.event_count == 4


async def test_stream_rejects_other_device_batch(ingest, device, events) -> None:
    foreign = events.metrics(2)
    foreign.device_id = "dev-02"
    call = ingest.StreamEvents(metadata=device.metadata)
    await call.write(_batch(1, foreign))
    await call.write(_batch(2, events.metrics(2)))
    await call.done_writing()

    responses = await _collect(call)

    assert _totals(responses) == (2, 1, 0, [1])
    rejection = responses[0].rejections[0]
    assert rejection.status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]


@pytest.mark.parametrize(
    ("sequences", "acked", "message"),
    [
        pytest.param(
            [2],
            0,
            "batch_sequence: 2 received where 1 was expected; number the batches "
            "of each stream 1, 2, 3 and so on, and start again at 1 on a new stream",
            id="starts-at-2",
        ),
        pytest.param(
            [1, 2, 4],
            2,
            "batch_sequence: 4 received where 3 was expected; number the batches "
            "of each stream 1, 2, 3 and so on, and start again at 1 on a new stream",
            id="gap",
        ),
    ],
)
async def test_stream_checks_batch_sequence(
    ingest, device, events, sequences: list[int], acked: int, message: str
) -> None:
    call = ingest.StreamEvents(metadata=device.metadata)
    for sequence in sequences:
        await call.write(_batch(sequence, events.metrics(sequence)))

    responses = [response async for response in _until_error(call)]

    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await call.details() == message
    last_acked = responses[-1].acked_batch_sequence if responses else 0
    assert last_acked == acked


async def _until_error(call):
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError:
        return


async def test_stream_acks_after_half_close(
    server: RunningServer, ingest, device, events
) -> None:
    server.event_log.pause_commits()
    call = ingest.StreamEvents(metadata=device.metadata)
    for sequence in range(1, 11):
        await call.write(_batch(sequence, events.metrics(sequence)))
    await call.done_writing()
    reading = asyncio.create_task(_collect(call))

    await asyncio.sleep(0.3)
    assert not reading.done()
    server.event_log.resume_commits()
    responses = await asyncio.wait_for(reading, 10)

    assert await call.code() == grpc.StatusCode.OK
    assert _totals(responses) == (10, 10, 0, [])


async def test_stream_reads_ahead_a_bounded_number(
    server: RunningServer, ingest, device, events
) -> None:
    batch_count = 80
    sample_count = 16_000  # 192 kB of samples per batch
    written = 0
    server.event_log.pause_commits()
    call = ingest.StreamEvents(metadata=device.metadata)

    async def write_all() -> None:
        nonlocal written
        for sequence in range(1, batch_count + 1):
            event = events.frame(sequence, samples=bytes(sample_count * 12))
            event.signal_frame.sample_count = sample_count
            await call.write(_batch(sequence, event))
            written += 1
        await call.done_writing()

    writer = asyncio.create_task(write_all())
    await asyncio.sleep(1.0)

    # With commits held back, the server reads only its read-ahead window
    # (8 batches plus the one it waits on); the rest waits in flow-control
    # windows and the client's write() blocks.
    assert written < batch_count
    assert server.event_log.pending_bytes <= 10 * 193_000
    server.event_log.resume_commits()
    responses = await asyncio.wait_for(_collect(call), 30)
    await writer

    assert _totals(responses) == (batch_count, batch_count, 0, [])


async def test_stream_ends_unavailable_when_storage_fails(
    server: RunningServer, ingest, device, events
) -> None:
    call = ingest.StreamEvents(metadata=device.metadata)
    await call.write(_batch(1, events.metrics(1)))
    first = await call.read()
    await asyncio.to_thread(server.store.close)
    await call.write(_batch(2, events.metrics(2)))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()

    assert first.acked_batch_sequence == 1
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert raised.value.details() == (
        "storing the batch failed (StoreClosed) and nothing of it was "
        "acknowledged; retry with backoff, which is safe because events are "
        "deduplicated"
    )


async def test_stream_cancel_keeps_queued_batches(
    server: RunningServer, ingest, device, events
) -> None:
    server.event_log.pause_commits()
    call = ingest.StreamEvents(metadata=device.metadata)
    for sequence in range(1, 4):
        await call.write(_batch(sequence, events.metrics(sequence)))
    await asyncio.sleep(0.3)
    call.cancel()
    server.event_log.resume_commits()

    retry = ingest.StreamEvents(metadata=device.metadata)
    for sequence in range(1, 4):
        await retry.write(_batch(sequence, events.metrics(sequence)))
    await retry.done_writing()
    responses = await _collect(retry)

    # The cancelled stream's batches were already in the event log, so they
    # are stored; the resent copies count as duplicates.
    assert _totals(responses) == (3, 0, 3, [])
    assert await call.code() == grpc.StatusCode.CANCELLED
