"""Builders of metric, status, alert and metric-column events."""

from __future__ import annotations

import time as _time
from collections.abc import Iterable, Mapping
from typing import TypeAlias, TypeVar

import numpy as np

from aetus.sdk._config import ClientSettings, max_event_bytes
from aetus.sdk._identity import DeviceIdentity
from aetus.sdk._times import TimeLike, times_to_ns, timestamp_from_ns, to_time_ns
from aetus.telemetry.v1 import telemetry_pb2

E = TypeVar("E", telemetry_pb2.DeviceState, telemetry_pb2.Severity)

# None is a missing reading, such as a failed sensor read.
MetricValue: TypeAlias = float | int | bool | str | np.generic | None

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_STATES: dict[str, telemetry_pb2.DeviceState] = {
    "online": telemetry_pb2.DEVICE_STATE_ONLINE,
    "degraded": telemetry_pb2.DEVICE_STATE_DEGRADED,
    "offline": telemetry_pb2.DEVICE_STATE_OFFLINE,
}
_SEVERITIES: dict[str, telemetry_pb2.Severity] = {
    "info": telemetry_pb2.SEVERITY_INFO,
    "warning": telemetry_pb2.SEVERITY_WARNING,
    "error": telemetry_pb2.SEVERITY_ERROR,
    "critical": telemetry_pb2.SEVERITY_CRITICAL,
}

# Upper bound of one packed point in MetricColumns: a uint32 name index
# (5 bytes), a sint64 time offset (10 bytes) and a double (8 bytes).
_COLUMN_POINT_BYTES = 23
# Room for the varint growth of fields that differ between split events.
_SPLIT_MARGIN_BYTES = 64


def new_event(
    identity: DeviceIdentity,
    *,
    time: TimeLike | None = None,
    uptime_ms: int | None = None,
    sequence_count: int = 1,
) -> list[telemetry_pb2.Event]:
    """Build ``sequence_count`` events with consecutive sequences and no body.

    With neither ``time`` nor ``uptime_ms``, the time is now from the local
    clock and marked synchronised. With only ``uptime_ms``, the event is
    marked TIME_SOURCE_UPTIME and the server derives its time.
    """
    boot_id, first = identity.take_sequences(sequence_count)
    template = telemetry_pb2.Event(
        device_id=identity.device_id,
        boot_id=boot_id,
        firmware_version=identity.firmware_version,
    )
    if uptime_ms is not None:
        template.uptime_ms = uptime_ms
    if time is not None or uptime_ms is None:
        time_ns = _time.time_ns() if time is None else to_time_ns(time)
        template.time.CopyFrom(timestamp_from_ns(time_ns))
        template.time_source = telemetry_pb2.TIME_SOURCE_SYNCED
    else:
        template.time_source = telemetry_pb2.TIME_SOURCE_UPTIME
    events = []
    for offset in range(sequence_count):
        event = telemetry_pb2.Event()
        event.CopyFrom(template)
        event.sequence = first + offset
        events.append(event)
    return events


def metric(name: str, value: MetricValue, unit: str = "") -> telemetry_pb2.Metric:
    """Build one metric, choosing the value field from the Python type.

    bool goes to ``bool_value`` (checked before int, since bool is an int),
    int to ``int_value``, float to ``double_value``, str to ``string_value``;
    numpy scalars follow the same rules. None leaves the value unset, which
    the server stores as a missing reading, distinct from 0 and NaN.

    Raises:
        ValueError: The name is empty, or an integer is outside int64.
        TypeError: The value has another type.
    """
    if not name:
        raise ValueError("metric name is empty; pass a name such as 'env/temperature'")
    result = telemetry_pb2.Metric(name=name, unit=unit)
    if value is None:
        return result
    if isinstance(value, bool | np.bool_):
        result.bool_value = bool(value)
    elif isinstance(value, int | np.integer):
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise ValueError(
                f"metric {name!r} value {number} is outside the int64 range; "
                "send it as a float"
            )
        result.int_value = number
    elif isinstance(value, float | np.floating):
        result.double_value = float(value)
    elif isinstance(value, str):
        result.string_value = value
    else:
        raise TypeError(
            f"metric {name!r} value {value!r} has type {type(value).__name__}; "
            "use float, int, bool, str or None"
        )
    return result


