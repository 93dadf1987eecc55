"""QueryService: stream discovery, reads with downsampling, and device events."""

from __future__ import annotations

import asyncio
import logging
import zoneinfo
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from google.protobuf import duration_pb2, timestamp_pb2

from aetus.query.v1 import query_service_pb2 as pb
from aetus.query.v1 import query_service_pb2_grpc
from aetus.server import downsample
from aetus.server.auth import Authorizer
from aetus.server.errors import ApiError, abort, invalid_argument
from aetus.server.records import EventKind, StoreError, ValueType
from aetus.server.services import _points
from aetus.server.services._page_tokens import decode_token, encode_token
from aetus.server.services._store_errors import store_read_error
from aetus.server.store import SAMPLED, EmbeddedStore, StreamInfo
from aetus.telemetry.v1 import telemetry_pb2

logger = logging.getLogger(__name__)

DEFAULT_MAX_POINTS = 2000
MAX_MAX_POINTS = 100_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Caps that keep one response under gRPC's default 4 MiB receive limit of
# clients: a raw point encodes to about 25 bytes, a bucket to about 100.
MAX_RESPONSE_POINTS = 120_000
MAX_RESPONSE_BUCKETS = 30_000
# ReadStream calls that query the store at once; more wait for a free slot.
MAX_CONCURRENT_READS = 2
MAX_STRING_PAGE_BYTES = 2 * 1024 * 1024
# Timestamps must fit int64 nanoseconds since the epoch.
MIN_TIME_NS = -(2**63) + 1
MAX_TIME_NS = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A validated ReadStream request with its range resolved."""

    stream: StreamInfo
    start_ns: int
    end_ns: int
    max_points: int
    mode: int
    channels: list[str]
    calendar_unit: int
    time_zone: str
    cursor: list[int] | None
    # Median interval per channel over [start_ns, end_ns), from the page
    # token; None on a first page, which computes them.
    medians: list[int | None] | None


class QueryService(query_service_pb2_grpc.QueryServiceServicer):
    """Serves aetus.query.v1.QueryService from the embedded store."""

    def __init__(
        self,
        store: EmbeddedStore,
        authorizer: Authorizer,
        max_concurrent_reads: int = MAX_CONCURRENT_READS,
    ) -> None:
        """Serve reads from ``store``; ``authorizer`` checks read credentials.

        At most ``max_concurrent_reads`` ReadStream calls query the store at
        once, and the others wait their turn, so reads together stay within
        the store's memory limit and leave room for writes.
        """
        self._store = store
        self._authorizer = authorizer
        self._read_slots = asyncio.Semaphore(max_concurrent_reads)

    async def ListStreams(
        self,
        request: pb.ListStreamsRequest,
        context: grpc.aio.ServicerContext[
            pb.ListStreamsRequest, pb.ListStreamsResponse
        ],
    ) -> pb.ListStreamsResponse:
        """List a device's streams, sorted by name."""
        await self._authorizer.require_read(context)
        try:
            await self._require_device(request.device_id)
            streams = await asyncio.to_thread(
                self._store.list_streams, request.device_id
            )
        except ApiError as error:
            await abort(context, error)
        except StoreError as exc:
            await abort(context, store_read_error(exc))
        return pb.ListStreamsResponse(streams=[stream_message(s) for s in streams])

    async def ReadStream(
        self,
        request: pb.ReadStreamRequest,
        context: grpc.aio.ServicerContext[pb.ReadStreamRequest, pb.ReadStreamResponse],
    ) -> pb.ReadStreamResponse:
        """Read one stream over a range, raw or as envelope buckets."""
        await self._authorizer.require_read(context)
        try:
            read = await self._read_request(request)
            async with self._read_slots:
                return await asyncio.to_thread(self._read, read)
        except ApiError as error:
            await abort(context, error)
        except StoreError as exc:
            await abort(context, store_read_error(exc))

    async def ListEvents(
        self,
        request: pb.ListEventsRequest,
        context: grpc.aio.ServicerContext[pb.ListEventsRequest, pb.ListEventsResponse],
    ) -> pb.ListEventsResponse:
        """List a device's status and alert events, oldest first."""
        await self._authorizer.require_read(context)
        try:
            return await self._list_events(request)
        except ApiError as error:
            await abort(context, error)
        except StoreError as exc:
            await abort(context, store_read_error(exc))

    # ListEvents -------------------------------------------------------------

    async def _list_events(
        self, request: pb.ListEventsRequest
    ) -> pb.ListEventsResponse:
        _require_text("device_id", request.device_id)
        start_ns = _optional_time("start_time", request, request.start_time)
        end_ns = _optional_time("end_time", request, request.end_time)
        _check_order(start_ns, end_ns)
        if request.page_size < 0:
            raise invalid_argument(
                f"page_size {request.page_size} is negative; use 1 to "
                f"{MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE}",
                field="page_size",
                page_size=request.page_size,
            )
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        scope = {"d": request.device_id, "a": start_ns, "b": end_ns}
        after = decode_token(request.page_token, "events", scope)
        await self._require_device(request.device_id)

        rows = await asyncio.to_thread(
            self._store.list_device_events,
            request.device_id,
            start_ns,
            end_ns,
            (after[0], after[1]) if after else None,
            size + 1,
        )
        response = pb.ListEventsResponse(
            events=[_device_event(row) for row in rows[:size]]
        )
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = encode_token(
                "events", scope, [last.time_ns, last.event_key]
            )
        return response

    # ReadStream: validation ---------------------------------------------------

    async def _read_request(self, request: pb.ReadStreamRequest) -> ReadRequest:
        _require_text("device_id", request.device_id)
        _require_text("stream", request.stream)
        max_points = _max_points(request.max_points)
        _check_enum("mode", request.mode, pb.ReadMode)
        _check_enum("calendar_unit", request.calendar_unit, pb.CalendarUnit)
        time_zone = _time_zone(request.time_zone)
        start_ns = _optional_time("start_time", request, request.start_time)
        end_ns = _optional_time("end_time", request, request.end_time)
        _check_order(start_ns, end_ns)
        if request.calendar_unit and request.mode == pb.READ_MODE_RAW:
            raise invalid_argument(
                "calendar_unit needs buckets, but mode is READ_MODE_RAW; unset "
                "mode or calendar_unit",
                field="calendar_unit",
            )

        stream = await self._require_stream(request.device_id, request.stream)
        channels = _channels(stream, list(request.channels))
        start = stream.first_time_ns if start_ns is None else start_ns
        end = stream.last_time_ns + 1 if end_ns is None else end_ns
        cursor, medians = None, None
        if request.page_token:
            cursor, start, end, medians = self._page_cursor(request, stream, channels)
        return ReadRequest(
            stream,
            start,
            max(start, end),
            max_points,
            request.mode,
            channels,
            request.calendar_unit,
            time_zone,
            cursor,
            medians,
        )

    def _page_cursor(
        self, request: pb.ReadStreamRequest, stream: StreamInfo, channels: list[str]
    ) -> tuple[list[int], int, int, list[int | None]]:
        """Return the cursor, range and medians a page token was issued for."""
        if request.mode == pb.READ_MODE_ENVELOPE or request.calendar_unit:
            raise invalid_argument(
                "page_token pages raw points, but the request asks for buckets; "
                "drop page_token or use READ_MODE_RAW",
                field="page_token",
            )
        scope = {"d": request.device_id, "s": request.stream, "ch": channels}
        decoded = decode_token(request.page_token, "read", scope)
        assert decoded is not None
        # A sampled cursor is one time, and a scalar one is a time and a row id.
        position_length = 1 if stream.kind == SAMPLED else 2
        if len(decoded) != len(channels) + position_length + 2:
            raise invalid_argument(
                "page_token is not a token this service issued; pass "
                "next_page_token from the previous response unchanged",
                field="page_token",
            )
        *position, start, end = decoded[len(channels) :]
        medians = [None if m < 0 else m for m in decoded[: len(channels)]]
        return position, start, end, medians

    async def _require_device(self, device_id: str) -> None:
        _require_text("device_id", device_id)
        if not await asyncio.to_thread(self._store.device_exists, device_id):
            raise ApiError(
                grpc.StatusCode.NOT_FOUND,
                f"Device {device_id!r} not found; list devices to find its id",
                "DEVICE_NOT_FOUND",
                {"device_id": device_id},
                "device_id",
            )

    async def _require_stream(self, device_id: str, name: str) -> StreamInfo:
        await self._require_device(device_id)
        stream = await asyncio.to_thread(self._store.find_stream, device_id, name)
        if stream is None:
            raise ApiError(
                grpc.StatusCode.NOT_FOUND,
                f"Stream {name!r} of device {device_id!r} not found; "
                "call ListStreams for the device's stream names",
                "STREAM_NOT_FOUND",
                {"device_id": device_id, "stream": name},
                "stream",
            )
        return stream

    # ReadStream: reading -------------------------------------------------------

    def _read(self, read: ReadRequest) -> pb.ReadStreamResponse:
        """Run a validated read in a worker thread."""
        response = pb.ReadStreamResponse(stream=stream_message(read.stream))
        if read.stream.kind == SAMPLED:
            response.source_point_count = self._store.count_samples(
                read.stream, read.start_ns, read.end_ns
            )
        else:
            response.source_point_count = self._store.count_points(
                read.stream.key, read.start_ns, read.end_ns
            )
        if self._wants_buckets(read, response.source_point_count):
            self._read_buckets(read, response)
        else:
            self._read_raw(read, response)
        return response

    def _wants_buckets(self, read: ReadRequest, count: int) -> bool:
        if read.end_ns <= read.start_ns or read.cursor is not None:
            return False
        if read.stream.value_type == ValueType.STRING:
            if read.mode == pb.READ_MODE_ENVELOPE or read.calendar_unit:
                raise invalid_argument(
                    f"Stream {read.stream.name!r} contains string markers, which "
                    "are returned raw and never bucketed; use READ_MODE_RAW "
                    "without calendar_unit",
                    field="mode",
                )
            return False
        if read.calendar_unit or read.mode == pb.READ_MODE_ENVELOPE:
            return True
        budget = _raw_budget(read)
        return read.mode != pb.READ_MODE_RAW and count > budget

    def _read_buckets(self, read: ReadRequest, response: pb.ReadStreamResponse) -> None:
        response.mode = pb.READ_MODE_ENVELOPE
        limit = max(1, MAX_RESPONSE_BUCKETS // max(1, len(read.channels)))
        edges = _edges(read, min(max(1, read.max_points // 2), limit))
        if not read.calendar_unit:
            response.bucket_width.CopyFrom(_duration(int(edges[1] - edges[0])))
        if read.stream.kind != SAMPLED:
            envelope = self._store.scalar_envelope(read.stream, edges)
            response.series.append(_bucket_series("", read.stream.unit, envelope))
            return
        by_name = {channel.name: channel for channel in read.stream.channels}
        for name in read.channels:
            channel = by_name[name]
            envelope = self._store.channel_envelope(read.stream, channel, edges)
            response.series.append(_bucket_series(name, channel.unit, envelope))

    def _read_raw(self, read: ReadRequest, response: pb.ReadStreamResponse) -> None:
        response.mode = pb.READ_MODE_RAW
        limit = _raw_budget(read)
        if read.stream.kind == SAMPLED:
            self._read_raw_samples(read, response, limit)
        else:
            self._read_raw_points(read, response, limit)

    def _read_raw_points(
        self, read: ReadRequest, response: pb.ReadStreamResponse, limit: int
    ) -> None:
        after = (read.cursor[0], read.cursor[1]) if read.cursor else None
        page = self._store.read_points(
            read.stream, read.start_ns, read.end_ns, after=after, limit=limit + 1
        )
        count = _string_page_length(page.values, limit)
        more = len(page.time_ns) > count
        times = page.time_ns[:count]
        if read.medians is not None:
            median = read.medians[0]
        elif more:
            median = self._store.median_interval_ns(
                read.stream, "", read.start_ns, read.end_ns
            )
        else:
            # The page contains the whole range, which is then within the
            # store's exact median limit, so the two medians are equal.
            median = downsample.median_interval_ns(times)

        series = pb.ChannelSeries(unit=read.stream.unit)
        _add_page(
            series,
            read.stream.value_type,
            _RawPage(times, page.values[:count], page.missing[:count]),
            median,
            int(page.time_ns[count]) if more else None,
        )
        response.series.append(series)
        if more:
            cursor = [int(times[-1]), int(page.row_ids[count - 1])]
            response.next_page_token = _read_token(read, cursor, [median])

    def _read_raw_samples(
        self, read: ReadRequest, response: pb.ReadStreamResponse, limit: int
    ) -> None:
        start = read.cursor[0] + 1 if read.cursor else read.start_ns
        page = self._store.channel_page(
            read.stream, read.channels, start, read.end_ns, limit
        )
        medians = read.medians or [
            self._store.median_interval_ns(
                read.stream, name, read.start_ns, read.end_ns
            )
            for name in read.channels
        ]
        units = {channel.name: channel.unit for channel in read.stream.channels}
        for name, median in zip(read.channels, medians, strict=True):
            times = page.times[name]
            series = pb.ChannelSeries(channel=name, unit=units[name])
            raw = _RawPage(times, page.values[name], np.zeros(len(times), np.bool_))
            _add_page(series, ValueType.DOUBLE, raw, median, page.next_time_ns[name])
            response.series.append(series)
        if page.next_after_ns is not None:
            response.next_page_token = _read_token(read, [page.next_after_ns], medians)


def stream_message(stream: StreamInfo) -> pb.Stream:
    """Build the Stream resource for a stored stream."""
    message = pb.Stream(
        device_id=stream.device_id,
        name=stream.name,
        kind=pb.STREAM_KIND_SAMPLED
        if stream.kind == SAMPLED
        else pb.STREAM_KIND_SCALAR,
        value_type=pb.ValueType.Name(int(stream.value_type)),
        unit=stream.unit,
        channels=[pb.Channel(name=c.name, unit=c.unit) for c in stream.channels],
        point_count=stream.point_count,
    )
    message.first_time.FromNanoseconds(stream.first_time_ns)
    message.last_time.FromNanoseconds(stream.last_time_ns)
    if stream.kind == SAMPLED and stream.last_interval_ns > 0:
        message.nominal_rate_hz = 1e9 / stream.last_interval_ns
    return message


def _raw_budget(read: ReadRequest) -> int:
    per_channel = MAX_RESPONSE_POINTS // max(1, len(read.channels))
    return max(1, min(read.max_points, per_channel))


def _edges(read: ReadRequest, bucket_count: int) -> downsample.Int64Array:
    if not read.calendar_unit:
        return downsample.equal_width_edges(read.start_ns, read.end_ns, bucket_count)
    unit = (
        downsample.CALENDAR_DAY
        if read.calendar_unit == pb.CALENDAR_UNIT_DAY
        else downsample.CALENDAR_HOUR
    )
    try:
        edges = downsample.calendar_edges(
            read.start_ns, read.end_ns, unit, read.time_zone, max_buckets=bucket_count
        )
    except ValueError as exc:
        raise _too_many_calendar_buckets(read, unit, bucket_count) from exc
    # The outer buckets are cut to the range, which is all that was read.
    edges[0] = max(int(edges[0]), read.start_ns)
    edges[-1] = min(int(edges[-1]), read.end_ns)
    return edges


def _too_many_calendar_buckets(read: ReadRequest, unit: str, limit: int) -> ApiError:
    # A day is the longest calendar_unit, so only a shorter range or a larger
    # max_points (up to the response limit) makes such a read fit.
    channel_limit = max(1, MAX_RESPONSE_BUCKETS // max(1, len(read.channels)))
    message = (
        f"the range spans more than {limit} {unit} buckets, the maximum for this "
        f"read (max_points / 2, capped at {channel_limit} per channel); narrow "
        f"start_time and end_time to at most {limit} {unit}s per call"
    )
    if limit < channel_limit:
        message += " or raise max_points"
    return invalid_argument(message, field="calendar_unit", max_buckets=limit)


def _bucket_series(
    channel: str, unit: str, envelope: downsample.Envelope
) -> pb.ChannelSeries:
    series = pb.ChannelSeries(channel=channel, unit=unit)
    means = envelope.mean
    for i in range(len(envelope)):
        bucket = series.buckets.add(count=int(envelope.count[i]))
        bucket.start_time.FromNanoseconds(int(envelope.edges[i]))
        bucket.end_time.FromNanoseconds(int(envelope.edges[i + 1]))
        if envelope.finite_count[i] == 0:
            continue
        bucket.min = float(envelope.minimum[i])
        bucket.max = float(envelope.maximum[i])
        bucket.first = float(envelope.first[i])
        bucket.last = float(envelope.last[i])
        bucket.mean = float(means[i])
        bucket.min_time.FromNanoseconds(int(envelope.min_time_ns[i]))
        bucket.max_time.FromNanoseconds(int(envelope.max_time_ns[i]))
    return series


@dataclass(frozen=True, slots=True)
class _RawPage:
    """One channel's points of a raw page, before gap markers are placed."""

    times: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, Any]
    missing: np.ndarray[Any, np.dtype[np.bool_]]


def _add_page(
    series: pb.ChannelSeries,
    value_type: ValueType,
    page: _RawPage,
    median_ns: int | None,
    next_time_ns: int | None,
) -> None:
    """Append a page's points with a gap marker inside every gap.

    Gaps are judged by the median interval of the whole range read, and the
    interval after the page's last point by the first point of the next
    page, so the markers do not depend on where pages are cut.
    """
    # median_ns is None only for a range of fewer than two points, which has
    # no interval to mark.
    gaps = downsample.gap_after(page.times, median_ns, next_time_ns=next_time_ns)
    times, kinds, sources = _points.place_gap_markers(
        page.times, page.missing, gaps, next_time_ns
    )
    _points.add_points(series, value_type, times, page.values[sources], kinds)


def _string_page_length(values: np.ndarray[Any, Any], limit: int) -> int:
    """Return how many points fit a page: ``limit``, or fewer long strings."""
    count = min(limit, len(values))
    if values.dtype != object or count == 0:
        return count
    sizes = np.cumsum([len(str(value)) for value in values[:count]])
    fitting = int(np.searchsorted(sizes, MAX_STRING_PAGE_BYTES, side="right"))
    return max(1, min(count, fitting))


def _device_event(row: Any) -> pb.DeviceEvent:
    event = pb.DeviceEvent(boot_id=row.boot_id, sequence=row.sequence)
    event.time.FromNanoseconds(row.time_ns)
    if row.kind == EventKind.ALERT:
        event.alert.ParseFromString(row.body)
    else:
        event.status.CopyFrom(telemetry_pb2.StatusEvent.FromString(row.body))
    return event


def _timestamp(time_ns: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time_ns)
    return stamp


def _duration(nanos: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(nanos)
    return duration


# Request checks ---------------------------------------------------------------


def _require_text(field: str, value: str) -> None:
    if not value:
        raise invalid_argument(
            f"{field} is required; set it to a non-empty value", field=field
        )


def _max_points(value: int) -> int:
    if value == 0:
        return DEFAULT_MAX_POINTS
    if value < 0 or value > MAX_MAX_POINTS:
        raise invalid_argument(
            f"max_points {value} is out of range; use 1 to {MAX_MAX_POINTS}, "
            f"or 0 for the default {DEFAULT_MAX_POINTS}",
            field="max_points",
            max_points=value,
            limit=MAX_MAX_POINTS,
        )
    return value


def _check_enum(field: str, value: int, enum: Any) -> None:
    if value not in enum.values():
        names = ", ".join(enum.keys())
        raise invalid_argument(
            f"{field} {value} is not a known value; use one of {names}",
            field=field,
            value=value,
        )


def _time_zone(name: str) -> str:
    if not name:
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise invalid_argument(
            f"time_zone {name!r} is not an IANA time zone; use a name such as "
            "'Europe/Berlin' or 'UTC'",
            field="time_zone",
            time_zone=name,
        ) from None
    return name


def _optional_time(
    field: str, request: Any, stamp: timestamp_pb2.Timestamp
) -> int | None:
    if not request.HasField(field):
        return None
    if not 0 <= stamp.nanos < 1_000_000_000:
        raise invalid_argument(
            f"{field}.nanos {stamp.nanos} is out of range; use 0 to 999999999",
            field=f"{field}.nanos",
        )
    nanos = int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)
    if not MIN_TIME_NS <= nanos <= MAX_TIME_NS:
        raise invalid_argument(
            f"{field} {stamp.seconds}s is outside the supported years 1678 to "
            "2262; use a time in that range",
            field=field,
            seconds=stamp.seconds,
        )
    return nanos


def _check_order(start_ns: int | None, end_ns: int | None) -> None:
    if start_ns is not None and end_ns is not None and end_ns < start_ns:
        raise invalid_argument(
            f"end_time ({_iso(end_ns)}) is before start_time ({_iso(start_ns)}); "
            "swap them or widen the range",
            field="end_time",
            start_time=_iso(start_ns),
            end_time=_iso(end_ns),
        )


def _iso(time_ns: int) -> str:
    return str(_timestamp(time_ns).ToJsonString())


def _channels(stream: StreamInfo, requested: list[str]) -> list[str]:
    names = [channel.name for channel in stream.channels]
    if stream.kind != SAMPLED:
        if requested:
            raise invalid_argument(
                f"Stream {stream.name!r} is scalar and has no channels; leave "
                "channels empty",
                field="channels",
            )
        return [""]
    for index, name in enumerate(requested):
        if name not in names:
            raise invalid_argument(
                f"channels[{index}] {name!r} is not a channel of stream "
                f"{stream.name!r}; use one of {', '.join(names)}",
                field=f"channels[{index}]",
                channel=name,
            )
    return list(dict.fromkeys(requested)) or names


# Page tokens --------------------------------------------------------------------


def _read_token(read: ReadRequest, cursor: list[int], medians: list[int | None]) -> str:
    """Encode the cursor after a raw page, with the range and its medians.

    The token's values are the median per channel (-1 for None), the
    cursor, then the range's start and end.
    """
    scope = {"d": read.stream.device_id, "s": read.stream.name, "ch": read.channels}
    values = [-1 if median is None else median for median in medians]
    return encode_token("read", scope, [*values, *cursor, read.start_ns, read.end_ns])
