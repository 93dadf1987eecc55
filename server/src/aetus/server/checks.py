"""Building blocks of ingest validation: limits, field checks and their errors.

Each check raises an ``ApiError`` whose message starts with the field path
(``events[3].signal_frame.samples``), states the rule and the offending value,
and gives the fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from google.protobuf.descriptor import EnumDescriptor

from aetus.server.errors import ApiError
from aetus.telemetry.v1 import telemetry_pb2

INT64_MAX = 2**63 - 1
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
# Times before this instant come from a clock that was never synchronised.
VALID_AFTER_NS = 1_577_836_800 * NS_PER_S  # 2020-01-01T00:00:00Z
# Bound on MetricColumns.time_offsets_ns (about 50 years either way), so that
# event time plus offset always fits in int64.
MAX_TIME_OFFSET_NS = 50 * 365 * 86_400 * NS_PER_S

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]+")
ID_CHARACTERS = "letters, digits and . _ : -"
NAME_PATTERN = re.compile(r"[A-Za-z0-9._/-]+")
NAME_CHARACTERS = "letters, digits and . _ / -"
TEXT_PATTERN = re.compile(r"[^\x00-\x1f\x7f]*")

SAMPLE_BYTES = {
    telemetry_pb2.SAMPLE_ENCODING_FLOAT32_LE: 4,
    telemetry_pb2.SAMPLE_ENCODING_INT16_LE: 2,
    telemetry_pb2.SAMPLE_ENCODING_UINT16_LE: 2,
    telemetry_pb2.SAMPLE_ENCODING_INT32_LE: 4,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits on ingest input, in characters or items unless stated.

    Attributes:
        max_events_per_batch: Maximum events in one request or stream batch.
        max_future_time_s: Maximum time, in seconds, by which a synchronised
            event time may lie ahead of the server clock.
    """

    max_events_per_batch: int = 50_000
    max_future_time_s: int = 300
    max_id_length: int = 128
    max_name_length: int = 128
    max_unit_length: int = 32
    max_string_value_length: int = 1024
    max_text_length: int = 1024
    max_metrics_per_event: int = 1024
    max_column_names: int = 4096
    max_channels: int = 64


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Reference values for the checks of one request.

    Attributes:
        limits: Size limits.
        now_ns: Server time when the request arrived, in ns since the epoch.
        device_id: Device the credential belongs to, or None for the admin
            credential, which may send for any device.
        checked_metrics: (name, unit) pairs of metrics that already passed
            their name and unit checks in this request. A device repeats the
            same few names in every event, so each pair is checked once.
    """

    limits: Limits
    now_ns: int
    device_id: str | None
    checked_metrics: set[tuple[str, str]] = field(default_factory=set)


def event_error(
    index: int,
    path: str,
    rule: str,
    *,
    code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
    reason: str = "INVALID_EVENT",
    **values: object,
) -> ApiError:
    """Build the error for ``events[index].path`` breaking ``rule``.

    Args:
        index: Position of the event in the request.
        path: Field path inside the event; empty when the event as a whole is
            at fault.
        rule: What is wrong and how to fix it, without the field path.
        code: Canonical status code.
        reason: ErrorInfo reason.
        **values: The offending values, added to the ErrorInfo metadata.
    """
    field = f"events[{index}].{path}" if path else f"events[{index}]"
    metadata = {"event_index": str(index), "field": field}
    metadata.update({key: str(value) for key, value in values.items()})
    return ApiError(code, f"{field}: {rule}", reason, metadata, field)


def batch_error(rule: str, *, reason: str, **values: object) -> ApiError:
    """Build the error for a rule on the batch as a whole (field ``events``)."""
    metadata = {"field": "events"}
    metadata.update({key: str(value) for key, value in values.items()})
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT, f"events: {rule}", reason, metadata, "events"
    )


def format_time_ns(time_ns: int) -> str:
    """Format ns since the epoch as RFC 3339 UTC, with only the digits needed."""
    seconds, nanos = divmod(time_ns, NS_PER_S)
    try:
        text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{time_ns} ns since the epoch"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def enum_choices(descriptor: EnumDescriptor) -> str:
    """List an enum's values other than the zero value, as `NAME (number)`."""
    names = [f"{v.name} ({v.number})" for v in descriptor.values if v.number != 0]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def check_batch_size(count: int, limits: Limits) -> None:
    """Raise unless a batch contains between 1 and ``max_events_per_batch`` events."""
    if count == 0:
        raise batch_error(
            "the batch is empty; send at least one event", reason="EMPTY_BATCH"
        )
    if count > limits.max_events_per_batch:
        raise batch_error(
            f"{count} events exceed the limit of {limits.max_events_per_batch} "
            "per batch (AETUS_MAX_EVENTS_PER_BATCH); split the batch",
            reason="TOO_MANY_EVENTS",
            event_count=count,
            limit=limits.max_events_per_batch,
        )


def check_identifier(
    index: int, path: str, value: str, max_length: int, *, required: bool = True
) -> None:
    """Check a device, boot or hardware id: present, in limits, allowed characters."""
    _check_pattern(index, path, value, max_length, ID_PATTERN, ID_CHARACTERS, required)


