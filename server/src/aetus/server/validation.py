"""Validation of ingest events: every rule a batch must pass before it is stored.

One failing event rejects the whole batch. The error names the event index, the
field path and the rule, for example ``events[3].signal_frame.samples: length 47
does not match sample_count 4 x 3 channels x 4 bytes = 48``.
"""

from __future__ import annotations

import grpc

from aetus.server.body_checks import BODY_CHECKS
from aetus.server.checks import (
    NS_PER_MS,
    NS_PER_S,
    VALID_AFTER_NS,
    CheckContext,
    check_enum,
    check_identifier,
    check_int64,
    check_plausible_time,
    event_error,
    event_time_ns,
    resolve_time_source,
)
from aetus.telemetry.v1 import telemetry_pb2


def validate_event(event: telemetry_pb2.Event, index: int, ctx: CheckContext) -> int:
    """Check one event against every rule and return its resolved time source.

    Raises:
        ApiError: INVALID_ARGUMENT naming the field and the rule, or
            PERMISSION_DENIED when the event belongs to another device.
    """
    limits = ctx.limits
    check_identifier(index, "device_id", event.device_id, limits.max_id_length)
    if ctx.device_id is not None and event.device_id != ctx.device_id:
        raise event_error(
            index,
            "device_id",
            f"{event.device_id!r} is not the authenticated device "
            f"{ctx.device_id!r}; a device token may only send its own device id",
            code=grpc.StatusCode.PERMISSION_DENIED,
            reason="DEVICE_MISMATCH",
            device_id=event.device_id,
            authenticated_device_id=ctx.device_id,
        )
    check_identifier(index, "boot_id", event.boot_id, limits.max_id_length)
    check_int64(index, "sequence", event.sequence)
    check_enum(
        index,
        "time_source",
        event.time_source,
        telemetry_pb2.TimeSource.DESCRIPTOR,
        required=False,
    )

    time_source = resolve_time_source(event)
    if time_source == telemetry_pb2.TIME_SOURCE_SYNCED:
        _check_synced_time(event, index, ctx)
    else:
        _check_uptime(event, index, ctx)

    body = event.WhichOneof("body")
    if body is None:
        raise event_error(
            index,
            "",
            "body missing; set one of metrics, signal_frame, status, alert "
            "or metric_columns",
        )
    BODY_CHECKS[body](event, index, ctx)
    return time_source


def _check_synced_time(
    event: telemetry_pb2.Event, index: int, ctx: CheckContext
) -> None:
    if not event.HasField("time"):
        raise event_error(
            index,
            "time",
            "missing while time_source is TIME_SOURCE_SYNCED; set time, or send "
            "time_source TIME_SOURCE_UPTIME with uptime_ms",
        )
    if not 0 <= event.time.nanos < NS_PER_S:
        raise event_error(
            index,
            "time.nanos",
            f"{event.time.nanos} is out of range; use 0 to 999999999",
            value=event.time.nanos,
        )
    check_plausible_time(index, "time", event_time_ns(event), ctx)


def _check_uptime(event: telemetry_pb2.Event, index: int, ctx: CheckContext) -> None:
    # The server places the boot at arrival time minus uptime, so an uptime
    # longer than the time since 2020 would put the event before 2020.
    max_uptime_ms = (ctx.now_ns - VALID_AFTER_NS) // NS_PER_MS
    if event.uptime_ms > max_uptime_ms:
        raise event_error(
            index,
            "uptime_ms",
            f"{event.uptime_ms} ms would place the boot before "
            "2020-01-01T00:00:00Z; send the milliseconds since the last boot",
            value=event.uptime_ms,
            limit=max_uptime_ms,
        )