def build_metrics(
    identity: DeviceIdentity,
    values: Mapping[str, MetricValue] | Iterable[telemetry_pb2.Metric],
    *,
    units: Mapping[str, str] | None = None,
    time: TimeLike | None = None,
    uptime_ms: int | None = None,
) -> telemetry_pb2.Event:
    """Build a metric-set event: named readings that share one time.

    Args:
        identity: Numbers the event.
        values: Readings by name, or Metric messages built with ``metric()``.
            A reading of None is sent as a missing reading.
        units: Unit per name, for readings given by name.
        time: Time of the readings. Default: now.
        uptime_ms: Milliseconds since boot. Alone, it marks the time as
            uptime-only.

    Returns:
        The event.

    Raises:
        ValueError: No readings, or an invalid one.
        TypeError: A reading of an unsupported type.
    """
    if isinstance(values, Mapping):
        unit_by_name = units or {}
        metrics = [
            metric(name, value, unit_by_name.get(name, ""))
            for name, value in values.items()
        ]
    else:
        metrics = list(values)
    if not metrics:
        raise ValueError("no metrics given; pass at least one reading")
    (event,) = new_event(identity, time=time, uptime_ms=uptime_ms)
    event.metrics.metrics.extend(metrics)
    return event


def build_status(
    identity: DeviceIdentity,
    *,
    state: str = "online",
    rssi_dbm: int = 0,
    free_heap_bytes: int = 0,
    reset_reason: str = "",
    message: str = "",
    time: TimeLike | None = None,
    uptime_ms: int | None = None,
) -> telemetry_pb2.Event:
    """Build a status event.

    Args:
        identity: Numbers the event.
        state: ``online``, ``degraded`` or ``offline``.
        rssi_dbm: Received signal strength in dBm.
        free_heap_bytes: Free heap in bytes.
        reset_reason: Reason for the last reset, such as ``power_on``.
        message: Free-form detail.
        time: Time of the record. Default: now.
        uptime_ms: Milliseconds since boot.

    Raises:
        ValueError: An unknown state.
    """
    status = telemetry_pb2.StatusEvent(
        state=_lookup("state", state, _STATES),
        rssi_dbm=rssi_dbm,
        free_heap_bytes=free_heap_bytes,
        reset_reason=reset_reason,
        message=message,
    )
    (event,) = new_event(identity, time=time, uptime_ms=uptime_ms)
    event.status.CopyFrom(status)
    return event


def build_alert(
    identity: DeviceIdentity,
    code: str,
    *,
    severity: str = "warning",
    message: str = "",
    time: TimeLike | None = None,
    uptime_ms: int | None = None,
) -> telemetry_pb2.Event:
    """Build an alert event.

    Args:
        identity: Numbers the event.
        code: Machine-readable code, such as ``SENSOR_TIMEOUT``.
        severity: ``info``, ``warning``, ``error`` or ``critical``.
        message: Human-readable detail.
        time: Time of the alert. Default: now.
        uptime_ms: Milliseconds since boot.

    Raises:
        ValueError: An empty code or an unknown severity.
    """
    if not code:
        raise ValueError("alert code is empty; pass a code such as 'SENSOR_TIMEOUT'")
    alert = telemetry_pb2.AlertEvent(
        code=code, severity=_lookup("severity", severity, _SEVERITIES), message=message
    )
    (event,) = new_event(identity, time=time, uptime_ms=uptime_ms)
    event.alert.CopyFrom(alert)
    return event


