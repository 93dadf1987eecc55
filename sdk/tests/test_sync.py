"""The blocking Client and the generated stubs, used as a script or notebook would.

The server runs on the test's event loop, so every blocking call runs in a
worker thread, as it would in a thread of its own in a script.
"""

import asyncio

import grpc
import pytest

from aetus.sdk import (
    Client,
    DeviceIdentity,
    InvalidArgumentError,
    build_metrics,
    stubs,
)
from aetus.server.app import RunningServer

from .conftest import stored_points

START_NS = 1_714_564_800_000_000_000


async def test_sync_client_round_trip(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")

    def work() -> tuple[int, list[int], int]:
        with Client(server.address, token=server.admin_token) as client:
            result = client.send_events(
                build_metrics(identity, {"n": i}, time=START_NS + i) for i in range(5)
            )
            values = client.read_stream("dev-01", "n", mode="raw")[""].values
            server_time = client.get_time()
        return result.accepted_count, values.tolist(), server_time.unix_time_ns

    accepted, values, server_time_ns = await asyncio.to_thread(work)

    assert accepted == 5
    assert values == [0, 1, 2, 3, 4]
    assert server_time_ns > START_NS


async def test_sync_client_raises_mapped_errors(server: RunningServer) -> None:
    def work() -> None:
        with Client(server.address, token=server.admin_token) as client:
            client.send_events([stubs.Event(device_id="dev-01", boot_id="b")])

    with pytest.raises(InvalidArgumentError):
        await asyncio.to_thread(work)


async def test_sync_stream_sends_and_closes(server: RunningServer) -> None:
    identity = DeviceIdentity("dev-01")

    def work() -> int:
        with Client(server.address, token=server.admin_token) as client:
            with client.open_stream() as stream:
                stream.send_many(
                    build_metrics(identity, {"n": i}, time=START_NS + i)
                    for i in range(30)
                )
                stream.flush(timeout_s=10)
                assert stream.unacked_batch_count == 0
            return stream.result().accepted_count

    accepted = await asyncio.to_thread(work)

    assert accepted == 30
    assert stored_points(server, "dev-01", "n") == 30


async def test_sync_client_works_inside_running_loop(server: RunningServer) -> None:
    # A notebook cell runs with a loop already running in its thread; the
    # client uses its own loop thread, so blocking calls work there too.
    with Client(server.address, token=server.admin_token) as client:
        future = asyncio.get_running_loop().run_in_executor(None, client.get_time)
        server_time = await future

    assert server_time.unix_time_ns > START_NS


async def test_stubs_work_as_generated(server: RunningServer) -> None:
    metadata = (("authorization", f"Bearer {server.admin_token}"),)
    event = stubs.Event(device_id="dev-01", boot_id="boot-nb", sequence=0)
    event.metrics.metrics.add(name="n", double_value=1.5)
    event.time.FromNanoseconds(START_NS)

    def work() -> tuple[int, int]:
        with grpc.insecure_channel(server.address) as channel:
            ingest = stubs.IngestServiceStub(channel)
            stored = ingest.IngestEvents(
                stubs.IngestEventsRequest(events=[event]), metadata=metadata
            )
            reply = ingest.GetTime(stubs.GetTimeRequest(), metadata=metadata)
        return stored.accepted_count, reply.unix_time_ns

    accepted, unix_time_ns = await asyncio.to_thread(work)

    assert accepted == 1
    assert unix_time_ns > START_NS
    assert stored_points(server, "dev-01", "n") == 1
