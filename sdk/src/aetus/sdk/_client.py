"""The asynchronous client: unary ingest with retries, time, reads and streams."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypedDict, TypeVar, Unpack

import grpc

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.query.v1 import query_service_pb2, query_service_pb2_grpc
from aetus.sdk._config import ClientSettings, channel_option_list
from aetus.sdk._http import post_ingest
from aetus.sdk._read import (
    EnvelopeSeries,
    Series,
    StreamData,
    envelope_series,
    raw_series,
)
from aetus.sdk._retry import Backoff, call_with_retry
from aetus.sdk._stream import EventStream
from aetus.sdk._stream_results import RejectionCallback
from aetus.sdk._times import TimeLike, ns_from_timestamp, timestamp_from_ns, to_time_ns
from aetus.telemetry.v1 import telemetry_pb2

_logger = logging.getLogger(__name__)

T = TypeVar("T")

ReadModeName = Literal["auto", "raw", "envelope"]
_READ_MODES = {
    "auto": query_service_pb2.READ_MODE_UNSPECIFIED,
    "raw": query_service_pb2.READ_MODE_RAW,
    "envelope": query_service_pb2.READ_MODE_ENVELOPE,
}
_CALENDAR_UNITS = {
    None: query_service_pb2.CALENDAR_UNIT_UNSPECIFIED,
    "hour": query_service_pb2.CALENDAR_UNIT_HOUR,
    "day": query_service_pb2.CALENDAR_UNIT_DAY,
}
# Largest page ReadStream returns; raw reads ask for it to save round trips.
_MAX_POINTS_PER_PAGE = 100_000


class ClientOptions(TypedDict, total=False):
    """Keyword settings of AsyncClient and Client; see ClientSettings."""

    token: str
    http_url: str
    timeout_s: float
    max_attempts: int
    retry_initial_backoff_ms: int
    retry_max_backoff_ms: int
    max_message_bytes: int
    max_receive_message_bytes: int
    stream_batch_max_events: int
    stream_linger_ms: int
    stream_max_inflight_batches: int
    stream_ack_timeout_s: float


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Outcome of one ``send_events`` call.

    Attributes:
        accepted_count: Events stored by this call.
        duplicate_count: Events the server had already stored, for example
            from an attempt whose reply was lost.
        commit_time_ns: Server time at which the events became durable.
        attempts: Attempts the call took, the first included.
    """

    accepted_count: int
    duplicate_count: int
    commit_time_ns: int
    attempts: int


@dataclass(frozen=True, slots=True)
class ServerTime:
    """The server's clock as measured by ``get_time``.

    Attributes:
        unix_time_ns: Server time, ns since the epoch, when it replied.
        valid_after_ns: Times before this are not trusted as synchronised.
        round_trip_ns: Duration of the call on the local clock.
        offset_ns: Server clock minus local clock, estimated at the middle of
            the call. Add it to a local time to get server time.
    """

    unix_time_ns: int
    valid_after_ns: int
    round_trip_ns: int
    offset_ns: int


