"""EventStream: batches events over one StreamEvents call and resends until acked.

The public side (send, flush, close) fills batches and waits for room in a
bounded window. A background task owns the gRPC call: a writer task sends
sealed batches, a reader task applies cumulative acks, and a watchdog task
ends a call that has gone too long without an ack. After any retriable
failure the task opens a new call and sends every unacked batch again, with
the same events, so the server drops what it already stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeAlias

import grpc

from aetus.ingest.v1 import ingest_service_pb2
from aetus.sdk._config import (
    EVENT_FRAMING_BYTES,
    REQUEST_OVERHEAD_BYTES,
    ClientSettings,
)
from aetus.sdk._errors import (
    AetusError,
    StreamClosedError,
    UnavailableError,
    error_from_rpc_error,
    error_from_status_proto,
)
from aetus.sdk._retry import Backoff
from aetus.sdk._stream_results import BatchRejected, RejectionCallback, StreamResult
from aetus.telemetry.v1 import telemetry_pb2

_logger = logging.getLogger(__name__)

_EventsCall: TypeAlias = grpc.aio.StreamStreamCall[
    ingest_service_pb2.StreamEventsRequest, ingest_service_pb2.StreamEventsResponse
]

# Rejections after the first are logged at most once per this interval.
_REJECTION_LOG_INTERVAL_S = 10.0


class _Stalled(Exception):
    """The watchdog found no ack within the ack timeout."""


class _Batch:
    __slots__ = ("byte_size", "event_count", "number", "request", "sent", "written_at")

    def __init__(
        self, number: int, events: list[telemetry_pb2.Event], size: int
    ) -> None:
        self.number = number
        self.request = ingest_service_pb2.StreamEventsRequest(events=events)
        self.event_count = len(events)
        self.byte_size = size
        self.written_at = 0.0
        self.sent = False


class EventStream:
    """Sends events over one long-lived StreamEvents call, with acks.

    Events are grouped into batches of up to ``stream_batch_max_events``
    events and ``max_message_bytes`` bytes; a partly filled batch is sent
    after ``stream_linger_ms``. Each batch is kept until a cumulative ack
    covers it. At most ``stream_max_inflight_batches`` batches are kept, so
    ``send()`` waits while the server is slow and memory stays bounded.

    The call has no deadline. When no ack arrives for ``stream_ack_timeout_s``
    while batches are outstanding, or the call fails with a retriable code,
    the stream opens a new call after a backoff and resends the unacked
    batches. A batch the server rejects is reported to ``on_rejection`` and
    counted, and the stream goes on. A permanent failure (for example
    UNAUTHENTICATED) ends the stream: later ``send()`` and ``flush()`` calls
    raise StreamClosedError, and ``close()`` reports the dropped events.

    Create it with ``AsyncClient.open_stream()``. Its methods must be called
    from the event loop that opened it. Do not change an event after passing
    it to ``send()``.
    """

    def __init__(
        self,
        open_call: Callable[..., _EventsCall],
        *,
        settings: ClientSettings,
        metadata: tuple[tuple[str, str], ...],
        on_rejection: RejectionCallback | None = None,
    ) -> None:
        self._open_call = open_call
        self._settings = settings
        self._metadata = metadata
        self._on_rejection = on_rejection
        self._batch_limit_bytes = settings.max_message_bytes - REQUEST_OVERHEAD_BYTES

        self._cond = asyncio.Condition()
        self._seal_lock = asyncio.Lock()
        self._pending: list[telemetry_pb2.Event] = []
        self._pending_bytes = 0
        self._unacked: collections.deque[_Batch] = collections.deque()
        # Index in _unacked of the next batch to write on the current call.
        self._write_index = 0
        self._wire_sequence = 0
        self._last_progress = time.monotonic()
        self._run_task: asyncio.Task[None] | None = None
        self._linger_task: asyncio.Task[None] | None = None

        self._closed = False  # no more send(); set by close()
        self._closing = False  # half-close once everything is written
        self._failure: AetusError | None = None
        self._batch_count = 0
        self._accepted = 0
        self._duplicates = 0
        self._rejected_batches = 0
        self._rejected_events = 0
        self._reconnects = 0
        self._resent = 0
        self._dropped_events = 0
        self._buffered_bytes = 0
        self.peak_buffered_bytes = 0
        self.peak_unacked_batches = 0
        self._rejection_log_time = float("-inf")

    # Public API --------------------------------------------------------------

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def unacked_batch_count(self) -> int:
        """Sealed batches not yet covered by an ack."""
        return len(self._unacked)

    @property
    def buffered_bytes(self) -> int:
        """Encoded bytes of the events held: pending and unacked."""
        return self._buffered_bytes

    def start(self) -> None:
        """Start the background task that owns the call. Called by open_stream()."""
        if self._run_task is None:
            self._run_task = asyncio.get_running_loop().create_task(
                self._run(), name="aetus-event-stream"
            )
            self._run_task.add_done_callback(self._on_run_done)

    async def send(self, event: telemetry_pb2.Event) -> None:
        """Queue one event; wait while the window of unacked batches is full.

        Raises:
            ValueError: The event alone is larger than max_message_bytes.
            StreamClosedError: The stream was closed or failed permanently.
        """
        self._check_open()
        size = event.ByteSize() + EVENT_FRAMING_BYTES
        if size > self._batch_limit_bytes:
            raise ValueError(
                f"event {event.device_id}/{event.boot_id}/{event.sequence} is "
                f"{size} bytes, over max_message_bytes="
                f"{self._settings.max_message_bytes}; split the event: "
                "build_signal_frames(..., max_message_bytes=...) cuts signal "
                "frames by samples so that each fits"
            )
        while self._pending and (
            len(self._pending) >= self._settings.stream_batch_max_events
            or self._pending_bytes + size > self._batch_limit_bytes
        ):
            await self._seal()
        self._check_open()

        self._pending.append(event)
        self._pending_bytes += size
        self._add_buffered(size)
        if len(self._pending) >= self._settings.stream_batch_max_events:
            await self._seal()
        elif len(self._pending) == 1:
            self._arm_linger()

    async def send_many(self, events: Iterable[telemetry_pb2.Event]) -> None:
        """Queue events in order, as ``send()`` does for each."""
        for event in events:
            await self.send(event)

    async def flush(self, timeout_s: float | None = None) -> None:
        """Send the pending batch and wait until every batch so far is acked.

        Acked includes rejected: rejections go to ``on_rejection``.

        Raises:
            TimeoutError: ``timeout_s`` passed first. Nothing is dropped.
            StreamClosedError: The stream failed permanently.
        """
        async with asyncio.timeout(timeout_s):
            await self._seal()
            target = self._batch_count
            async with self._cond:
                await self._cond.wait_for(
                    lambda: (
                        self._failure is not None
                        or not self._unacked
                        or self._unacked[0].number > target
                    )
                )
        if self._failure is not None:
            raise StreamClosedError(
                f"stream failed: {self._failure}"
            ) from self._failure

    async def close(self, timeout_s: float | None = None) -> StreamResult:
        """Send what is pending, half-close, and wait for the last acks.

        The call is half-closed (done_writing) once every batch is written,
        and acks are still read until the server ends the call with OK.

        Args:
            timeout_s: How long to wait; unacked events are then dropped and
                counted in the result. None waits as long as it takes.

        Returns:
            The stream's counters.
        """
        if self._closed:
            return self.result()
        self._closed = True
        try:
            async with asyncio.timeout(timeout_s):
                await self._seal()
                async with self._cond:
                    self._closing = True
                    self._cond.notify_all()
                if self._run_task is not None:
                    await asyncio.shield(self._run_task)
        except TimeoutError:
            _logger.error(
                "Stream to %s not acked within %.1f s of close; dropping %d event(s)",
                self._settings.target,
                timeout_s,
                self._held_event_count(),
            )
        except StreamClosedError:
            pass
        await self._stop_tasks()
        self._dropped_events = self._held_event_count()
        result = self.result()
        _log_close(self._settings.target, result)
        return result

    async def cancel(self) -> StreamResult:
        """End the stream at once, without waiting for acks.

        Events not yet acked are dropped and counted in the result. Closing the
        client calls this for each stream still open. Does nothing once the
        stream is closed.

        Returns:
            The stream's counters.
        """
        if self._closed:
            return self.result()
        self._closed = True
        await self._stop_tasks()
        self._dropped_events = self._held_event_count()
        _logger.debug(
            "Stream to %s cancelled with %d event(s) not acked",
            self._settings.target,
            self._dropped_events,
        )
        return self.result()

    def result(self) -> StreamResult:
        """Return the counters so far."""
        return StreamResult(
            accepted_count=self._accepted,
            duplicate_count=self._duplicates,
            rejected_batch_count=self._rejected_batches,
            rejected_event_count=self._rejected_events,
            reconnect_count=self._reconnects,
            resent_batch_count=self._resent,
            unacked_event_count=self._dropped_events or self._held_event_count(),
            error=self._failure,
        )

    # Batching ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._failure is not None:
            raise StreamClosedError(
                f"stream failed: {self._failure}; open a new one"
            ) from self._failure
        if self._closed:
            raise StreamClosedError("stream is closed; open a new one to send")

    def _add_buffered(self, size: int) -> None:
        self._buffered_bytes += size
        self.peak_buffered_bytes = max(self.peak_buffered_bytes, self._buffered_bytes)

    def _held_event_count(self) -> int:
        return len(self._pending) + sum(batch.event_count for batch in self._unacked)

    def _arm_linger(self) -> None:
        if self._linger_task is None or self._linger_task.done():
            self._linger_task = asyncio.get_running_loop().create_task(self._linger())

    async def _linger(self) -> None:
        await asyncio.sleep(self._settings.stream_linger_ms / 1000)
        # A failure is reported to send(), flush() and close(), not here.
        with contextlib.suppress(StreamClosedError):
            await self._seal()

    async def _seal(self) -> None:
        """Turn the pending events into a batch once the window has room."""
        async with self._seal_lock:
            if not self._pending:
                return
            async with self._cond:
                await self._cond.wait_for(
                    lambda: (
                        self._failure is not None
                        or len(self._unacked)
                        < self._settings.stream_max_inflight_batches
                    )
                )
                if self._failure is not None:
                    raise StreamClosedError(
                        f"stream failed: {self._failure}"
                    ) from self._failure
                self._batch_count += 1
                batch = _Batch(self._batch_count, self._pending, self._pending_bytes)
                self._pending = []
                self._pending_bytes = 0
                self._unacked.append(batch)
                self.peak_unacked_batches = max(
                    self.peak_unacked_batches, len(self._unacked)
                )
                self._cond.notify_all()
            if self._linger_task is not asyncio.current_task() and self._linger_task:
                self._linger_task.cancel()
                self._linger_task = None

    # The call ----------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(
            self._settings.retry_initial_backoff_ms, self._settings.retry_max_backoff_ms
        )
        first = True
        while not (self._closing and not self._unacked):
            if not first:
                self._reconnects += 1
            first = False
            acked_before = self._accepted + self._duplicates + self._rejected_batches
            error = await self._attempt_call()
            if error is None:
                return
            if not error.retriable:
                await self._fail(error)
                return
            if (
                self._accepted + self._duplicates + self._rejected_batches
                > acked_before
            ):
                backoff.reset()
            delay_s = error.retry_delay_s or backoff.next_delay_s()
            _logger.warning(
                "Stream to %s interrupted (%s); reconnecting in %.2f s to resend "
                "%d unacked batch(es)",
                self._settings.target,
                error,
                delay_s,
                len(self._unacked),
            )
            await self._wait_unless_finished(delay_s)

    async def _attempt_call(self) -> AetusError | None:
        """Run one call; return None when it ended cleanly after a half-close."""
        try:
            finished = await self._run_call()
        except _Stalled as exc:
            return UnavailableError(str(exc))
        except grpc.aio.AioRpcError as exc:
            return error_from_rpc_error(exc)
        except Exception as exc:
            # A fault in this module, not in the server: reconnecting would
            # repeat it, so the stream ends and close() reports what is lost.
            _logger.exception("Stream to %s failed unexpectedly", self._settings.target)
            return AetusError(f"stream failed unexpectedly: {exc!r}")
        if finished:
            return None
        return UnavailableError(
            f"server ended the stream with {len(self._unacked)} batch(es) unacked"
        )

    async def _wait_unless_finished(self, delay_s: float) -> None:
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._cond.wait_for(lambda: self._closing and not self._unacked),
                    delay_s,
                )

    async def _run_call(self) -> bool:
        call = self._open_call(metadata=self._metadata)
        async with self._cond:
            self._write_index = 0
            self._wire_sequence = 0
            self._last_progress = time.monotonic()
        _logger.debug("Stream to %s opened", self._settings.target)
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read_acks(call))
        writer = loop.create_task(self._write_batches(call))
        watchdog = loop.create_task(self._watch_acks())
        try:
            return await _first_outcome(reader, {reader, writer, watchdog})
        finally:
            for task in (reader, writer, watchdog):
                task.cancel()
            await asyncio.gather(reader, writer, watchdog, return_exceptions=True)
            call.cancel()

    async def _write_batches(self, call: _EventsCall) -> None:
        while True:
            async with self._cond:
                await self._cond.wait_for(
                    lambda: self._write_index < len(self._unacked) or self._closing
                )
                batch = self._next_to_write()
            try:
                if batch is None:
                    await call.done_writing()
                    _logger.debug("Stream to %s half-closed", self._settings.target)
                    return
                await call.write(batch.request)
            except asyncio.InvalidStateError:
                # The server already ended the call; the reader reports how.
                return

    def _next_to_write(self) -> _Batch | None:
        if self._write_index >= len(self._unacked):
            return None
        batch = self._unacked[self._write_index]
        self._write_index += 1
        self._wire_sequence += 1
        batch.request.batch_sequence = self._wire_sequence
        batch.written_at = time.monotonic()
        if batch.sent:
            self._resent += 1
        batch.sent = True
        self._cond.notify_all()
        return batch

    async def _read_acks(self, call: _EventsCall) -> bool:
        while True:
            response = await call.read()
            # read() returns grpc.aio.EOF once the server has closed the stream.
            if not isinstance(response, ingest_service_pb2.StreamEventsResponse):
                break
            async with self._cond:
                self._apply_ack(response)
                self._cond.notify_all()
        async with self._cond:
            return self._closing and not self._unacked

    def _apply_ack(self, response: ingest_service_pb2.StreamEventsResponse) -> None:
        statuses = {item.batch_sequence: item.status for item in response.rejections}
        while (
            self._write_index > 0
            and self._unacked[0].request.batch_sequence <= response.acked_batch_sequence
        ):
            batch = self._unacked.popleft()
            self._write_index -= 1
            self._buffered_bytes -= batch.byte_size
            status = statuses.get(batch.request.batch_sequence)
            if status is not None:
                error = error_from_status_proto(status)
                events = tuple(batch.request.events)
                self._report_rejection(BatchRejected(batch.number, events, error))
        self._accepted += response.accepted_count
        self._duplicates += response.duplicate_count
        self._last_progress = time.monotonic()

    async def _watch_acks(self) -> None:
        timeout_s = self._settings.stream_ack_timeout_s
        while True:
            async with self._cond:
                await self._cond.wait_for(lambda: self._write_index > 0)
                oldest = self._unacked[0]
                deadline = max(oldest.written_at, self._last_progress) + timeout_s
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Stalled(
                    f"no ack for {timeout_s:.1f} s with {self._write_index} "
                    "batch(es) outstanding"
                )
            await asyncio.sleep(remaining)

    # Outcomes ----------------------------------------------------------------

    def _report_rejection(self, item: BatchRejected) -> None:
        self._rejected_batches += 1
        self._rejected_events += len(item.events)
        now = time.monotonic()
        if now - self._rejection_log_time >= _REJECTION_LOG_INTERVAL_S:
            self._rejection_log_time = now
            _logger.warning(
                "Stream to %s: batch %d of %d event(s) rejected: %s "
                "(%d rejected so far)",
                self._settings.target,
                item.batch_number,
                len(item.events),
                item.error,
                self._rejected_batches,
            )
        if self._on_rejection is None:
            return
        try:
            self._on_rejection(item)
        except Exception:
            _logger.exception(
                "on_rejection callback raised for batch %d", item.batch_number
            )

    async def _fail(self, error: AetusError) -> None:
        async with self._cond:
            self._failure = error
            self._cond.notify_all()
        _logger.error(
            "Stream to %s failed permanently: %s; %d event(s) not acked",
            self._settings.target,
            error,
            self._held_event_count(),
        )

    def _on_run_done(self, task: asyncio.Task[None]) -> None:
        # _run turns every call failure into a result, so an exception here is
        # a fault in this module. Without this, send() would wait forever for
        # acks that no task reads any more.
        if task.cancelled() or task.exception() is None:
            return
        _logger.error(
            "Stream task for %s failed",
            self._settings.target,
            exc_info=task.exception(),
        )
        self._failure = AetusError(f"stream task failed: {task.exception()!r}")
        task.get_loop().create_task(self._wake_waiters())

    async def _wake_waiters(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _stop_tasks(self) -> None:
        tasks = [task for task in (self._run_task, self._linger_task) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _first_outcome(
    reader: asyncio.Task[bool], tasks: set[asyncio.Task[Any]]
) -> bool:
    """Wait for the reader's result, or raise the first error of any task."""
    pending = set(tasks)
    while True:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
            if task is reader:
                return reader.result()


def _log_close(target: str, result: StreamResult) -> None:
    _logger.info(
        "Stream to %s closed: %d accepted, %d duplicate(s), %d rejected "
        "batch(es), %d reconnect(s), %d event(s) not acked",
        target,
        result.accepted_count,
        result.duplicate_count,
        result.rejected_batch_count,
        result.reconnect_count,
        result.unacked_event_count,
    )