def check_name(
    index: int, path: str, value: str, max_length: int, *, required: bool = True
) -> None:
    """Check a metric, stream or channel name."""
    _check_pattern(
        index, path, value, max_length, NAME_PATTERN, NAME_CHARACTERS, required
    )


def check_text(index: int, path: str, value: str, max_length: int) -> None:
    """Check free text or a unit: a length limit and no control characters."""
    _check_length(index, path, value, max_length)
    if not TEXT_PATTERN.fullmatch(value):
        position = next(
            i for i, char in enumerate(value) if ord(char) < 32 or char == "\x7f"
        )
        raise event_error(
            index,
            path,
            f"control character {value[position]!r} at position {position}; "
            "send printable text",
            position=position,
        )


def check_enum(
    index: int,
    path: str,
    number: int,
    descriptor: EnumDescriptor,
    *,
    required: bool,
) -> None:
    """Reject enum numbers the contract does not declare, and a missing required one.

    An undeclared number is never stored, because it would otherwise read back
    as a value the device did not mean.
    """
    if number == 0 and required:
        raise event_error(
            index,
            path,
            f"missing; set {enum_choices(descriptor)}",
            enum=descriptor.name,
        )
    if descriptor.values_by_number.get(number) is None:
        raise event_error(
            index,
            path,
            f"{number} is not a declared {descriptor.name} value; "
            f"use {enum_choices(descriptor)}",
            value=number,
            enum=descriptor.name,
        )


def check_int64(index: int, path: str, value: int) -> None:
    """Reject unsigned values that do not fit the store's signed 64-bit columns."""
    if value > INT64_MAX:
        raise event_error(
            index,
            path,
            f"{value} is out of range; the maximum is {INT64_MAX}",
            value=value,
            limit=INT64_MAX,
        )


def check_unique(index: int, path: str, names: Sequence[str], item: str) -> None:
    """Reject a name that repeats an earlier one in the same list."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        first = seen.setdefault(name, position)
        if first != position:
            raise event_error(
                index,
                path.format(position),
                f"{name!r} repeats {item}[{first}]; send each name once",
                name=name,
            )


def resolve_time_source(event: telemetry_pb2.Event) -> int:
    """Return the event's time source, with UNSPECIFIED resolved from the fields.

    UNSPECIFIED becomes SYNCED when ``time`` is set and UPTIME when only
    ``uptime_ms`` is. It stays UNSPECIFIED when neither is set, and such an
    event is placed at its arrival time.
    """
    if event.time_source == telemetry_pb2.TIME_SOURCE_UNSPECIFIED:
        if event.HasField("time"):
            return telemetry_pb2.TIME_SOURCE_SYNCED
        if event.uptime_ms:
            return telemetry_pb2.TIME_SOURCE_UPTIME
        return telemetry_pb2.TIME_SOURCE_UNSPECIFIED
    return int(event.time_source)


def event_time_ns(event: telemetry_pb2.Event) -> int:
    """Return the event's ``time`` in ns since the epoch."""
    return int(event.time.seconds) * NS_PER_S + int(event.time.nanos)


def check_plausible_time(
    index: int, path: str, time_ns: int, ctx: CheckContext
) -> None:
    if time_ns < VALID_AFTER_NS:
        raise event_error(
            index,
            path,
            f"{format_time_ns(time_ns)} is before 2020-01-01T00:00:00Z, so the "
            "device clock is not synchronised; sync the clock (GetTime or SNTP) "
            "or send time_source TIME_SOURCE_UPTIME with uptime_ms",
            time=format_time_ns(time_ns),
            valid_after="2020-01-01T00:00:00Z",
        )
    latest_ns = ctx.now_ns + ctx.limits.max_future_time_s * NS_PER_S
    if time_ns > latest_ns:
        raise event_error(
            index,
            path,
            f"{format_time_ns(time_ns)} is more than "
            f"{ctx.limits.max_future_time_s} s ahead of the server clock "
            f"{format_time_ns(ctx.now_ns)}; sync the device clock or send "
            "time_source TIME_SOURCE_UPTIME with uptime_ms",
            time=format_time_ns(time_ns),
            server_time=format_time_ns(ctx.now_ns),
            limit_s=ctx.limits.max_future_time_s,
        )


def _check_pattern(
    index: int,
    path: str,
    value: str,
    max_length: int,
    pattern: re.Pattern[str],
    characters: str,
    required: bool,
) -> None:
    if not value:
        if required:
            raise event_error(index, path, "missing; it must not be empty")
        return
    _check_length(index, path, value, max_length)
    if not pattern.fullmatch(value):
        position, char = next(
            (i, c) for i, c in enumerate(value) if not pattern.fullmatch(c)
        )
        raise event_error(
            index,
            path,
            f"{value!r} contains {char!r} at position {position}; use {characters}",
            value=value,
            position=position,
        )


def _check_length(index: int, path: str, value: str, max_length: int) -> None:
    if len(value) > max_length:
        raise event_error(
            index,
            path,
            f"length {len(value)} exceeds the limit of {max_length} characters",
            length=len(value),
            limit=max_length,
        )
