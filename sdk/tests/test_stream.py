"""EventStream against the real server: acks, backpressure, stalls, half-close."""

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from aetus.sdk import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AsyncClient,
    BatchRejected,
    DeviceIdentity,
    InvalidArgumentError,
    StreamClosedError,
    build_metrics,
    build_signal_frames,
    stubs,
)
from aetus.server.app import RunningServer, start_server
from aetus.server.config import Settings

from .conftest import stored_points

START_NS = 1_714_564_800_000_000_000


def _events(identity: DeviceIdentity, count: int, first: int = 0) -> list[stubs.Event]:
    return [
        build_metrics(identity, {"n": first + i}, time=START_NS + (first + i) * 1_000)
        for i in range(count)
    ]


async def test_stream_acks_and_flush(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    async with AsyncClient(
        server.address, token=server.admin_token, stream_batch_max_events=25
    ) as client:
        stream = client.open_stream()
        await stream.send_many(_events(identity, 100))
        await stream.flush(timeout_s=10)

        assert stream.unacked_batch_count == 0
        assert stored_points(server, "dev-01", "n") == 100
        result = await stream.close()

    assert result.accepted_count == 100
    assert result.duplicate_count == 0
    assert result.reconnect_count == 0
    assert result.complete


async def test_stream_linger_sends_partial_batch(server: RunningServer) -> None:
    async with AsyncClient(
        server.address, token=server.admin_token, stream_linger_ms=20
    ) as client:
        stream = client.open_stream()
        await stream.send(_events(DeviceIdentity("dev-01"), 1)[0])

        for _ in range(200):
            if stream.result().accepted_count == 1:
                break
            await asyncio.sleep(0.01)

        assert stream.result().accepted_count == 1
        await stream.close()


async def test_stream_backpressure_bounds_memory(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    server.event_log.commit_delay_s = 0.05
    window = 3
    async with AsyncClient(
        server.address,
        token=server.admin_token,
        stream_batch_max_events=50,
        stream_max_inflight_batches=window,
    ) as client:
        stream = client.open_stream()
        largest_batch_bytes = 0
        for event in _events(identity, 1_500):
            await stream.send(event)
            assert stream.unacked_batch_count <= window
            largest_batch_bytes = max(largest_batch_bytes, event.ByteSize() + 6)
        result = await stream.close(timeout_s=30)

    # The window filled, so send() waited for acks instead of queueing more.
    assert stream.peak_unacked_batches == window
    assert stream.peak_buffered_bytes <= (window + 1) * 50 * largest_batch_bytes
    assert result.complete
    assert result.accepted_count == 1_500
    assert stored_points(server, "dev-01", "n") == 1_500


async def test_stream_ack_timeout_reconnects(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    async with AsyncClient(
        server.address,
        token=server.admin_token,
        stream_ack_timeout_s=1.0,
        stream_batch_max_events=5,
        retry_initial_backoff_ms=50,
        retry_max_backoff_ms=200,
    ) as client:
        stream = client.open_stream()
        await stream.send_many(_events(identity, 20))
        await stream.flush(timeout_s=10)

        # Commits stall for 3 s: the stream sees no ack within 1 s, cancels
        # the call, reconnects and resends what was not acked.
        server.event_log.pause_commits()
        resume = asyncio.get_running_loop().call_later(
            3.0, server.event_log.resume_commits
        )
        started = time.monotonic()
        await stream.send_many(_events(identity, 30, first=20))
        await stream.flush(timeout_s=15)
        stalled_s = time.monotonic() - started
        resume.cancel()
        result = await stream.close()

    assert result.reconnect_count >= 1
    assert result.resent_batch_count >= 1
    assert result.complete
    assert result.accepted_count + result.duplicate_count >= 50
    assert 2.5 < stalled_s < 10
    assert stored_points(server, "dev-01", "n") == 50


async def test_stream_call_has_no_deadline(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    async with AsyncClient(
        server.address, token=server.admin_token, timeout_s=0.3
    ) as client:
        stream = client.open_stream()
        for event in _events(identity, 4):
            await stream.send(event)
            await asyncio.sleep(0.25)
        result = await stream.close()

    # The stream outlived the unary deadline threefold on one call.
    assert result.reconnect_count == 0
    assert result.complete
    assert stored_points(server, "dev-01", "n") == 4


async def test_stream_half_close_receives_all_acks(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    async with AsyncClient(
        server.address,
        token=server.admin_token,
        stream_batch_max_events=10,
        stream_max_inflight_batches=16,
    ) as client:
        stream = client.open_stream()
        server.event_log.pause_commits()
        await stream.send_many(_events(identity, 100))
        # close() half-closes at once; the commits come 2 s later, and the
        # acks must still arrive before the server ends the call with OK.
        asyncio.get_running_loop().call_later(2.0, server.event_log.resume_commits)
        result = await stream.close(timeout_s=15)

    assert result.error is None
    assert result.reconnect_count == 0
    assert result.accepted_count == 100
    assert result.unacked_event_count == 0
    assert stored_points(server, "dev-01", "n") == 100


async def test_stream_rejected_batch_reported_and_stream_goes_on(
    server: RunningServer,
) -> None:
    identity = DeviceIdentity("dev-01")
    rejections: list[BatchRejected] = []
    bad = stubs.Event(device_id="dev-01", boot_id=identity.boot_id, sequence=999)
    async with AsyncClient(server.address, token=server.admin_token) as client:
        stream = client.open_stream(on_rejection=rejections.append)
        await stream.send_many(_events(identity, 5))
        await stream.flush()
        await stream.send(bad)
        await stream.flush()
        await stream.send_many(_events(identity, 5, first=5))
        result = await stream.close()

    assert len(rejections) == 1
    assert rejections[0].batch_number == 2
    assert list(rejections[0].events) == [bad]
    assert isinstance(rejections[0].error, InvalidArgumentError)
    assert "events[0]" in rejections[0].error.message
    assert result.rejected_batch_count == 1
    assert result.rejected_event_count == 1
    assert result.accepted_count == 10
    assert result.complete
    assert stored_points(server, "dev-01", "n") == 10


async def test_stream_bad_token_fails_stream(server: RunningServer) -> None:
    async with AsyncClient(server.address, token="not-a-token") as client:
        stream = client.open_stream()
        await stream.send(_events(DeviceIdentity("dev-01"), 1)[0])
        with pytest.raises(StreamClosedError, match="UNAUTHENTICATED"):
            await stream.flush(timeout_s=10)
        with pytest.raises(StreamClosedError):
            await stream.send(_events(DeviceIdentity("dev-01"), 1)[0])
        result = await stream.close(timeout_s=10)

    assert result.error is not None
    assert result.error.code is not None
    assert result.error.code.name == "UNAUTHENTICATED"
    assert result.unacked_event_count == 1
    assert not result.complete


async def test_stream_splits_oversized_frame(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    normal = np.arange(300, dtype=np.float32).reshape(100, 3)
    big = np.linspace(-1.0, 1.0, 1_500_000, dtype=np.float32)

    def accel(index: int) -> list[stubs.Event]:
        return build_signal_frames(
            identity,
            "imu/accel",
            normal,
            channels=["x", "y", "z"],
            sample_rate_hz=1_000,
            time=START_NS + index * 100_000_000,
        )

    before = [event for index in range(3) for event in accel(index)]
    split = build_signal_frames(
        identity, "vib/big", big, channels=["v"], sample_rate_hz=10_000, time=START_NS
    )
    after = [event for index in range(3, 6) for event in accel(index)]
    async with AsyncClient(server.address, token=server.admin_token) as client:
        stream = client.open_stream()
        await stream.send_many([*before, *split, *after])
        result = await stream.close(timeout_s=60)
        envelope = await client.read_stream("dev-01", "vib/big", mode="envelope")
        boundary_ns = split[1].time.ToNanoseconds()
        around_split = await client.read_stream(
            "dev-01",
            "vib/big",
            mode="raw",
            start_time=boundary_ns - 1_000 * 100_000,
            end_time=boundary_ns + 1_000 * 100_000,
        )

    first_count = split[0].signal_frame.sample_count
    assert envelope.source_point_count == 1_500_000
    assert int(envelope["v"].counts.sum()) == 1_500_000
    window = around_split["v"]
    assert len(window) == 2_000
    expected = big[first_count - 1_000 : first_count + 1_000].astype(np.float64)
    np.testing.assert_array_equal(window.values, expected)
    assert np.all(np.diff(window.times_ns) == 100_000)
    assert len(split) == 2
    assert all(event.ByteSize() < DEFAULT_MAX_MESSAGE_BYTES for event in split)
    assert [event.sequence for event in split] == [3, 4]
    assert result.complete
    assert result.accepted_count == 3 + 2 + 3
    assert stored_points(server, "dev-01", "vib/big") == 1_500_000
    assert stored_points(server, "dev-01", "imu/accel") == 600


async def test_stream_reconnects_after_server_restart(
    server: RunningServer, tmp_path: Path
) -> None:
    identity = DeviceIdentity("dev-01")
    async with AsyncClient(
        server.address,
        token=server.admin_token,
        retry_initial_backoff_ms=50,
        retry_max_backoff_ms=200,
    ) as client:
        stream = client.open_stream()
        await stream.send_many(_events(identity, 1))
        await stream.flush(timeout_s=10)
        await server.stop(0)

        # The same data folder and port: the device's stream comes back.
        restarted = await start_server(
            Settings.load(
                environ={},
                data_dir=tmp_path / "data",
                grpc_address=server.address,
                admin_token=server.admin_token,
            )
        )
        try:
            await stream.send_many(_events(identity, 1, first=1))
            await stream.flush(timeout_s=15)
            result = await stream.close()
            count = stored_points(restarted, "dev-01", "n")
        finally:
            await restarted.stop(0)

    assert result.reconnect_count >= 1
    assert result.complete
    assert count == 2


async def test_stream_oversized_event_rejected_locally(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")
    huge = build_metrics(identity, {"note": "x" * 8_000}, time=START_NS)
    async with AsyncClient(
        server.address, token=server.admin_token, max_message_bytes=4_096
    ) as client:
        stream = client.open_stream()
        with pytest.raises(ValueError, match="over max_message_bytes=4096"):
            await stream.send(huge)
        await stream.send_many(_events(identity, 3))
        result = await stream.close()

    assert result.complete
    assert result.accepted_count == 3
    assert stored_points(server, "dev-01", "note") == 0
