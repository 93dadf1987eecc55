"""Event log: the durable hand-off between ingest and the store.

Ingest calls ``EventLog.append`` for each validated batch and replies to the
client only when that call returns, so every acknowledged event is durable.
``EmbeddedEventLog`` writes straight to the embedded store with group commit:
one background task collects the batches of concurrent callers and stores
them with one ``write_many`` call, one transaction and one disk sync.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from dataclasses import dataclass

import grpc

from aetus.server.errors import ApiError
from aetus.server.records import NormalizedBatch, TelemetryWriter, WriteResult
from aetus.server.store import StoreFailed

logger = logging.getLogger(__name__)


class EventLog(abc.ABC):
    """Durable log of normalised batches.

    ``start`` is called once before the first ``append``; ``close`` once at
    shutdown. ``append`` may be called from many tasks at once.
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Start background work. Called once, before the first append."""

    @abc.abstractmethod
    async def append(self, batch: NormalizedBatch) -> WriteResult:
        """Store ``batch`` and return once it is durable.

        Retrying a batch is safe: events already stored count as duplicates.

        Raises:
            StoreError: The store rejected the batch, for example with a
                SeriesTypeConflict. Nothing of the batch is stored.
            ApiError: UNAVAILABLE when the log cannot store the batch now
                (storage failure or shutdown). Nothing of the batch is
                acknowledged, and the client should retry.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting batches, store every batch already accepted, then stop.

        Appends that arrive during or after ``close`` fail with UNAVAILABLE.
        """


@dataclass(slots=True)
class _Pending:
    batch: NormalizedBatch
    future: asyncio.Future[WriteResult]
    size_bytes: int


_STOP = object()


class EmbeddedEventLog(EventLog):
    """Event log that writes to an in-process store with group commit.

    Memory is bounded by ``max_pending_bytes``: an append waits while the
    batches queued ahead of it exceed that size. A stream then stops reading,
    so gRPC flow control slows its client down, and a unary caller waits for
    its reply.

    Two attributes exist for fault-injection tests: ``commit_delay_s`` delays
    every commit, and ``pause_commits``/``resume_commits`` hold commits
    back until released.
    """

    def __init__(
        self,
        writer: TelemetryWriter,
        *,
        max_pending_bytes: int = 256 * 1_048_576,
        max_group_batches: int = 512,
        max_group_bytes: int = 64 * 1_048_576,
    ) -> None:
        """Create a log over ``writer``.

        Args:
            writer: The store; its blocking ``write_many`` runs in a worker
                thread.
            max_pending_bytes: Bytes of batches that may wait for a commit
                before new appends wait too. One batch larger than this is
                still accepted when nothing else is pending.
            max_group_batches: Maximum batches stored by one commit.
            max_group_bytes: Maximum bytes of batches stored by one commit.
        """
        self._writer = writer
        self._max_pending_bytes = max_pending_bytes
        self._max_group_batches = max_group_batches
        self._max_group_bytes = max_group_bytes
        self._queue: asyncio.Queue[_Pending | object] = asyncio.Queue()
        self._space = asyncio.Condition()
        self._pending_bytes = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._released = asyncio.Event()
        self._released.set()
        self.commit_delay_s = 0.0
        self.commit_count = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-log-writer")

    async def append(self, batch: NormalizedBatch) -> WriteResult:
        if self._task is None:
            raise RuntimeError("EmbeddedEventLog.append called before start()")
        size = batch_size_bytes(batch)
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        # The closing check and the put happen under one lock, so every batch
        # that is queued sits ahead of the stop marker that close() queues.
        async with self._space:
            await self._space.wait_for(lambda: self._closing or self._fits(size))
            if self._closing:
                raise shutting_down_error()
            self._pending_bytes += size
            self._queue.put_nowait(_Pending(batch, future, size))
        return await future

    async def close(self) -> None:
        async with self._space:
            if not self._closing:
                self._closing = True
                self._queue.put_nowait(_STOP)
            self._space.notify_all()
        self.resume_commits()
        if self._task is not None:
            await self._task
        logger.info("Event log closed after %d commits", self.commit_count)

    def pause_commits(self) -> None:
        """Hold every commit back until ``resume_commits`` (for fault tests)."""
        self._released.clear()

    def resume_commits(self) -> None:
        """Release commits held back by ``pause_commits``."""
        self._released.set()

    @property
    def pending_bytes(self) -> int:
        """Bytes of batches accepted but not yet committed."""
        return self._pending_bytes

    def _fits(self, size: int) -> bool:
        if self._pending_bytes == 0:
            return True
        return self._pending_bytes + size <= self._max_pending_bytes

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            group: list[_Pending] = []
            item = await self._queue.get()
            group_bytes = 0
            while True:
                if item is _STOP:
                    stopping = True
                    break
                assert isinstance(item, _Pending)
                group.append(item)
                group_bytes += item.size_bytes
                if self._group_full(len(group), group_bytes) or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if group:
                await self._commit(group)

    def _group_full(self, count: int, size: int) -> bool:
        return count >= self._max_group_batches or size >= self._max_group_bytes

    async def _commit(self, group: list[_Pending]) -> None:
        try:
            await self._released.wait()
            if self.commit_delay_s > 0:
                await asyncio.sleep(self.commit_delay_s)
            batches = [pending.batch for pending in group]
            results = await asyncio.to_thread(self._writer.write_many, batches)
        except Exception as exc:
            # The store is the boundary to disk and database: whatever it
            # raises means this group is not durable, so every waiter gets a
            # retriable error and the writer goes on with the next group.
            logger.error(
                "Commit of %d batches failed: %s: %s",
                len(group),
                type(exc).__name__,
                exc,
            )
            for pending in group:
                _resolve(pending.future, storage_unavailable_error(exc))
        else:
            self.commit_count += 1
            for pending, result in zip(group, results, strict=True):
                _resolve(pending.future, result)
        finally:
            async with self._space:
                self._pending_bytes -= sum(pending.size_bytes for pending in group)
                self._space.notify_all()


def batch_size_bytes(batch: NormalizedBatch) -> int:
    """Estimate the memory of a batch from its serialised events."""
    return sum(len(event.payload) for event in batch.events) + 64 * len(batch.events)


def shutting_down_error() -> ApiError:
    """Build the UNAVAILABLE error for a batch that arrives during shutdown."""
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        "the server is shutting down and stored nothing from this batch; "
        "retry, which is safe because events are deduplicated",
        "SHUTTING_DOWN",
    )


def storage_unavailable_error(exc: BaseException) -> ApiError:
    """Build the UNAVAILABLE error for a commit that failed in the store."""
    if isinstance(exc, StoreFailed):
        return store_failed_error(exc)
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"storing the batch failed ({type(exc).__name__}) and nothing of it "
        "was acknowledged; retry with backoff, which is safe because events "
        "are deduplicated",
        "STORAGE_UNAVAILABLE",
        {"error_type": type(exc).__name__},
    )


def store_failed_error(exc: StoreFailed) -> ApiError:
    """Build the UNAVAILABLE error for a store that DuckDB has invalidated."""
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        "the telemetry store failed and DuckDB invalidated it, so nothing of "
        "this call was stored or read; calls fail until an operator restarts "
        "the server, whose log names the cause",
        "STORE_FAILED",
        {"error_type": type(exc).__name__},
    )


def _resolve(
    future: asyncio.Future[WriteResult], outcome: WriteResult | BaseException
) -> None:
    # A waiter that was cancelled (client gone) has a done future already.
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


__all__ = [
    "EmbeddedEventLog",
    "EventLog",
    "batch_size_bytes",
    "shutting_down_error",
    "storage_unavailable_error",
    "store_failed_error",
]
