"""Values and times written through Envoy and read back as JSON through Envoy."""

from __future__ import annotations

import gzip
import json
import math
from urllib.parse import urlencode

import grpc
import pytest
from google.api import httpbody_pb2

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.telemetry.v1 import telemetry_pb2

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

JSON = "application/json"


def scalar_event(
    device_id: str, sequence: int, time: str, name: str, value: object
) -> dict[str, object]:
    """Build one JSON event with one double metric."""
    return {
        "device_id": device_id,
        "boot_id": "boot-reads",
        "sequence": str(sequence),
        "time": time,
        "metrics": {"metrics": [{"name": name, "double_value": value}]},
    }


async def post_events(front_door, events: list[dict[str, object]]):
    """Post events as JSON through Envoy with the device token."""
    body = json.dumps({"events": events}).encode()
    headers = {"content-type": JSON, **front_door.bearer(front_door.device_token)}
    return await front_door.http("POST", "/v1/ingest", body, headers)


async def post_direct(front_door, events: list[dict[str, object]]) -> tuple[int, str]:
    """Post the same JSON straight to the server's IngestHttpBody."""
    body = json.dumps({"events": events}).encode()
    async with grpc.aio.insecure_channel(front_door.grpc_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        try:
            await stub.IngestHttpBody(
                httpbody_pb2.HttpBody(content_type=JSON, data=body),
                metadata=front_door.grpc_metadata(front_door.device_token),
                timeout=10,
            )
        except grpc.aio.AioRpcError as error:
            return error.code().value[0], error.details() or ""
    return 0, ""


async def read_series(front_door, query: dict[str, object] | str):
    """GET the series endpoint with the read token; a str query is sent as is."""
    text = query if isinstance(query, str) else urlencode(query)
    path = f"/v1/devices/{front_door.device_id}/series?{text}"
    return await front_door.http(
        "GET", path, headers=front_door.bearer(front_door.read_token)
    )


def point_values(reply) -> list[object]:
    """Return the values of the raw points of the only series, gaps excluded."""
    points = reply.json()["series"][0]["points"]
    return [point["doubleValue"] for point in points if not point["gap"]]


async def test_zero_value_printed_between_nonzero(front_door) -> None:
    times = ["2024-05-01T12:00:00Z", "2024-05-01T12:00:01Z", "2024-05-01T12:00:02Z"]
    events = [
        scalar_event(front_door.device_id, 100 + index, time, "b14/value", value)
        for index, (time, value) in enumerate(zip(times, [5, 0, 5], strict=True))
    ]

    posted = await post_events(front_door, events)
    reply = await read_series(front_door, {"stream": "b14/value"})

    assert posted.status == 200
    assert reply.status == 200
    points = reply.json()["series"][0]["points"]
    assert [point["time"] for point in points] == times
    assert [point["doubleValue"] for point in points] == [5, 0, 5]
    assert [point["gap"] for point in points] == [False, False, False]


async def test_special_floats_round_trip_as_strings(front_door) -> None:
    specials = ["NaN", "Infinity", "-Infinity"]
    through_envoy = [
        scalar_event(
            front_door.device_id, 200 + i, f"2024-05-01T12:00:0{i}Z", "b11/envoy", v
        )
        for i, v in enumerate(specials)
    ]
    direct = [
        scalar_event(
            front_door.device_id, 210 + i, f"2024-05-01T12:00:0{i}Z", "b11/direct", v
        )
        for i, v in enumerate(specials)
    ]

    posted = await post_events(front_door, through_envoy)
    direct_code, direct_message = await post_direct(front_door, direct)
    envoy_read = await read_series(front_door, {"stream": "b11/envoy"})
    direct_read = await read_series(front_door, {"stream": "b11/direct"})

    assert posted.status == 200
    assert posted.json()["acceptedCount"] == 3
    assert (direct_code, direct_message) == (0, "")
    # HttpReply.json rejects a bare NaN token, so these are JSON strings.
    assert point_values(envoy_read) == specials
    assert point_values(direct_read) == specials
    stream = front_door.server.store.find_stream(front_door.device_id, "b11/envoy")
    page = front_door.server.store.read_points(stream, 0, 2**62)
    stored = [float(value) for value in page.values]
    assert math.isnan(stored[0])
    assert stored[1:] == [math.inf, -math.inf]


async def test_lowercase_nan_rejected_on_both_paths(front_door) -> None:
    events = [
        scalar_event(front_door.device_id, 300, "2024-05-01T12:00:00Z", "b11/ok", 1.0),
        scalar_event(
            front_door.device_id, 301, "2024-05-01T12:00:01Z", "b11/ok", "nan"
        ),
    ]
    before = front_door.event_count()

    reply = await post_events(front_door, events)
    code, message = await post_direct(front_door, events)

    assert reply.status == 400
    assert code == 3
    assert reply.json()["code"] == 3
    assert reply.json()["message"] == message
    assert "events[1].metrics.metrics[0].double_value" in message
    assert "'nan'" in message
    assert front_door.event_count() == before


async def test_offsets_and_nanoseconds_read_back_in_utc(front_door) -> None:
    sent = [
        "2024-03-31T02:30:00.123456789+05:45",
        "2024-11-03T01:30:00-04:00",
        "2024-05-01T12:00:00.1Z",
    ]
    events = [
        scalar_event(front_door.device_id, 400 + index, time, "b13/value", 1.0)
        for index, time in enumerate(sent)
    ]

    posted = await post_events(front_door, events)
    reply = await read_series(front_door, {"stream": "b13/value"})

    assert posted.status == 200
    points = reply.json()["series"][0]["points"]
    assert [point["time"] for point in points] == [
        "2024-03-30T20:45:00.123456789Z",
        "2024-05-01T12:00:00.100Z",
        "2024-11-03T05:30:00Z",
    ]


async def test_missing_offset_message_exact(front_door) -> None:
    events = [
        scalar_event(front_door.device_id, 500, "2024-05-01T12:00:00", "b13/bad", 1.0)
    ]
    before = front_door.event_count()

    reply = await post_events(front_door, events)
    code, message = await post_direct(front_door, events)

    assert reply.status == 400
    assert reply.json()["message"] == "events[0].time: timezone offset required"
    assert (code, message) == (3, "events[0].time: timezone offset required")
    assert front_door.event_count() == before


async def test_plus_in_query_timestamp_keeps_offset(front_door) -> None:
    utc_times = [
        "2024-05-01T09:59:59Z",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:30:00Z",
        "2024-05-01T10:59:59Z",
        "2024-05-01T11:00:00Z",
        "2024-05-01T12:30:00Z",
    ]
    events = [
        scalar_event(front_door.device_id, 600 + index, time, "b07/value", index)
        for index, time in enumerate(utc_times)
    ]
    posted = await post_events(front_door, events)
    inside = utc_times[1:4]

    raw_plus = await read_series(
        front_door,
        "stream=b07/value&start_time=2024-05-01T12:00:00+02:00"
        "&end_time=2024-05-01T13:00:00%2B02:00",
    )
    encoded = await read_series(
        front_door,
        {
            "stream": "b07/value",
            "start_time": "2024-05-01T12:00:00+02:00",
            "end_time": "2024-05-01T13:00:00+02:00",
        },
    )

    assert posted.status == 200
    for reply in (raw_plus, encoded):
        assert reply.status == 200
        points = reply.json()["series"][0]["points"]
        assert [point["time"] for point in points] == inside


async def test_space_in_query_timestamp_rejected(front_door) -> None:
    reply = await read_series(
        front_door, "stream=b07/value&start_time=2024-05-01T12:00:00%2002:00"
    )

    assert reply.status == 400
    assert reply.json()["code"] == 3
    assert reply.json()["message"].startswith("start_time: invalid value")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        pytest.param({"mode": "MAXX"}, '"MAXX"', id="unknown_name"),
        pytest.param({"mode": "7"}, '"7"', id="unknown_number"),
        pytest.param({"mode": "read_mode_raw"}, '"read_mode_raw"', id="lower_case"),
        pytest.param({"calendar_unit": "DAYS"}, '"DAYS"', id="calendar_unit"),
    ],
)
async def test_unknown_enum_in_query_rejected(front_door, query, named) -> None:
    before = front_door.upstream_requests()

    reply = await read_series(front_door, {"stream": "b14/value", **query})

    assert reply.status == 400
    assert reply.headers["content-type"] == JSON
    body = reply.json()
    assert body["code"] == 3
    assert body["message"].startswith(f"{next(iter(query))}: invalid value {named}")
    assert front_door.upstream_requests() == before


