"""One StreamEvents call: read batches ahead, store them, send cumulative acks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from aetus.ingest.v1 import ingest_service_pb2
from aetus.server.errors import ApiError, abort
from aetus.server.normalize import NormalizedRequest
from aetus.server.records import WriteResult

if TYPE_CHECKING:
    from aetus.server.services.ingest import IngestServicer

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Batch:
    """A batch read from the stream: being stored, or already rejected."""

    sequence: int
    normalized: NormalizedRequest | None = None
    task: asyncio.Task[WriteResult] | None = None
    rejection: ApiError | None = None

    def ready(self) -> bool:
        return self.task is None or self.task.done()


@dataclass(slots=True)
class _End:
    """The client half-closed the stream (error is None) or broke its rules."""

    error: ApiError | None = None


@dataclass(slots=True)
class _Ack:
    """Outcome of the batches settled since the previous response."""

    last_sequence: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejections: list[ingest_service_pb2.BatchRejection] = field(default_factory=list)

    def response(self) -> ingest_service_pb2.StreamEventsResponse:
        return ingest_service_pb2.StreamEventsResponse(
            acked_batch_sequence=self.last_sequence,
            accepted_count=self.accepted,
            duplicate_count=self.duplicates,
            rejections=self.rejections,
        )

    def reject(self, sequence: int, error: ApiError) -> None:
        self.rejections.append(
            ingest_service_pb2.BatchRejection(
                batch_sequence=sequence, status=error.to_status_proto()
            )
        )
        self.last_sequence = sequence


class StreamSession:
    """State of one StreamEvents call.

    A reader task takes batches off the stream, validates each on its own and
    hands it to the event log, keeping at most ``read_ahead`` batches queued
    behind the one whose durability is awaited. When the queue is full the
    reader stops reading, so gRPC flow control slows the client down. The
    response side settles batches in order and sends one cumulative ack for
    every run of batches that are settled at the same moment.
    """

    def __init__(
        self, servicer: IngestServicer, device_id: str | None, read_ahead: int
    ) -> None:
        self._servicer = servicer
        self._device_id = device_id
        self._queue: asyncio.Queue[_Batch | _End] = asyncio.Queue(
            maxsize=max(1, read_ahead)
        )

    async def run(
        self,
        requests: AsyncIterator[ingest_service_pb2.StreamEventsRequest],
        context: grpc.aio.ServicerContext[
            ingest_service_pb2.StreamEventsRequest,
            ingest_service_pb2.StreamEventsResponse,
        ],
    ) -> AsyncIterator[ingest_service_pb2.StreamEventsResponse]:
        """Yield acks until the client half-closes; abort on a stream-level error."""
        reader = asyncio.create_task(self._read(requests), name="ingest-stream-reader")
        try:
            async for response in self._acks(context):
                yield response
        finally:
            # Batches already handed to the event log are still stored. They
            # are not acknowledged, so the client sends them again and the
            # store counts them as duplicates.
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(
        self, requests: AsyncIterator[ingest_service_pb2.StreamEventsRequest]
    ) -> None:
        expected = 1
        try:
            async for request in requests:
                if request.batch_sequence != expected:
                    await self._queue.put(
                        _End(_sequence_error(request.batch_sequence, expected))
                    )
                    return
                expected += 1
                await self._queue.put(await self._accept(request))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            logger.warning("Reading an ingest stream failed: %r", exc)
            await self._queue.put(_End(_read_error(exc)))
            return
        await self._queue.put(_End())

    async def _accept(self, request: ingest_service_pb2.StreamEventsRequest) -> _Batch:
        sequence = request.batch_sequence
        try:
            normalized = await self._servicer.normalize(
                list(request.events), self._device_id
            )
        except ApiError as error:
            return _Batch(sequence, rejection=error)
        task = asyncio.create_task(self._servicer.append(normalized))
        # Marks a failure as retrieved even if the stream ends before the
        # response side awaits this task.
        task.add_done_callback(_consume_outcome)
        return _Batch(sequence, normalized, task)

    async def _acks(
        self,
        context: grpc.aio.ServicerContext[
            ingest_service_pb2.StreamEventsRequest,
            ingest_service_pb2.StreamEventsResponse,
        ],
    ) -> AsyncIterator[ingest_service_pb2.StreamEventsResponse]:
        ack = _Ack()
        item = await self._queue.get()
        while True:
            if isinstance(item, _End):
                if ack.last_sequence:
                    yield ack.response()
                if item.error is not None:
                    await abort(context, item.error)
                return
            failure = await self._settle(item, ack)
            if failure is not None:
                if ack.last_sequence:
                    yield ack.response()
                await abort(context, failure)
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                yield ack.response()
                ack = _Ack()
                item = await self._queue.get()
                continue
            if isinstance(item, _Batch) and not item.ready():
                yield ack.response()
                ack = _Ack()

    async def _settle(self, batch: _Batch, ack: _Ack) -> ApiError | None:
        """Record a batch's outcome in ``ack``; return an error that ends the stream."""
        if batch.rejection is not None:
            rejection_log.log(self._device_id, batch.rejection, batch.sequence)
            ack.reject(batch.sequence, batch.rejection)
            return None
        assert batch.task is not None and batch.normalized is not None
        try:
            result = await batch.task
        except ApiError as error:
            if error.code != grpc.StatusCode.INVALID_ARGUMENT:
                # Storage failed: end the stream so the client reconnects and
                # sends every unacknowledged batch again.
                return error
            rejection_log.log(self._device_id, error, batch.sequence)
            ack.reject(batch.sequence, error)
            return None
        ack.accepted += result.accepted_count
        ack.duplicates += result.duplicate_count + batch.normalized.duplicate_count
        ack.last_sequence = batch.sequence
        return None


def _consume_outcome(task: asyncio.Task[WriteResult]) -> None:
    if not task.cancelled():
        task.exception()


def _sequence_error(received: int, expected: int) -> ApiError:
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"batch_sequence: {received} received where {expected} was expected; "
        "number the batches of each stream 1, 2, 3 and so on, and start again "
        "at 1 on a new stream",
        "INVALID_BATCH_SEQUENCE",
        {"received": str(received), "expected": str(expected)},
        "batch_sequence",
    )


def _read_error(exc: Exception) -> ApiError:
    return ApiError(
        grpc.StatusCode.INTERNAL,
        f"reading the stream failed ({type(exc).__name__}); batches after the "
        "last ack were not stored, so send them again on a new stream",
        "STREAM_READ_FAILED",
    )


class RejectionLog:
    """Logger of rejected batches: one line per interval plus a count of the rest."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._next_s = 0.0
        self._suppressed = 0

    def log(self, device_id: str | None, error: ApiError, sequence: int = 0) -> None:
        """Log one rejection unless another was logged within the interval."""
        now_s = time.monotonic()
        if now_s < self._next_s:
            self._suppressed += 1
            return
        self._next_s = now_s + self._interval_s
        logger.warning(
            "Rejected %s from %s: %s %s (%d more rejections not logged)",
            f"stream batch {sequence}" if sequence else "batch",
            device_id or "the admin credential",
            error.code.name,
            error.message,
            self._suppressed,
        )
        self._suppressed = 0


rejection_log = RejectionLog()
