"""AsyncClient against the real server: unary ingest, retries, time, errors."""

import asyncio
import logging
import time

import numpy as np
import pytest

from aetus.sdk import (
    AsyncClient,
    AuthenticationError,
    DeviceIdentity,
    InvalidArgumentError,
    PermissionDeniedError,
    StreamClosedError,
    UnavailableError,
    build_metrics,
    build_signal_frames,
    stubs,
)
from aetus.server.app import RunningServer

from .conftest import provision_device, stored_points

START_NS = 1_714_564_800_000_000_000


async def test_client_send_events_stored(
    server: RunningServer, client: AsyncClient
) -> None:
    identity = DeviceIdentity("dev-01")
    events = [
        build_metrics(identity, {"n": i}, time=START_NS + i * 1_000_000)
        for i in range(20)
    ]

    result = await client.send_events(events)

    assert result.accepted_count == 20
    assert result.duplicate_count == 0
    assert result.attempts == 1
    assert result.commit_time_ns > START_NS
    assert stored_points(server, "dev-01", "n") == 20


async def test_client_resend_counts_duplicates(
    server: RunningServer, client: AsyncClient
) -> None:
    events = [build_metrics(DeviceIdentity("dev-01"), {"n": 1.5}, time=START_NS)]

    first = await client.send_events(events)
    second = await client.send_events(events)

    assert (first.accepted_count, first.duplicate_count) == (1, 0)
    assert (second.accepted_count, second.duplicate_count) == (0, 1)
    assert stored_points(server, "dev-01", "n") == 1


