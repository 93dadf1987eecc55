"""The synchronous client: a thin wrapper that runs AsyncClient on a loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, Unpack

import grpc

from aetus.query.v1 import query_service_pb2
from aetus.sdk._client import (
    AsyncClient,
    ClientOptions,
    IngestResult,
    ReadModeName,
    ServerTime,
)
from aetus.sdk._config import ClientSettings
from aetus.sdk._read import StreamData
from aetus.sdk._stream import EventStream
from aetus.sdk._stream_results import RejectionCallback, StreamResult
from aetus.sdk._times import TimeLike
from aetus.telemetry.v1 import telemetry_pb2

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread, for blocking callers.

    Blocking callers can be in any thread, including one that runs its own
    event loop (a notebook), because the client's loop is separate.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="aetus-sdk-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt in the caller cancels the work on the loop too.
            future.cancel()
            raise

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class Client:
    """Blocking client of an AETUS server; each method runs the AsyncClient one.

    Takes the same arguments as AsyncClient and raises the same errors. The
    client runs its own event loop in a background thread, so it also works
    inside a notebook whose loop is already running. Close it, or use it as a
    context manager, to stop that thread.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
        **settings: Unpack[ClientOptions],
    ) -> None:
        self._runner = _LoopThread()
        self._closed = False

        async def create() -> AsyncClient:
            return AsyncClient(
                target,
                credentials=credentials,
                channel_options=channel_options,
                **settings,
            )

        try:
            self._client = self._runner.run(create())
        except BaseException:
            self._runner.stop()
            raise

    @property
    def settings(self) -> ClientSettings:
        """The resolved settings."""
        return self._client.settings

    @property
    def async_client(self) -> AsyncClient:
        """The wrapped AsyncClient; its coroutines run only on the client's loop."""
        return self._client

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the loop thread. Later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._runner.run(self._client.close())
        self._runner.stop()

    def send_events(self, events: Iterable[telemetry_pb2.Event]) -> IngestResult:
        """Store a batch of events. See AsyncClient.send_events."""
        return self._runner.run(self._client.send_events(list(events)))

    def send_events_http(self, events: Iterable[telemetry_pb2.Event]) -> IngestResult:
        """Store a batch with an HTTP POST. See AsyncClient.send_events_http."""
        return self._runner.run(self._client.send_events_http(list(events)))

    def get_time(self) -> ServerTime:
        """Read the server's clock. See AsyncClient.get_time."""
        return self._runner.run(self._client.get_time())

    def list_streams(self, device_id: str) -> list[query_service_pb2.Stream]:
        """List a device's streams. See AsyncClient.list_streams."""
        return self._runner.run(self._client.list_streams(device_id))

    def read_stream(
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
        """Read one stream into numpy arrays. See AsyncClient.read_stream."""
        return self._runner.run(
            self._client.read_stream(
                device_id,
                stream,
                start_time=start_time,
                end_time=end_time,
                channels=channels,
                mode=mode,
                max_points=max_points,
                calendar_unit=calendar_unit,
                time_zone=time_zone,
            )
        )

    def open_stream(
        self, *, on_rejection: RejectionCallback | None = None
    ) -> SyncEventStream:
        """Open a bidi stream sender. See AsyncClient.open_stream.

        ``on_rejection`` runs on the client's loop thread.
        """

        async def open_() -> EventStream:
            return self._client.open_stream(on_rejection=on_rejection)

        return SyncEventStream(self._runner, self._runner.run(open_()))


class SyncEventStream:
    """Blocking view of an EventStream; each method runs the async one."""

    def __init__(self, runner: _LoopThread, stream: EventStream) -> None:
        self._runner = runner
        self._stream = stream

    def __enter__(self) -> SyncEventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def unacked_batch_count(self) -> int:
        """Sealed batches not yet covered by an ack."""
        return self._stream.unacked_batch_count

    def send(self, event: telemetry_pb2.Event) -> None:
        """Queue one event, blocking while the window is full. See EventStream.send."""
        self._runner.run(self._stream.send(event))

    def send_many(self, events: Iterable[telemetry_pb2.Event]) -> None:
        """Queue events in order. See EventStream.send_many."""
        self._runner.run(self._stream.send_many(list(events)))

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every batch so far is acked. See EventStream.flush."""
        self._runner.run(self._stream.flush(timeout_s))

    def close(self, timeout_s: float | None = None) -> StreamResult:
        """Half-close and wait for the last acks. See EventStream.close."""
        return self._runner.run(self._stream.close(timeout_s))

    def result(self) -> StreamResult:
        """Return the counters so far."""
        return self._stream.result()