def build_metric_columns(
    identity: DeviceIdentity,
    times: object,
    values: Mapping[str, object],
    *,
    units: Mapping[str, str] | None = None,
    max_message_bytes: int | None = None,
) -> list[telemetry_pb2.Event]:
    """Build metric-column events from a table of readings.

    Every column of ``values`` has one value per entry of ``times``. The
    points are packed without a Python object per point. When they do not
    fit in one message they are split over several events, each with its own
    sequence.

    Args:
        identity: Numbers the events.
        times: 1-D datetime64 array, or int64 nanoseconds since the epoch.
        values: Column of numbers per metric name; integers and booleans are
            sent as doubles. NaN values are sent as NaN. Columns carry no
            missing readings, so a masked array with masked entries is
            rejected; send those readings as None through ``build_metrics``.
        units: Unit per metric name.
        max_message_bytes: Message limit the events must fit. Default: the
            client setting (AETUS_MAX_MESSAGE_BYTES).

    Returns:
        One or more events, in time order within each metric.

    Raises:
        ValueError: Columns of the wrong length or type, or no columns.
    """
    time_ns = times_to_ns(times)
    names = list(values)
    if not names or time_ns.size == 0:
        raise ValueError("metric columns are empty; pass at least one column and time")
    columns = [_column(name, values[name], time_ns.size) for name in names]
    unit_by_name = units or {}

    point_names = np.repeat(np.arange(len(names), dtype=np.uint32), time_ns.size)
    point_times = np.tile(time_ns, len(names))
    point_values = np.concatenate(columns)

    header = telemetry_pb2.MetricColumns(
        names=names, units=[unit_by_name.get(name, "") for name in names]
    )
    limit = _event_limit(max_message_bytes)
    room = limit - _probe_size(identity, header) - _SPLIT_MARGIN_BYTES
    per_event = room // _COLUMN_POINT_BYTES
    if per_event < 1:
        raise ValueError(
            f"metric column names take {limit - room} bytes, over the message limit "
            f"of {limit} bytes; send fewer columns per call"
        )
    chunks = range(0, point_values.size, per_event)
    events = new_event(identity, time=0, sequence_count=len(chunks))
    for event, start in zip(events, chunks, strict=True):
        stop = start + per_event
        base_ns = int(point_times[start:stop].min())
        event.time.CopyFrom(timestamp_from_ns(base_ns))
        body = event.metric_columns
        body.CopyFrom(header)
        body.name_indices.extend(point_names[start:stop].tolist())
        body.time_offsets_ns.extend((point_times[start:stop] - base_ns).tolist())
        body.values.extend(point_values[start:stop].tolist())
    return events


def _column(name: str, raw: object, length: int) -> np.ndarray:
    if np.ma.is_masked(raw):
        raise ValueError(
            f"column {name!r} has masked entries, and metric columns cannot carry "
            "missing readings; send them as None through build_metrics, or fill "
            "them with NaN"
        )
    array = np.asarray(raw)
    if array.shape != (length,):
        raise ValueError(
            f"column {name!r} has shape {array.shape}; it needs one value per "
            f"time, shape ({length},)"
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"column {name!r} has dtype {array.dtype}; pass numbers or booleans "
            "(string markers go in build_metrics)"
        )
    return array.astype(np.float64)


def _event_limit(max_message_bytes: int | None) -> int:
    if max_message_bytes is None:
        max_message_bytes = ClientSettings.load().max_message_bytes
    return max_event_bytes(max_message_bytes)


def _probe_size(identity: DeviceIdentity, header: telemetry_pb2.MetricColumns) -> int:
    probe = telemetry_pb2.Event(
        device_id=identity.device_id,
        boot_id=identity.boot_id,
        sequence=2**64 - 1,
        firmware_version=identity.firmware_version,
        time_source=telemetry_pb2.TIME_SOURCE_SYNCED,
    )
    probe.time.FromNanoseconds(0)
    probe.metric_columns.CopyFrom(header)
    return int(probe.ByteSize())


def _lookup(kind: str, value: str, table: Mapping[str, E]) -> E:
    try:
        return table[value]
    except KeyError:
        raise ValueError(
            f"{kind}={value!r} is not valid; use one of {sorted(table)}"
        ) from None
