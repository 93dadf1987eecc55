"""The SDK's bidi stream through real Envoy: acks after a half-close reach it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aetus.sdk import AsyncClient, DeviceIdentity, build_metrics

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

START_NS = 1_714_564_800_000_000_000


async def _send_then_close(front_door: Any, commit_pause_s: float) -> tuple[Any, int]:
    """Send 100 events, half-close at once, and release commits after a pause."""
    identity = DeviceIdentity(front_door.device_id)
    events = [
        build_metrics(identity, {"env/n": i}, time=START_NS + i * 1_000_000)
        for i in range(100)
    ]
    before = front_door.event_count()
    event_log = front_door.server.event_log
    async with AsyncClient(
        front_door.http_address,
        token=front_door.device_token,
        stream_batch_max_events=10,
        stream_max_inflight_batches=16,
        stream_ack_timeout_s=commit_pause_s + 15,
    ) as client:
        stream = client.open_stream()
        event_log.pause_commits()
        try:
            await stream.send_many(events)
            release = asyncio.get_running_loop().call_later(
                commit_pause_s, event_log.resume_commits
            )
            result = await stream.close(timeout_s=commit_pause_s + 30)
            release.cancel()
        finally:
            event_log.resume_commits()
    return result, front_door.event_count() - before


async def test_sdk_stream_half_close_through_envoy(front_door: Any) -> None:
    result, stored = await _send_then_close(front_door, commit_pause_s=2.0)

    assert result.error is None
    assert result.reconnect_count == 0
    assert result.accepted_count == 100
    assert result.unacked_event_count == 0
    assert stored == 100


@pytest.mark.slow
async def test_sdk_stream_acks_outlive_route_timeout(front_door: Any) -> None:
    # Envoy's default route timeout is 15 s; the shipped gRPC route sets 0s,
    # so acks sent 16 s after the half-close still reach the client.
    result, stored = await _send_then_close(front_door, commit_pause_s=16.0)

    assert result.error is None
    assert result.reconnect_count == 0
    assert result.accepted_count == 100
    assert stored == 100