class AsyncClient:
    """Client of an AETUS server for asyncio code.

    Unary calls retry retriable failures (UNAVAILABLE, DEADLINE_EXCEEDED,
    ABORTED, rate limits) with exponential backoff and jitter, and never retry
    INVALID_ARGUMENT, PERMISSION_DENIED or UNAUTHENTICATED. Retries are safe
    because every event keeps its (device_id, boot_id, sequence) identity and
    the server stores it once.

    Args:
        target: host:port of the server or the Envoy front door. Default:
            AETUS_TARGET, then 127.0.0.1:50051.
        credentials: TLS channel credentials; None opens a plaintext channel.
        channel_options: Extra gRPC channel options. Each one overrides the
            SDK's option of the same key, such as grpc.keepalive_time_ms.
        **settings: Any ClientSettings field, such as ``token`` or
            ``timeout_s``; each falls back to its AETUS_* variable, then to
            its default.

    Raises:
        TypeError: An unknown setting.
        ValueError: A setting out of range.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        **settings: Unpack[ClientOptions],
    ) -> None:
        self.settings = ClientSettings.load(target=target, **settings)
        options = channel_option_list(self.settings, channel_options)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(
                self.settings.target, options=options
            )
        else:
            self._channel = grpc.aio.secure_channel(
                self.settings.target, credentials, options=options
            )
        self._ingest = ingest_service_pb2_grpc.IngestServiceStub(self._channel)
        self._query = query_service_pb2_grpc.QueryServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = ()
        # Streams opened on this client; close() cancels those still open.
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        if self.settings.token:
            self._metadata = (("authorization", f"Bearer {self.settings.token}"),)
        _logger.debug("Client for %s created", self.settings.target)

    @property
    def channel(self) -> grpc.aio.Channel:
        """The gRPC channel, for calling the generated stubs directly."""
        return self._channel

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the credential, for direct stub calls."""
        return self._metadata

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel. Calls and streams still running are cancelled.

        A stream that was not closed first drops its unacked events, which its
        ``result()`` counts. Close streams first to wait for their acks.
        """
        for stream in list(self._streams):
            await stream.cancel()
        await self._channel.close()

    async def send_events(self, events: Iterable[telemetry_pb2.Event]) -> IngestResult:
        """Store a batch of events with one IngestEvents call.

        The server stores the whole batch or nothing of it. Retried attempts
        resend the same events, which the server counts as duplicates when an
        earlier attempt was stored.

        Args:
            events: The events, at least one.

        Returns:
            Counts of stored and duplicate events.

        Raises:
            ValueError: No events, or a request larger than max_message_bytes.
            AetusError: The call failed; see its subclasses.
        """
        request = ingest_service_pb2.IngestEventsRequest(events=events)
        if not request.events:
            raise ValueError("no events given; pass at least one event")
        self._check_request_size(request.ByteSize(), len(request.events))
        attempts = 0

        async def attempt() -> ingest_service_pb2.IngestEventsResponse:
            nonlocal attempts
            attempts += 1
            return await self._ingest.IngestEvents(
                request, timeout=self.settings.timeout_s, metadata=self._metadata
            )

        response = await self._retry("IngestEvents", attempt)
        _logger.debug(
            "IngestEvents stored %d and found %d duplicate(s) of %d event(s)",
            response.accepted_count,
            response.duplicate_count,
            len(request.events),
        )
        return IngestResult(
            accepted_count=response.accepted_count,
            duplicate_count=response.duplicate_count,
            commit_time_ns=ns_from_timestamp(response.commit_time),
            attempts=attempts,
        )

    async def send_events_http(
        self, events: Iterable[telemetry_pb2.Event]
    ) -> IngestResult:
        """Store a batch with a protobuf POST to the front door's /v1/ingest.

        The fallback for networks that block HTTP/2: the same batch, retries
        and errors as ``send_events``, sent as HTTP/1.1 to ``http_url``.

        Args:
            events: The events, at least one.

        Returns:
            Counts of stored and duplicate events.

        Raises:
            ValueError: No events, a request larger than max_message_bytes,
                or an invalid http_url.
            AetusError: The request failed; see its subclasses.
        """
        request = ingest_service_pb2.IngestEventsRequest(events=events)
        if not request.events:
            raise ValueError("no events given; pass at least one event")
        self._check_request_size(request.ByteSize(), len(request.events))
        body = request.SerializeToString()
        attempts = 0

        async def attempt() -> ingest_service_pb2.IngestEventsResponse:
            nonlocal attempts
            attempts += 1
            return await asyncio.to_thread(
                post_ingest,
                self.settings.http_url,
                body,
                self.settings.token,
                self.settings.timeout_s,
            )

        response = await self._retry("POST /v1/ingest", attempt)
        return IngestResult(
            accepted_count=response.accepted_count,
            duplicate_count=response.duplicate_count,
            commit_time_ns=ns_from_timestamp(response.commit_time),
            attempts=attempts,
        )

    async def get_time(self) -> ServerTime:
        """Read the server's clock and estimate the local clock's offset.

        Returns:
            The server time, the round trip and the estimated offset.

        Raises:
            AetusError: The call failed.
        """
        sent_ns = 0

        async def attempt() -> ingest_service_pb2.GetTimeResponse:
            nonlocal sent_ns
            sent_ns = time.time_ns()
            return await self._ingest.GetTime(
                ingest_service_pb2.GetTimeRequest(),
                timeout=self.settings.timeout_s,
                metadata=self._metadata,
            )

        response = await self._retry("GetTime", attempt)
        received_ns = time.time_ns()
        return ServerTime(
            unix_time_ns=response.unix_time_ns,
            valid_after_ns=ns_from_timestamp(response.valid_after_time),
            round_trip_ns=received_ns - sent_ns,
            offset_ns=response.unix_time_ns - (sent_ns + received_ns) // 2,
        )

    async def list_streams(self, device_id: str) -> list[query_service_pb2.Stream]:
        """List the streams of one device, sorted by name.

        Raises:
            AetusError: The call failed, for example NotFoundError.
        """
        request = query_service_pb2.ListStreamsRequest(device_id=device_id)
        response = await self._retry(
            "ListStreams",
            lambda: self._query.ListStreams(
                request, timeout=self.settings.timeout_s, metadata=self._metadata
            ),
        )
        return list(response.streams)

    async def read_stream(
        self,
        device_id: str,
        stream: str,
        *,
        start_time: TimeLike | None = None,
        end_time: TimeLike | None = None,
        channels: Sequence[str] = (),
        mode: ReadModeName = "auto",
        max_points: int | None = None,
        calendar_unit: Literal["hour", "day"] | None = None,
        time_zone: str = "",
    ) -> StreamData:
        """Read one stream over a time range into numpy arrays.

        In ``raw`` mode every page is read, following next_page_token, so the
        result contains every point of the range. In ``auto`` mode the server
        returns raw points when they fit in ``max_points``, else min/max
        envelope buckets, as it does in ``envelope`` mode.

        Args:
            device_id: Device id.
            stream: Metric name or signal stream name.
            start_time: Start of the range, inclusive. Default: first point.
            end_time: End of the range, exclusive. Default: after last point.
            channels: Channels of a sampled stream. Default: all.
            mode: ``auto``, ``raw`` or ``envelope``.
            max_points: Points per channel per page (raw) or in the result
                (envelope). Default: 100000 for raw, the server's otherwise.
            calendar_unit: ``hour`` or ``day`` for calendar buckets.
            time_zone: IANA zone of calendar buckets. Default: UTC.

        Returns:
            The stream's description and one series per channel.

        Raises:
            ValueError: An unknown mode or calendar unit.
            AetusError: A call failed.
        """
        request = _read_request(
            device_id, stream, start_time, end_time, channels, mode, max_points
        )
        if calendar_unit not in _CALENDAR_UNITS:
            raise ValueError(
                f"calendar_unit={calendar_unit!r} is not valid; use 'hour' or 'day'"
            )
        request.calendar_unit = _CALENDAR_UNITS[calendar_unit]
        request.time_zone = time_zone
        pages = [await self._read_page(request)]
        while (
            pages[0].mode == query_service_pb2.READ_MODE_RAW
            and pages[-1].next_page_token
        ):
            request.page_token = pages[-1].next_page_token
            pages.append(await self._read_page(request))
        return _stream_data(pages)

    def open_stream(
        self, *, on_rejection: RejectionCallback | None = None
    ) -> EventStream:
        """Open a bidi StreamEvents sender on this client's channel.

        Use it as ``async with client.open_stream() as stream:``, or call
        ``close()`` on it. It must be opened inside the running event loop.

        Args:
            on_rejection: Called with each BatchRejected, in the event loop.

        Returns:
            The started stream.
        """
        stream = EventStream(
            self._ingest.StreamEvents,
            settings=self.settings,
            metadata=self._metadata,
            on_rejection=on_rejection,
        )
        stream.start()
        self._streams.add(stream)
        return stream

    async def _read_page(
        self, request: query_service_pb2.ReadStreamRequest
    ) -> query_service_pb2.ReadStreamResponse:
        return await self._retry(
            "ReadStream",
            lambda: self._query.ReadStream(
                request, timeout=self.settings.timeout_s, metadata=self._metadata
            ),
        )

    async def _retry(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(
            self.settings.retry_initial_backoff_ms, self.settings.retry_max_backoff_ms
        )
        return await call_with_retry(
            call,
            method=method,
            target=self.settings.target,
            max_attempts=self.settings.max_attempts,
            backoff=backoff,
        )

    def _check_request_size(self, size: int, count: int) -> None:
        limit = self.settings.max_message_bytes
        if size > limit:
            raise ValueError(
                f"IngestEvents request of {count} event(s) is {size} bytes, over "
                f"max_message_bytes={limit}; {_size_fix(count)}"
            )


def _size_fix(count: int) -> str:
    if count == 1:
        # open_stream() cannot help here: it rejects an oversized event too.
        return (
            "split the event: build_signal_frames(..., max_message_bytes=...) "
            "cuts signal frames by samples so that each fits"
        )
    return (
        "send the events in smaller batches, or use open_stream(), which cuts "
        "batches to fit"
    )


def _read_request(
    device_id: str,
    stream: str,
    start_time: TimeLike | None,
    end_time: TimeLike | None,
    channels: Sequence[str],
    mode: str,
    max_points: int | None,
) -> query_service_pb2.ReadStreamRequest:
    if mode not in _READ_MODES:
        raise ValueError(
            f"mode={mode!r} is not valid; use one of {sorted(_READ_MODES)}"
        )
    if max_points is None and mode == "raw":
        max_points = _MAX_POINTS_PER_PAGE
    request = query_service_pb2.ReadStreamRequest(
        device_id=device_id,
        stream=stream,
        channels=list(channels),
        mode=_READ_MODES[mode],
        max_points=max_points or 0,
    )
    if start_time is not None:
        request.start_time.CopyFrom(timestamp_from_ns(to_time_ns(start_time)))
    if end_time is not None:
        request.end_time.CopyFrom(timestamp_from_ns(to_time_ns(end_time)))
    return request


def _stream_data(pages: list[query_service_pb2.ReadStreamResponse]) -> StreamData:
    first = pages[0]
    if first.mode != query_service_pb2.READ_MODE_RAW:
        series: dict[str, Series | EnvelopeSeries] = {
            item.channel: envelope_series(item) for item in first.series
        }
        return StreamData(first.stream, "envelope", first.source_point_count, series)
    by_channel: dict[str, list[query_service_pb2.ChannelSeries]] = {}
    for page in pages:
        for item in page.series:
            by_channel.setdefault(item.channel, []).append(item)
    value_type = first.stream.value_type
    raw = {name: raw_series(parts, value_type) for name, parts in by_channel.items()}
    return StreamData(first.stream, "raw", first.source_point_count, dict(raw))