async def test_unknown_query_parameter_rejected(front_door) -> None:
    reply = await read_series(front_door, {"stream": "b14/value", "max_pointz": 5})

    assert reply.status == 400
    assert reply.json()["code"] == 3
    assert '"max_pointz"' in reply.json()["message"]


@pytest.mark.parametrize(
    ("time_source", "named"),
    [
        pytest.param("BAD", "'BAD'", id="unknown_name"),
        pytest.param(7, "7", id="unknown_number"),
    ],
)
async def test_unknown_enum_in_body_rejected(front_door, time_source, named) -> None:
    event = scalar_event(
        front_door.device_id, 700, "2024-05-01T12:00:00Z", "b09/value", 1.0
    )
    event["time_source"] = time_source
    before = front_door.event_count()

    reply = await post_events(front_door, [event])
    code, message = await post_direct(front_door, [event])

    assert reply.status == 400
    assert code == 3
    assert reply.json()["message"] == message
    assert message.startswith("events[0].time_source: ")
    assert named in message
    assert "TIME_SOURCE_SYNCED" in message
    assert front_door.event_count() == before


async def test_wide_query_complete_or_reduced(front_door) -> None:
    # 100,000 points at 10 Hz, loaded over gRPC in one columnar event.
    count = 100_000
    event = telemetry_pb2.Event(
        device_id=front_door.device_id, boot_id="boot-wide", sequence=1
    )
    event.time.FromJsonString("2024-05-01T00:00:00Z")
    columns = event.metric_columns
    columns.names.append("b05/wide")
    columns.name_indices.extend([0] * count)
    columns.time_offsets_ns.extend(range(0, count * 100_000_000, 100_000_000))
    columns.values.extend(float(index % 1000) for index in range(count))
    async with grpc.aio.insecure_channel(front_door.grpc_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        await stub.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[event]),
            metadata=front_door.grpc_metadata(front_door.device_token),
            timeout=60,
        )

    reduced = await read_series(front_door, {"stream": "b05/wide"})
    compressed = await front_door.http(
        "GET",
        f"/v1/devices/{front_door.device_id}/series?stream=b05/wide",
        headers={"accept-encoding": "gzip", **front_door.bearer(front_door.read_token)},
    )
    full = await read_series(
        front_door,
        {"stream": "b05/wide", "mode": "READ_MODE_RAW", "max_points": count},
    )

    assert reduced.status == 200
    reduced_body = reduced.json()
    assert int(reduced_body["sourcePointCount"]) == count
    assert reduced_body["mode"] == "READ_MODE_ENVELOPE"
    buckets = reduced_body["series"][0]["buckets"]
    assert 0 < len(buckets) <= 1000
    assert sum(int(bucket["count"]) for bucket in buckets) == count
    assert compressed.headers["content-encoding"] == "gzip"
    assert len(compressed.body) < len(reduced.body)
    assert json.loads(gzip.decompress(compressed.body)) == reduced_body
    assert full.status == 200
    assert int(full.headers["content-length"]) == len(full.body)
    points = full.json()["series"][0]["points"]
    assert len(points) == count
    assert points[-1]["doubleValue"] == float((count - 1) % 1000)
