"""The SDK's HTTP fallback through real Envoy: protobuf POSTs to /v1/ingest."""

from __future__ import annotations

from typing import Any

import pytest

from aetus.sdk import (
    AsyncClient,
    AuthenticationError,
    DeviceIdentity,
    InvalidArgumentError,
    build_metrics,
    stubs,
)

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

START_NS = 1_714_564_800_000_000_000


def _client(front_door: Any, token: str) -> AsyncClient:
    return AsyncClient(
        front_door.grpc_address,
        token=token,
        http_url=f"http://{front_door.http_address}",
        retry_initial_backoff_ms=2_000,
    )


async def test_sdk_http_post_stores_and_dedupes(front_door: Any) -> None:
    identity = DeviceIdentity(front_door.device_id)
    events = [
        build_metrics(identity, {"env/http": i}, time=START_NS + i) for i in range(5)
    ]
    before = front_door.event_count()

    async with _client(front_door, front_door.device_token) as client:
        first = await client.send_events_http(events)
        again = await client.send_events_http(events)

    assert (first.accepted_count, first.duplicate_count) == (5, 0)
    assert (again.accepted_count, again.duplicate_count) == (0, 5)
    assert first.commit_time_ns > START_NS
    assert first.attempts == 1
    assert front_door.event_count() == before + 5


async def test_sdk_http_invalid_batch_raises_readable_error(front_door: Any) -> None:
    bad = stubs.Event(device_id=front_door.device_id, boot_id="boot-http", sequence=1)
    before = front_door.event_count()

    async with _client(front_door, front_door.device_token) as client:
        with pytest.raises(InvalidArgumentError) as info:
            await client.send_events_http([bad])

    assert info.value.retriable is False
    assert "events[0]" in info.value.message
    assert "%20" not in info.value.message
    assert info.value.reason != ""
    assert front_door.event_count() == before


async def test_sdk_http_bad_token_raises(front_door: Any) -> None:
    events = [build_metrics(DeviceIdentity(front_door.device_id), {"env/http": 1})]

    async with _client(front_door, "not-a-token") as client:
        with pytest.raises(AuthenticationError):
            await client.send_events_http(events)
