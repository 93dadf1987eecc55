"""Event builders: metric types, status, alerts, metric columns, identity."""

import datetime as dt

import numpy as np
import pytest

from aetus.sdk import (
    DeviceIdentity,
    build_alert,
    build_metric_columns,
    build_metrics,
    build_status,
    metric,
)
from aetus.telemetry.v1 import telemetry_pb2

START = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
START_NS = 1_714_564_800_000_000_000


@pytest.mark.parametrize(
    ("value", "field", "stored"),
    [
        (21.5, "double_value", 21.5),
        (np.float32(0.5), "double_value", 0.5),
        (-3, "int_value", -3),
        (np.uint32(4_294_967_295), "int_value", 4_294_967_295),
        (2**63 - 1, "int_value", 2**63 - 1),
        (True, "bool_value", True),
        (np.bool_(False), "bool_value", False),
        ("warming", "string_value", "warming"),
    ],
    ids=[
        "float",
        "np-float32",
        "int",
        "np-uint32-max",
        "int64-max",
        "bool",
        "np-bool",
        "str",
    ],
)
def test_metric_value_field_follows_type(
    value: object, field: str, stored: object
) -> None:
    result = metric("m", value, "unit")  # type: ignore[arg-type]  # table of types

    assert result.WhichOneof("value") == field
    assert getattr(result, field) == stored
    assert result.unit == "unit"


@pytest.mark.parametrize("value", [2**63, np.uint64(2**64 - 1), -(2**63) - 1])
def test_metric_int_outside_int64_rejected(value: int) -> None:
    with pytest.raises(ValueError, match="outside the int64 range"):
        metric("counter", value)


def test_metric_none_is_missing_reading() -> None:
    result = metric("env/temp", None, "degC")

    assert result.WhichOneof("value") is None
    assert result.name == "env/temp"
    assert result.unit == "degC"


def test_metrics_event_keeps_missing_reading() -> None:
    event = build_metrics(DeviceIdentity("d"), {"a": 1.5, "b": None}, time=START)

    first, second = event.metrics.metrics
    assert first.WhichOneof("value") == "double_value"
    assert second.name == "b"
    assert second.WhichOneof("value") is None


@pytest.mark.parametrize("value", [b"raw", [1.0], 1 + 2j])
def test_metric_unsupported_type_rejected(value: object) -> None:
    with pytest.raises(TypeError, match="use float, int, bool, str or None"):
        metric("m", value)  # type: ignore[arg-type]  # deliberately wrong


def test_metrics_event_identity_and_time() -> None:
    identity = DeviceIdentity("dev-01", firmware_version=(1 << 24) | (2 << 16) | 3)

    first = build_metrics(identity, {"t": 21.5}, units={"t": "degC"}, time=START)
    second = build_metrics(identity, [metric("n", 1)], time=START_NS + 5)

    assert first.device_id == second.device_id == "dev-01"
    assert first.boot_id == second.boot_id == identity.boot_id
    assert (first.sequence, second.sequence) == (0, 1)
    assert first.firmware_version == 16_908_291
    assert first.time.ToNanoseconds() == START_NS
    assert second.time.ToNanoseconds() == START_NS + 5
    assert first.time_source == telemetry_pb2.TIME_SOURCE_SYNCED
    assert first.metrics.metrics[0].unit == "degC"


def test_metrics_event_uptime_only() -> None:
    event = build_metrics(DeviceIdentity("d"), {"t": 1.0}, uptime_ms=42_000)

    assert event.time_source == telemetry_pb2.TIME_SOURCE_UPTIME
    assert not event.HasField("time")
    assert event.uptime_ms == 42_000


def test_metrics_event_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        build_metrics(DeviceIdentity("d"), {"t": 1.0}, time=dt.datetime(2024, 5, 1))


def test_metrics_event_float_time_rejected() -> None:
    with pytest.raises(TypeError, match="has type float"):
        build_metrics(DeviceIdentity("d"), {"t": 1.0}, time=1.7e9)  # type: ignore[arg-type]  # deliberately wrong


def test_metrics_event_empty_rejected() -> None:
    with pytest.raises(ValueError, match="no metrics given"):
        build_metrics(DeviceIdentity("d"), {})