async def test_client_retried_batch_stored_once(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    events = [build_metrics(identity, {"n": i}, time=START_NS + i) for i in range(10)]
    server.event_log.pause_commits()

    async def resume_later() -> None:
        await asyncio.sleep(0.8)
        server.event_log.resume_commits()

    resumer = asyncio.create_task(resume_later())
    async with AsyncClient(
        server.address, token=server.admin_token, timeout_s=0.5, max_attempts=8
    ) as client:
        result = await client.send_events(events)
    await resumer

    # The first attempt timed out while its batch waited for the commit; the
    # server stored it anyway, so the retry finds every event stored.
    assert result.attempts >= 2
    assert result.accepted_count == 0
    assert result.duplicate_count == 10
    assert stored_points(server, "dev-01", "n") == 10


async def test_client_invalid_argument_not_retried(
    server: RunningServer, client: AsyncClient
) -> None:
    bad = stubs.Event(device_id="dev-01", boot_id="b", sequence=1)  # no body

    with pytest.raises(InvalidArgumentError) as info:
        await client.send_events([bad])

    assert info.value.retriable is False
    assert "events[0]" in info.value.message


async def test_client_unauthenticated_not_retried(server: RunningServer) -> None:
    events = [build_metrics(DeviceIdentity("dev-01"), {"n": 1})]
    started = time.monotonic()

    async with AsyncClient(
        server.address, token="not-a-token", retry_initial_backoff_ms=2_000
    ) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.send_events(events)

    assert info.value.retriable is False
    assert time.monotonic() - started < 1.5  # no backoff was slept
    assert stored_points(server, "dev-01", "n") == 0


async def test_client_permission_denied_not_retried(server: RunningServer) -> None:
    token = await provision_device(server, "dev-01")
    other = [build_metrics(DeviceIdentity("dev-02"), {"n": 1})]

    async with AsyncClient(
        server.address, token=token, retry_initial_backoff_ms=2_000
    ) as client:
        started = time.monotonic()
        with pytest.raises(PermissionDeniedError) as info:
            await client.send_events(other)
        elapsed_s = time.monotonic() - started
        own = await client.send_events(
            [build_metrics(DeviceIdentity("dev-01"), {"n": 1})]
        )

    assert info.value.retriable is False
    assert elapsed_s < 1.5
    assert own.accepted_count == 1
    assert stored_points(server, "dev-02", "n") == 0


async def test_client_unavailable_retried_then_raised() -> None:
    async with AsyncClient(
        "127.0.0.1:1",
        max_attempts=3,
        retry_initial_backoff_ms=10,
        retry_max_backoff_ms=20,
        timeout_s=2,
    ) as client:
        with pytest.raises(UnavailableError) as info:
            await client.get_time()

    assert info.value.retriable is True


async def test_client_request_over_limit_rejected_locally(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    big = build_metrics(identity, {f"m{i}": "x" * 1_000 for i in range(5_000)})

    with pytest.raises(ValueError, match="over max_message_bytes=4194304"):
        await client.send_events([big])


async def test_client_get_time(client: AsyncClient) -> None:
    before = time.time_ns()

    server_time = await client.get_time()

    assert server_time.valid_after_ns == 1_577_836_800_000_000_000
    assert before - 1_000_000_000 < server_time.unix_time_ns < time.time_ns() + 10**9
    assert server_time.round_trip_ns > 0
    assert abs(server_time.offset_ns) < 1_000_000_000


async def test_client_http_unreachable_retried_then_raised() -> None:
    events = [build_metrics(DeviceIdentity("dev-01"), {"n": 1})]

    async with AsyncClient(
        http_url="http://127.0.0.1:1",
        max_attempts=2,
        retry_initial_backoff_ms=10,
    ) as client:
        with pytest.raises(UnavailableError, match=r"POST to http://127\.0\.0\.1:1"):
            await client.send_events_http(events)


async def test_client_http_bad_url_rejected() -> None:
    events = [build_metrics(DeviceIdentity("dev-01"), {"n": 1})]

    async with AsyncClient(http_url="127.0.0.1:8080") as client:
        with pytest.raises(ValueError, match="use http://host:port"):
            await client.send_events_http(events)


async def test_client_oversized_event_suggests_split(
    server: RunningServer, client: AsyncClient
) -> None:
    identity = DeviceIdentity("dev-01")
    samples = np.arange(1_500_000, dtype=np.float32)
    (whole,) = build_signal_frames(
        identity,
        "vib/big",
        samples,
        channels=["v"],
        sample_rate_hz=10_000,
        time=START_NS,
        max_message_bytes=8 * 1_048_576,
    )

    with pytest.raises(ValueError) as from_call:
        await client.send_events([whole])
    stream = client.open_stream()
    with pytest.raises(ValueError) as from_stream:
        await stream.send(whole)
    split = build_signal_frames(
        identity,
        "vib/big",
        samples,
        channels=["v"],
        sample_rate_hz=10_000,
        time=START_NS,
        max_message_bytes=client.settings.max_message_bytes,
    )
    await stream.send_many(split)
    result = await stream.close()

    assert whole.ByteSize() > 5_000_000
    for message in (str(from_call.value), str(from_stream.value)):
        assert "build_signal_frames(..., max_message_bytes=...)" in message
        assert "open_stream" not in message
    assert len(split) > 1
    assert result.complete
    assert result.accepted_count == len(split)


async def test_client_oversized_batch_suggests_stream(client: AsyncClient) -> None:
    identity = DeviceIdentity("dev-01")
    events = [
        build_metrics(identity, {"note": "x" * 1_000_000}, time=START_NS + i)
        for i in range(5)
    ]

    with pytest.raises(ValueError, match="smaller batches, or use open_stream"):
        await client.send_events(events)


async def test_client_close_cancels_open_stream_quietly(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    identity = DeviceIdentity("dev-01")
    caplog.set_level(logging.DEBUG, logger="aetus.sdk")

    with pytest.raises(KeyError, match="raised by the caller"):
        async with AsyncClient(server.address, token=server.admin_token) as client:
            stream = client.open_stream()
            await stream.send(build_metrics(identity, {"n": 1}, time=START_NS))
            raise KeyError("raised by the caller")

    sdk_above_debug = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("aetus.sdk") and record.levelno > logging.DEBUG
    ]
    tracebacks = [record.getMessage() for record in caplog.records if record.exc_info]
    assert sdk_above_debug == []
    assert tracebacks == []
    assert "cancelled with 1 event(s) not acked" in caplog.text
    assert stream.result().unacked_event_count == 1
    with pytest.raises(StreamClosedError):
        await stream.send(build_metrics(identity, {"n": 2}, time=START_NS))
