"""Missing readings through Envoy: null accepted, bare NaN rejected, read as JSON."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from aetus.ingest.v1 import ingest_service_pb2
from aetus.telemetry.v1 import telemetry_pb2

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def reading(
    device_id: str, boot_id: str, sequence: int, second: int, value: str
) -> str:
    """Return one JSON event whose metric value is the JSON text ``value``.

    An empty ``value`` leaves the value field out.
    """
    field = f', "doubleValue": {value}' if value else ""
    return (
        f'{{"deviceId": "{device_id}", "bootId": "{boot_id}", '
        f'"sequence": "{sequence}", "time": "2024-05-01T12:00:0{second}Z", '
        f'"metrics": {{"metrics": [{{"name": "b36/{boot_id}"{field}}}]}}}}'
    )


async def post(front_door, body: bytes, content_type: str = JSON):
    headers = {
        "content-type": content_type,
        **front_door.bearer(front_door.device_token),
    }
    return await front_door.http("POST", "/v1/ingest", body, headers)


async def read(front_door, stream: str, **query: object):
    text = urlencode({"stream": stream, **query})
    return await front_door.http(
        "GET",
        f"/v1/devices/{front_door.device_id}/series?{text}",
        headers=front_door.bearer(front_door.read_token),
    )


def stored_missing(front_door, stream: str) -> list[bool]:
    store = front_door.server.store
    info = store.find_stream(front_door.device_id, stream)
    assert info is not None, f"stream {stream} was not stored"
    return store.read_points(info, 0, 2**62).missing.tolist()


async def test_null_reading_stored_and_read_back(front_door) -> None:
    device = front_door.device_id
    events = [
        reading(device, "null", 5, 0, "21.0"),
        reading(device, "null", 6, 1, "null"),
        reading(device, "null", 7, 2, ""),
        reading(device, "null", 8, 3, "0"),
    ]
    body = ('{"events": [' + ", ".join(events) + "]}").encode()

    posted = await post(front_door, body)
    raw = await read(front_door, "b36/null")
    buckets = await read(front_door, "b36/null", calendar_unit="CALENDAR_UNIT_DAY")

    assert posted.status == 200, posted.body
    assert posted.json()["acceptedCount"] == 4
    assert stored_missing(front_door, "b36/null") == [False, True, True, False]
    assert raw.status == 200
    points = raw.json()["series"][0]["points"]
    assert [point.get("doubleValue") for point in points] == [21.0, None, None, 0]
    assert [point["gap"] for point in points] == [False] * 4
    assert points[1]["time"] == "2024-05-01T12:00:01Z"
    bucket = buckets.json()["series"][0]["buckets"][0]
    assert int(bucket["count"]) == 4
    assert bucket["min"] == 0
    assert bucket["max"] == 21.0
    assert bucket["mean"] == 10.5


@pytest.mark.parametrize("token", ["NaN", "nan"])
async def test_bare_nan_rejected_with_offset(front_door, token: str) -> None:
    device = front_door.device_id
    events = [
        reading(device, f"bare-{token}", 5, 0, "21.0"),
        reading(device, f"bare-{token}", 6, 1, token),
    ]
    text = '{"events": [' + ", ".join(events) + "]}"
    before = front_door.event_count()

    reply = await post(front_door, text.encode())

    assert reply.status == 400
    body = reply.json()
    assert body["code"] == 3
    offset = text.rindex(token)
    assert body["message"].startswith(f"invalid JSON at byte {offset}")
    assert front_door.event_count() == before
    stream = front_door.server.store.find_stream(device, f"b36/bare-{token}")
    assert stream is None


async def test_unset_oneof_protobuf_stored(front_door) -> None:
    event = telemetry_pb2.Event(
        device_id=front_door.device_id,
        boot_id="proto",
        sequence=1,
        time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
    )
    event.time.FromJsonString("2024-05-01T12:00:00Z")
    event.metrics.metrics.add(name="b36/proto-ok", double_value=3.0)
    event.metrics.metrics.add(name="b36/proto-missing", unit="V")
    request = ingest_service_pb2.IngestEventsRequest(events=[event])

    reply = await post(front_door, request.SerializeToString(), PROTOBUF)
    raw = await read(front_door, "b36/proto-missing")

    assert reply.status == 200, reply.body
    assert reply.headers["grpc-status"] == "0"
    response = ingest_service_pb2.IngestEventsResponse.FromString(reply.body)
    assert response.accepted_count == 1
    assert stored_missing(front_door, "b36/proto-ok") == [False]
    assert stored_missing(front_door, "b36/proto-missing") == [True]
    body = raw.json()
    assert body["stream"]["valueType"] == "VALUE_TYPE_DOUBLE"
    assert body["series"][0]["unit"] == "V"
    point = body["series"][0]["points"][0]
    assert "doubleValue" not in point
    assert point["gap"] is False
    assert json.dumps(point) == '{"time": "2024-05-01T12:00:00Z", "gap": false}'
