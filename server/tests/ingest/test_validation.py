"""Every ingest validation rule, with its exact message, through a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.app import RunningServer
from aetus.server.checks import format_time_ns
from aetus.server.records import DeviceRow
from aetus.server.testing import bearer, running_server
from aetus.telemetry.v1 import telemetry_pb2

INT64_OVER = 2**63
CHOICES_ENCODING = (
    "SAMPLE_ENCODING_FLOAT32_LE (1), SAMPLE_ENCODING_INT16_LE (2), "
    "SAMPLE_ENCODING_UINT16_LE (3) or SAMPLE_ENCODING_INT32_LE (4)"
)
CHOICES_SEVERITY = (
    "SEVERITY_INFO (1), SEVERITY_WARNING (2), SEVERITY_ERROR (3) or "
    "SEVERITY_CRITICAL (4)"
)
NOT_SYNCED = (
    "is before 2020-01-01T00:00:00Z, so the device clock is not synchronised; "
    "sync the clock (GetTime or SNTP) or send time_source TIME_SOURCE_UPTIME "
    "with uptime_ms"
)

Mutation = Callable[[telemetry_pb2.Event], None]


def _set(**fields: object) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        for name, value in fields.items():
            setattr(event, name, value)

    return mutate


def _metric(**fields: object) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        metric = event.metrics.metrics[0]
        for name, value in fields.items():
            if value is None:
                metric.ClearField(name)
            else:
                setattr(metric, name, value)

    return mutate


def _frame(**fields: object) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        _make_frame(event)
        for name, value in fields.items():
            setattr(event.signal_frame, name, value)

    return mutate


def _make_frame(event: telemetry_pb2.Event) -> None:
    frame = event.signal_frame
    frame.stream = "imu/accel"
    frame.sample_interval_ns = 5_000_000
    frame.sample_count = 4
    frame.encoding = telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE
    for name in "xyz":
        frame.channels.add(name=name)
    frame.samples = bytes(48)


def _channels(names: list[str], *, scale: float | None = None) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        _make_frame(event)
        del event.signal_frame.channels[:]
        for name in names:
            channel = event.signal_frame.channels.add(name=name)
            if scale is not None:
                channel.scale = scale
        event.signal_frame.samples = bytes(16 * len(names))

    return mutate


def _status(**fields: object) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        event.status.state = telemetry_pb2.DEVICE_STATE_ONLINE
        for name, value in fields.items():
            setattr(event.status, name, value)

    return mutate


def _alert(**fields: object) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        event.alert.code = "SENSOR_TIMEOUT"
        event.alert.severity = telemetry_pb2.SEVERITY_ERROR
        for name, value in fields.items():
            setattr(event.alert, name, value)

    return mutate


def _columns(
    names: list[str],
    indices: list[int],
    offsets: list[int],
    values: list[float],
    units: list[str] | None = None,
) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        columns = event.metric_columns
        columns.names.extend(names)
        columns.units.extend(units or [])
        columns.name_indices.extend(indices)
        columns.time_offsets_ns.extend(offsets)
        columns.values.extend(values)

    return mutate


def _time(seconds: int, nanos: int = 0) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        event.time.seconds = seconds
        event.time.nanos = nanos

    return mutate


def _many_metrics(count: int) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        for position in range(1, count):
            event.metrics.metrics.add(name=f"m{position}", double_value=1.0)

    return mutate


def _no_body(event: telemetry_pb2.Event) -> None:
    event.ClearField("metrics")


def _empty_metrics(event: telemetry_pb2.Event) -> None:
    del event.metrics.metrics[:]


def _uptime_only(uptime_ms: int) -> Mutation:
    def mutate(event: telemetry_pb2.Event) -> None:
        event.time_source = telemetry_pb2.TIME_SOURCE_UPTIME
        event.uptime_ms = uptime_ms

    return mutate


def _synced_without_time(event: telemetry_pb2.Event) -> None:
    event.ClearField("time")


def _duplicate_metric(event: telemetry_pb2.Event) -> None:
    event.metrics.metrics.add(name="temp", unit="degC", double_value=2.0)


def _wrong_device(event: telemetry_pb2.Event) -> None:
    event.device_id = "dev-02"


# Each case mutates the third event of a batch of three; the message must
# name that event (index 2), the field and the rule.
CASES: list[tuple[str, Mutation, str]] = [
    (
        "device_id-missing",
        _set(device_id=""),
        "events[2].device_id: missing; it must not be empty",
    ),
    (
        "device_id-too-long",
        _set(device_id="d" * 129),
        "events[2].device_id: length 129 exceeds the limit of 128 characters",
    ),
    (
        "device_id-character",
        _set(device_id="dev 01"),
        "events[2].device_id: 'dev 01' contains ' ' at position 3; use letters, "
        "digits and . _ : -",
    ),
    (
        "boot_id-missing",
        _set(boot_id=""),
        "events[2].boot_id: missing; it must not be empty",
    ),
    (
        "boot_id-character",
        _set(boot_id="boot/1"),
        "events[2].boot_id: 'boot/1' contains '/' at position 4; use letters, "
        "digits and . _ : -",
    ),
    (
        "sequence-over-int64",
        _set(sequence=INT64_OVER),
        f"events[2].sequence: {INT64_OVER} is out of range; the maximum is "
        f"{INT64_OVER - 1}",
    ),
    (
        "time_source-undeclared",
        _set(time_source=7),
        "events[2].time_source: 7 is not a declared TimeSource value; use "
        "TIME_SOURCE_SYNCED (1) or TIME_SOURCE_UPTIME (2)",
    ),
    (
        "time-missing-when-synced",
        _synced_without_time,
        "events[2].time: missing while time_source is TIME_SOURCE_SYNCED; set "
        "time, or send time_source TIME_SOURCE_UPTIME with uptime_ms",
    ),
    (
        "time-1970",
        _time(42),
        f"events[2].time: 1970-01-01T00:00:42Z {NOT_SYNCED}",
    ),
    (
        "time-nanos-negative",
        _time(1_714_564_800, -1),
        "events[2].time.nanos: -1 is out of range; use 0 to 999999999",
    ),
    (
        "uptime-before-2020",
        _uptime_only(10**15),
        "events[2].uptime_ms: 1000000000000000 ms would place the boot before "
        "2020-01-01T00:00:00Z; send the milliseconds since the last boot",
    ),
    (
        "body-missing",
        _no_body,
        "events[2]: body missing; set one of metrics, signal_frame, status, "
        "alert or metric_columns",
    ),
    (
        "metrics-empty",
        _empty_metrics,
        "events[2].metrics.metrics: empty; send at least one metric",
    ),
    (
        "metrics-too-many",
        _many_metrics(1025),
        "events[2].metrics.metrics: 1025 metrics exceed the limit of 1024 per "
        "event; split them over events",
    ),
    (
        "metric-name-missing",
        _metric(name=""),
        "events[2].metrics.metrics[0].name: missing; it must not be empty",
    ),
    (
        "metric-name-too-long",
        _metric(name="n" * 129),
        "events[2].metrics.metrics[0].name: length 129 exceeds the limit of 128 "
        "characters",
    ),
    (
        "metric-name-character",
        _metric(name="temp°"),
        "events[2].metrics.metrics[0].name: 'temp°' contains '°' at position 4; "
        "use letters, digits and . _ / -",
    ),
    (
        "metric-unit-too-long",
        _metric(unit="u" * 33),
        "events[2].metrics.metrics[0].unit: length 33 exceeds the limit of 32 "
        "characters",
    ),
    (
        "metric-unit-control",
        _metric(unit="deg\nC"),
        "events[2].metrics.metrics[0].unit: control character '\\n' at position "
        "3; send printable text",
    ),
    (
        "metric-string-too-long",
        _metric(string_value="s" * 1025),
        "events[2].metrics.metrics[0].string_value: length 1025 exceeds the limit "
        "of 1024 characters",
    ),
    (
        "metric-name-repeated",
        _duplicate_metric,
        "events[2].metrics.metrics[1].name: 'temp' repeats metrics[0]; send "
        "each name once",
    ),
    (
        "frame-stream-missing",
        _frame(stream=""),
        "events[2].signal_frame.stream: missing; it must not be empty",
    ),
    (
        "frame-interval-zero",
        _frame(sample_interval_ns=0),
        "events[2].signal_frame.sample_interval_ns: must be greater than 0; set "
        "the ns between two samples of one channel",
    ),
    (
        "frame-interval-over-int64",
        _frame(sample_interval_ns=INT64_OVER),
        f"events[2].signal_frame.sample_interval_ns: {INT64_OVER} is out of "
        f"range; the maximum is {INT64_OVER - 1}",
    ),
    (
        "frame-count-zero",
        _frame(sample_count=0),
        "events[2].signal_frame.sample_count: must be greater than 0; set the "
        "number of samples per channel",
    ),
    (
        "frame-span-too-long",
        _frame(sample_interval_ns=10**18),
        "events[2].signal_frame.sample_interval_ns: 4 samples every "
        "1000000000000000000 ns span 3000000000000000000 ns, over the limit of "
        "1576800000000000000 ns",
    ),
    (
        "frame-encoding-missing",
        _frame(encoding=0),
        f"events[2].signal_frame.encoding: missing; set {CHOICES_ENCODING}",
    ),
    (
        "frame-encoding-undeclared",
        _frame(encoding=9),
        "events[2].signal_frame.encoding: 9 is not a declared SampleEncoding "
        f"value; use {CHOICES_ENCODING}",
    ),
    (
        "frame-layout-undeclared",
        _frame(layout=5),
        "events[2].signal_frame.layout: 5 is not a declared SampleLayout value; "
        "use SAMPLE_LAYOUT_INTERLEAVED (1) or SAMPLE_LAYOUT_PLANAR (2)",
    ),
    (
        "frame-channels-empty",
        _channels([]),
        "events[2].signal_frame.channels: empty; describe at least one channel",
    ),
    (
        "frame-channels-too-many",
        _channels([f"c{i}" for i in range(65)]),
        "events[2].signal_frame.channels: 65 channels exceed the limit of 64; "
        "split them over several streams",
    ),
    (
        "frame-channel-name-missing",
        _channels(["x", ""]),
        "events[2].signal_frame.channels[1].name: missing; it must not be empty",
    ),
    (
        "frame-channel-name-repeated",
        _channels(["x", "y", "x"]),
        "events[2].signal_frame.channels[2].name: 'x' repeats channels[0]; send "
        "each name once",
    ),
    (
        "frame-channel-scale-nan",
        _channels(["x"], scale=float("nan")),
        "events[2].signal_frame.channels[0].scale: nan is not a finite number; "
        "send a finite scale or leave it unset",
    ),
    (
        "frame-samples-length",
        _frame(samples=bytes(47)),
        "events[2].signal_frame.samples: length 47 does not match sample_count "
        "4 x 3 channels x 4 bytes = 48",
    ),
    (
        "status-state-undeclared",
        _status(state=9),
        "events[2].status.state: 9 is not a declared DeviceState value; use "
        "DEVICE_STATE_ONLINE (1), DEVICE_STATE_DEGRADED (2) or "
        "DEVICE_STATE_OFFLINE (3)",
    ),
    (
        "status-reset-reason-too-long",
        _status(reset_reason="r" * 129),
        "events[2].status.reset_reason: length 129 exceeds the limit of 128 characters",
    ),
    (
        "status-message-too-long",
        _status(message="m" * 1025),
        "events[2].status.message: length 1025 exceeds the limit of 1024 characters",
    ),
    (
        "alert-code-missing",
        _alert(code=""),
        "events[2].alert.code: missing; it must not be empty",
    ),
    (
        "alert-severity-missing",
        _alert(severity=0),
        f"events[2].alert.severity: missing; set {CHOICES_SEVERITY}",
    ),
    (
        "alert-severity-undeclared",
        _alert(severity=9),
        "events[2].alert.severity: 9 is not a declared Severity value; use "
        f"{CHOICES_SEVERITY}",
    ),
    (
        "alert-message-too-long",
        _alert(message="m" * 1025),
        "events[2].alert.message: length 1025 exceeds the limit of 1024 characters",
    ),
    (
        "columns-names-empty",
        _columns([], [0], [0], [1.0]),
        "events[2].metric_columns.names: empty; send the name of every metric",
    ),
    (
        "columns-names-too-many",
        _columns([f"n{i}" for i in range(4097)], [0], [0], [1.0]),
        "events[2].metric_columns.names: 4097 names exceed the limit of 4096; "
        "split them over events",
    ),
    (
        "columns-name-repeated",
        _columns(["a", "a"], [0], [0], [1.0]),
        "events[2].metric_columns.names[1]: 'a' repeats names[0]; send each name once",
    ),
    (
        "columns-units-length",
        _columns(["a", "b"], [0], [0], [1.0], units=["V"]),
        "events[2].metric_columns.units: 1 units for 2 names; send no units or "
        "one per name",
    ),
    (
        "columns-no-points",
        _columns(["a"], [], [], []),
        "events[2].metric_columns.name_indices: empty; send at least one point",
    ),
    (
        "columns-offsets-length",
        _columns(["a"], [0, 0, 0], [0, 1], [1.0, 2.0, 3.0]),
        "events[2].metric_columns.time_offsets_ns: length 2 does not match "
        "name_indices length 3; send one entry per point in every column",
    ),
    (
        "columns-values-length",
        _columns(["a"], [0, 0], [0, 1], [1.0]),
        "events[2].metric_columns.values: length 1 does not match name_indices "
        "length 2; send one entry per point in every column",
    ),
    (
        "columns-index-out-of-range",
        _columns(["a", "b"], [0, 1, 5], [0, 1, 2], [1.0, 2.0, 3.0]),
        "events[2].metric_columns.name_indices[2]: 5 is out of range for 2 names",
    ),
    (
        "columns-offset-too-far",
        _columns(["a"], [0, 0], [0, 2 * 10**18], [1.0, 2.0]),
        "events[2].metric_columns.time_offsets_ns[1]: 2000000000000000000 ns is "
        "beyond the limit of 1576800000000000000 ns either way",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [pytest.param(mutate, message, id=case) for case, mutate, message in CASES],
)
async def test_ingest_rejects_invalid_event(
    server: RunningServer, ingest, device, events, mutate: Mutation, message: str
) -> None:
    bad = events.metrics(3)
    mutate(bad)
    request = ingest_service_pb2.IngestEventsRequest(
        events=[events.metrics(1), events.frame(2), bad]
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(request, metadata=device.metadata)

    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message
    _assert_details(error, message.split(":", 1)[0])
    assert await _stored_streams(server) == []


async def test_ingest_rejects_time_before_2020_in_columns(
    server: RunningServer, ingest, device, events
) -> None:
    bad = events.columns(1)
    bad.metric_columns.time_offsets_ns[2] = -(10**18)
    point_ns = events.time_ns + 1_000_000 - 10**18
    request = ingest_service_pb2.IngestEventsRequest(events=[bad])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(request, metadata=device.metadata)

    expected_time = _format_ns(point_ns)
    assert raised.value.details() == (
        f"events[0].metric_columns.time_offsets_ns[2]: {expected_time} {NOT_SYNCED}"
    )


async def test_ingest_rejects_time_in_future(ingest, device, events) -> None:
    bad = events.metrics(1)
    bad.time.FromNanoseconds(events.time_ns + 3_600 * 1_000_000_000)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(events=[bad]),
            metadata=device.metadata,
        )

    details = raised.value.details()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"events[0].time: {_format_ns(bad.time.ToNanoseconds())}")
    assert "is more than 300 s ahead of the server clock" in details
    assert details.endswith(
        "; sync the device clock or send time_source TIME_SOURCE_UPTIME with uptime_ms"
    )


async def test_ingest_rejects_other_device(server, ingest, device, events) -> None:
    bad = events.metrics(2)
    bad.device_id = "dev-02"
    request = ingest_service_pb2.IngestEventsRequest(events=[events.metrics(1), bad])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(request, metadata=device.metadata)

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == (
        "events[1].device_id: 'dev-02' is not the authenticated device 'dev-01'; "
        "a device token may only send its own device id"
    )
    assert await _stored_streams(server) == []


async def test_ingest_rejects_empty_batch(ingest, device) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(), metadata=device.metadata
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "events: the batch is empty; send at least one event"
    )


async def test_ingest_rejects_type_change_in_batch(server, ingest, device, events):
    second = events.metrics(2)
    second.metrics.metrics[0].ClearField("double_value")
    second.metrics.metrics[0].string_value = "warm"
    request = ingest_service_pb2.IngestEventsRequest(events=[events.metrics(1), second])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(request, metadata=device.metadata)

    assert raised.value.details() == (
        "events[1].metrics.metrics[0]: metric 'temp' is string here but double "
        "in events[0]; send one value type per metric"
    )
    assert await _stored_streams(server) == []


async def test_ingest_rejects_unit_change_in_batch(server, ingest, device, events):
    second = events.metrics(2)
    second.metrics.metrics[0].unit = "K"
    request = ingest_service_pb2.IngestEventsRequest(events=[events.metrics(1), second])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(request, metadata=device.metadata)

    assert raised.value.details() == (
        "events[1].metrics.metrics[0]: metric 'temp' has unit 'K' here but "
        "'degC' in events[0]; send one unit per metric"
    )


async def test_ingest_rejects_stored_type_conflict(server, ingest, device, events):
    first = events.metrics(1)
    first.metrics.metrics[0].ClearField("double_value")
    first.metrics.metrics[0].string_value = "warm"
    await ingest.IngestEvents(
        ingest_service_pb2.IngestEventsRequest(events=[first]), metadata=device.metadata
    )
    request = ingest_service_pb2.IngestEventsRequest(
        events=[events.alert(2), events.metrics(3)]
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(request, metadata=device.metadata)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "events[1]: metric 'temp' is stored as string, but this event sends "
        "double; send string values or use a new metric name"
    )
    info = _error_info(raised.value)
    assert info.reason == "SERIES_TYPE_CONFLICT"
    assert info.metadata["event_index"] == "1"
    row = await _device_row(server)
    assert row.event_count == 1


async def test_ingest_limits_events_per_batch(tmp_path, events) -> None:
    async with (
        running_server(tmp_path, max_events_per_batch=3) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        request = ingest_service_pb2.IngestEventsRequest(
            events=[events.metrics(i) for i in range(4)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.IngestEvents(request, metadata=bearer(running.admin_token))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "events: 4 events exceed the limit of 3 per batch "
        "(AETUS_MAX_EVENTS_PER_BATCH); split the batch"
    )
    assert _error_info(raised.value).reason == "TOO_MANY_EVENTS"


def _assert_details(error: grpc.aio.AioRpcError, field: str) -> None:
    info = _error_info(error)
    assert info.reason in ("INVALID_EVENT", "SERIES_TYPE_CONFLICT")
    assert info.domain == "aetus.dev"
    assert info.metadata["event_index"] == "2"
    assert info.metadata["field"] == field
    status = rpc_status.from_call(error)
    assert status is not None
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
    assert [violation.field for violation in violations] == [field]


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


async def _stored_streams(server: RunningServer) -> list[str]:
    streams = await asyncio.to_thread(server.store.list_streams, "dev-01")
    return [stream.name for stream in streams]


async def _device_row(server: RunningServer) -> DeviceRow:
    row = await asyncio.to_thread(server.store.get_device, "dev-01")
    assert row is not None
    return row


def _format_ns(time_ns: int) -> str:
    return format_time_ns(time_ns)
