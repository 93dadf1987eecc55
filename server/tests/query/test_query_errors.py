"""QueryService rejections: codes, field names and messages."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from aetus.query.v1 import query_service_pb2 as pb
from aetus.query.v1 import query_service_pb2_grpc
from aetus.server.records import ChannelSpec, ValueType
from aetus.server.services.query import QueryService
from aetus.server.store import EmbeddedStore
from aetus.server.store._reader import EXACT_MEDIAN_MAX_POINTS

from .conftest import FixedTokenAuthorizer

S = 1_000_000_000
T0 = 1_714_564_800 * S


def stamp(time_ns: int) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromNanoseconds(time_ns)
    return result


def violation_field(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            return request.field_violations[0].field
    return ""


@pytest.fixture
def seeded(store: EmbeddedStore, build) -> EmbeddedStore:
    times = T0 + np.arange(10, dtype=np.int64) * S
    store.write(build.scalar("temp", times, np.arange(10.0), ValueType.DOUBLE))
    store.write(
        build.scalar(
            "mode",
            times,
            [f"m{i}" for i in range(10)],
            ValueType.STRING,
            first_sequence=10,
        )
    )
    data = np.zeros(8, dtype="<i2").tobytes()
    store.write(
        build.frames(
            "acc",
            [(T0, S, 4, 2, 1, (ChannelSpec("x", "g"), ChannelSpec("y", "g")), data)],
            first_sequence=20,
        )
    )
    return store


BAD_READS = [
    (
        "end-before-start",
        {"start_time": stamp(T0 + S), "end_time": stamp(T0)},
        "end_time",
        "is before start_time",
    ),
    (
        "max-points-high",
        {"max_points": 100_001},
        "max_points",
        "100001 is out of range; use 1 to 100000",
    ),
    ("max-points-negative", {"max_points": -1}, "max_points", "-1 is out of range"),
    ("mode-unknown", {"mode": 9}, "mode", "mode 9 is not a known value"),
    (
        "calendar-unknown",
        {"calendar_unit": 7},
        "calendar_unit",
        "calendar_unit 7 is not a known value",
    ),
    (
        "time-zone",
        {"time_zone": "Mars/Olympus", "calendar_unit": 2},
        "time_zone",
        "'Mars/Olympus' is not an IANA time zone",
    ),
    (
        "page-token",
        {"page_token": "not-a-token"},
        "page_token",
        "is not a token this service issued",
    ),
    (
        "channel-on-scalar",
        {"channels": ["x"]},
        "channels",
        "is scalar and has no channels",
    ),
    (
        "calendar-raw",
        {"calendar_unit": 1, "mode": 1},
        "calendar_unit",
        "mode is READ_MODE_RAW",
    ),
    (
        "nanos",
        {"start_time": timestamp_pb2.Timestamp(seconds=1, nanos=-5)},
        "start_time.nanos",
        "out of range",
    ),
    (
        "hour-buckets-too-many",
        {"calendar_unit": 1, "start_time": stamp(0), "end_time": stamp(T0)},
        "calendar_unit",
        "narrow start_time and end_time",
    ),
    (
        "day-buckets-too-many",
        {
            "calendar_unit": 2,
            "max_points": 20,
            "start_time": stamp(T0 - 30 * 86_400 * S),
            "end_time": stamp(T0),
        },
        "calendar_unit",
        "more than 10 day buckets, the maximum for this read (max_points / 2, "
        "capped at 30000 per channel); narrow start_time and end_time to at "
        "most 10 days per call or raise max_points",
    ),
]


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [case[1:] for case in BAD_READS],
    ids=[case[0] for case in BAD_READS],
)
async def test_read_stream_invalid_argument(
    seeded, stub, auth, fields, field, text
) -> None:
    request = pb.ReadStreamRequest(device_id="dev-01", stream="temp", **fields)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReadStream(request, metadata=auth)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert text in caught.value.details()
    assert violation_field(caught.value) == field


async def test_read_stream_unknown_channel(seeded, stub, auth) -> None:
    request = pb.ReadStreamRequest(
        device_id="dev-01", stream="acc", channels=["x", "q"]
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReadStream(request, metadata=auth)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        caught.value.details()
        == "channels[1] 'q' is not a channel of stream 'acc'; use one of x, y"
    )
    assert violation_field(caught.value) == "channels[1]"


async def test_read_stream_string_envelope_rejected(seeded, stub, auth) -> None:
    request = pb.ReadStreamRequest(
        device_id="dev-01", stream="mode", mode=pb.READ_MODE_ENVELOPE
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReadStream(request, metadata=auth)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "never bucketed; use READ_MODE_RAW" in caught.value.details()


async def test_read_stream_page_token_other_stream(seeded, stub, auth) -> None:
    first = await stub.ReadStream(
        pb.ReadStreamRequest(
            device_id="dev-01", stream="temp", max_points=3, mode=pb.READ_MODE_RAW
        ),
        metadata=auth,
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReadStream(
            pb.ReadStreamRequest(
                device_id="dev-01", stream="mode", page_token=first.next_page_token
            ),
            metadata=auth,
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "issued for a different request" in caught.value.details()


@pytest.mark.parametrize(
    ("device_id", "stream", "field"),
    [("ghost", "temp", "device_id"), ("dev-01", "ghost", "stream")],
    ids=["device", "stream"],
)
async def test_read_stream_not_found(
    seeded, stub, auth, device_id, stream, field
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReadStream(
            pb.ReadStreamRequest(device_id=device_id, stream=stream), metadata=auth
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'ghost'" in caught.value.details()
    assert violation_field(caught.value) == field


@pytest.mark.parametrize(
    ("device_id", "stream"), [("", "temp"), ("dev-01", "")], ids=["device", "stream"]
)
async def test_read_stream_missing_names(seeded, stub, auth, device_id, stream) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReadStream(
            pb.ReadStreamRequest(device_id=device_id, stream=stream), metadata=auth
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is required" in caught.value.details()


@pytest.mark.parametrize("method", ["ListStreams", "ReadStream", "ListEvents"])
async def test_query_requires_read_credential(seeded, stub, method) -> None:
    request = {
        "ListStreams": pb.ListStreamsRequest(device_id="dev-01"),
        "ReadStream": pb.ReadStreamRequest(device_id="dev-01", stream="temp"),
        "ListEvents": pb.ListEventsRequest(device_id="dev-01"),
    }[method]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(
            request, metadata=[("authorization", "Bearer wrong")]
        )

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_list_events_invalid_arguments(seeded, stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await stub.ListEvents(
            pb.ListEventsRequest(device_id="dev-01", page_size=-2), metadata=auth
        )
    with pytest.raises(grpc.aio.AioRpcError) as reversed_range:
        await stub.ListEvents(
            pb.ListEventsRequest(
                device_id="dev-01", start_time=stamp(T0), end_time=stamp(T0 - 1)
            ),
            metadata=auth,
        )
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.ListEvents(pb.ListEventsRequest(device_id="ghost"), metadata=auth)

    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_field(negative.value) == "page_size"
    assert reversed_range.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation_field(reversed_range.value) == "end_time"
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_read_stream_memory_limit_exhausted(tmp_path, build, auth) -> None:
    # A 4 MiB store limit is too small for the exact median interval at its
    # point limit, which a first raw page of a range computes in DuckDB.
    count = EXACT_MEDIAN_MAX_POINTS
    times = T0 + np.arange(count, dtype=np.int64) * 1_000_000
    store = EmbeddedStore(tmp_path / "small")
    store.write(
        build.scalar(
            "v",
            times,
            np.linspace(0, 1, count),
            ValueType.DOUBLE,
            points_per_event=1000,
        )
    )
    store.close()
    store = EmbeddedStore(tmp_path / "small", memory_limit_mb=4)
    server = grpc.aio.server()
    query_service_pb2_grpc.add_QueryServiceServicer_to_server(
        QueryService(store, FixedTokenAuthorizer()), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    request = pb.ReadStreamRequest(
        device_id="dev-01",
        stream="v",
        start_time=stamp(T0),
        end_time=stamp(T0 + count * 1_000_000),
        max_points=10,
        mode=pb.READ_MODE_RAW,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = query_service_pb2_grpc.QueryServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ReadStream(request, metadata=auth)
    finally:
        await server.stop(None)
        store.close()

    details = caught.value.details()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "memory than the store's limit of 4 MiB" in details
    assert "shorter range" in details
    assert "smaller max_points" in details
    assert "DuckDB" not in details
    assert "Out of Memory" not in details