def test_status_and_alert_events() -> None:
    identity = DeviceIdentity("d")

    status = build_status(
        identity,
        state="degraded",
        rssi_dbm=-58,
        free_heap_bytes=123_456,
        reset_reason="power_on",
    )
    alert = build_alert(identity, "SENSOR_TIMEOUT", severity="critical", message="x")

    assert status.status.state == telemetry_pb2.DEVICE_STATE_DEGRADED
    assert status.status.rssi_dbm == -58
    assert status.status.free_heap_bytes == 123_456
    assert alert.alert.severity == telemetry_pb2.SEVERITY_CRITICAL
    assert alert.alert.code == "SENSOR_TIMEOUT"
    assert (status.sequence, alert.sequence) == (0, 1)


def test_status_and_alert_bad_values_rejected() -> None:
    identity = DeviceIdentity("d")

    with pytest.raises(ValueError, match="state='asleep' is not valid"):
        build_status(identity, state="asleep")
    with pytest.raises(ValueError, match="severity='fatal' is not valid"):
        build_alert(identity, "X", severity="fatal")
    with pytest.raises(ValueError, match="alert code is empty"):
        build_alert(identity, "")
    assert identity.next_sequence == 0


def test_metric_columns_pack_table() -> None:
    times = np.array(["2024-05-01T12:00:00", "2024-05-01T12:00:01"], "datetime64[ns]")

    (event,) = build_metric_columns(
        DeviceIdentity("d"),
        times,
        {"a": np.array([1, 2], np.uint32), "b": np.array([np.nan, 0.5])},
        units={"b": "V"},
    )

    body = event.metric_columns
    assert list(body.names) == ["a", "b"]
    assert list(body.units) == ["", "V"]
    assert list(body.name_indices) == [0, 0, 1, 1]
    assert list(body.time_offsets_ns) == [0, 1_000_000_000, 0, 1_000_000_000]
    assert body.values[:2] == [1.0, 2.0]
    assert np.isnan(body.values[2])
    assert event.time.ToNanoseconds() == START_NS


def test_metric_columns_split_to_fit() -> None:
    identity = DeviceIdentity("d")
    times = START_NS + np.arange(2_000, dtype=np.int64) * 1_000_000

    events = build_metric_columns(
        identity, times, {"a": np.arange(2_000.0)}, max_message_bytes=4_096
    )

    assert len(events) > 1
    assert all(event.ByteSize() <= 4_096 for event in events)
    assert [event.sequence for event in events] == list(range(len(events)))
    rebuilt = [
        event.time.ToNanoseconds() + offset
        for event in events
        for offset in event.metric_columns.time_offsets_ns
    ]
    assert rebuilt == times.tolist()


@pytest.mark.parametrize(
    ("times", "values", "match"),
    [
        (np.arange(3), {"a": np.zeros(2)}, "shape"),
        (np.arange(3), {"a": np.array(["x", "y", "z"])}, "dtype <U1"),
        (np.arange(3), {}, "empty"),
        (np.arange(3.0), {"a": np.zeros(3)}, "dtype float64"),
        (
            np.arange(3),
            {"a": np.ma.MaskedArray([1.0, 2.0, 3.0], mask=[False, True, False])},
            "column 'a' has masked entries",
        ),
    ],
    ids=["length", "strings", "no-columns", "float-times", "masked"],
)
def test_metric_columns_bad_input_rejected(
    times: np.ndarray, values: dict[str, np.ndarray], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        build_metric_columns(DeviceIdentity("d"), times, values)


def test_identity_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="device_id is empty"):
        DeviceIdentity("")
    with pytest.raises(ValueError, match="boot_id is empty"):
        DeviceIdentity("d", boot_id="")
    with pytest.raises(ValueError, match="negative"):
        DeviceIdentity("d", first_sequence=-1)


def test_identity_boot_ids_are_fresh() -> None:
    first = DeviceIdentity("d")
    second = DeviceIdentity("d")
    resumed = DeviceIdentity("d", boot_id="boot-7", first_sequence=100)

    assert first.boot_id != second.boot_id
    assert first.boot_id.startswith("py-")
    assert len(first.boot_id) <= 31
    assert resumed.take_sequences(50) == ("boot-7", 100)
    assert resumed.next_sequence == 150
