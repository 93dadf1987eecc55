"""Server process wiring: the store, event log, services and the grpc.aio server."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.query.v1 import query_service_pb2, query_service_pb2_grpc
from aetus.server.auth import TokenAuthorizer, load_admin_token
from aetus.server.checks import Limits
from aetus.server.config import Settings
from aetus.server.eventlog import EmbeddedEventLog
from aetus.server.normalize import BootClock, Normalizer
from aetus.server.services.devices import DeviceServicer
from aetus.server.services.ingest import IngestServicer
from aetus.server.services.query import QueryService
from aetus.server.store import EmbeddedStore

logger = logging.getLogger(__name__)

# gRPC core's name for GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS
# (grpc/impl/channel_arg_names.h). Core ignores unknown keys, and its default
# is 5 minutes.
MIN_PING_INTERVAL_KEY = "grpc.http2.min_ping_interval_without_data_ms"
DEFAULT_MIN_PING_INTERVAL_MS = 5_000

# Keepalive policy of the server. Clients may ping every 10 s (the SDK's
# keepalive time) without getting GOAWAY "too_many_pings": the server accepts
# pings 5 s apart even when no call is open. The SDK test compares its own
# channel options with these.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_permit_without_calls", 1),
    (MIN_PING_INTERVAL_KEY, DEFAULT_MIN_PING_INTERVAL_MS),
    # The server's own pings find dead clients of idle long-lived streams.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)

SERVICE_NAMES: tuple[str, ...] = (
    ingest_service_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    device_service_pb2.DESCRIPTOR.services_by_name["DeviceService"].full_name,
    query_service_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,
)


def server_options(
    settings: Settings, min_ping_interval_ms: int = DEFAULT_MIN_PING_INTERVAL_MS
) -> list[tuple[str, int]]:
    """Return the grpc.aio server options: keepalive policy and message size limits.

    Args:
        settings: Server settings; the message size limits come from here.
        min_ping_interval_ms: Shortest interval between client pings on a
            connection without data that the server accepts without a strike.
    """
    keepalive = dict(KEEPALIVE_OPTIONS)
    keepalive[MIN_PING_INTERVAL_KEY] = min_ping_interval_ms
    return [
        *keepalive.items(),
        ("grpc.max_receive_message_length", settings.max_grpc_message_bytes),
        ("grpc.max_send_message_length", settings.max_grpc_message_bytes),
        # Without this, Linux lets a second server bind the same port and
        # take part of the connections.
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class RunningServer:
    """A started server and the parts a caller or test may need.

    Attributes:
        server: The grpc.aio server.
        address: host:port the server listens on, with the bound port.
        port: The bound port (useful when the setting asked for port 0).
        store: The embedded store.
        event_log: The event log; tests use its fault-injection hooks.
        admin_token: The admin credential in force.
        health: The health servicer; NOT_SERVING once shutdown begins.
    """

    server: grpc.aio.Server
    address: str
    port: int
    store: EmbeddedStore
    event_log: EmbeddedEventLog
    admin_token: str
    health: health.aio.HealthServicer

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop gracefully: refuse new calls, finish running ones, drain the log.

        Every batch acknowledged before or during the grace period is durable
        when this returns. Calls still running after ``grace_s`` are cancelled
        and their batches are not acknowledged.
        """
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        await self.event_log.close()
        await asyncio.to_thread(self.store.close)
        logger.info("AETUS gRPC server on %s stopped", self.address)


async def start_server(
    settings: Settings, *, min_ping_interval_ms: int = DEFAULT_MIN_PING_INTERVAL_MS
) -> RunningServer:
    """Open the store, build every service and start serving on ``grpc_address``.

    Port 0 in ``settings.grpc_address`` picks a free port; the bound one is in
    the returned object.

    Args:
        settings: Server settings.
        min_ping_interval_ms: Shortest keepalive ping interval accepted from
            clients; tests lower it to exercise keepalive within seconds.

    Raises:
        RuntimeError: The address cannot be bound.
    """
    store = await asyncio.to_thread(EmbeddedStore, settings.data_dir)
    try:
        return await _start(settings, store, min_ping_interval_ms)
    except BaseException:
        await asyncio.to_thread(store.close)
        raise


async def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT, then stop it gracefully."""
    running = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info("Shutting down: finishing running calls and draining the log")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await running.stop(settings.shutdown_grace_s)


async def _start(
    settings: Settings, store: EmbeddedStore, min_ping_interval_ms: int
) -> RunningServer:
    admin_token = load_admin_token(settings.admin_token, settings.data_dir)
    authorizer = TokenAuthorizer(admin_token, settings.read_token, store)
    limits = Limits(
        max_events_per_batch=settings.max_events_per_batch,
        max_future_time_s=settings.max_future_time_s,
    )
    event_log = EmbeddedEventLog(store)
    await event_log.start()
    normalizer = Normalizer(limits, BootClock(store.boot_time_ns))

    server = grpc.aio.server(options=server_options(settings, min_ping_interval_ms))
    ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(
            normalizer=normalizer,
            event_log=event_log,
            authorizer=authorizer,
            max_request_bytes=settings.max_request_bytes,
            stream_read_ahead_batches=settings.stream_read_ahead_batches,
        ),
        server,
    )
    device_service_pb2_grpc.add_DeviceServiceServicer_to_server(
        DeviceServicer(store, authorizer), server
    )
    query_service_pb2_grpc.add_QueryServiceServicer_to_server(
        QueryService(store, authorizer), server
    )
    health_servicer = _add_health_and_reflection(server)

    try:
        port = server.add_insecure_port(settings.grpc_address)
    except RuntimeError as exc:
        await event_log.close()
        raise RuntimeError(
            f"cannot listen on {settings.grpc_address} ({exc}); choose a free "
            "address with AETUS_GRPC_ADDRESS or --grpc-address"
        ) from exc
    await server.start()
    await _mark_serving(health_servicer)
    _report_store_failure(store, health_servicer, asyncio.get_running_loop())
    address = f"{settings.grpc_address.rsplit(':', 1)[0]}:{port}"
    logger.info(
        "AETUS gRPC server listening on %s (data in %s)", address, settings.data_dir
    )
    return RunningServer(
        server, address, port, store, event_log, admin_token, health_servicer
    )


def _add_health_and_reflection(server: grpc.aio.Server) -> health.aio.HealthServicer:
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    names = (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
    # _MemberSymbolPool forwards every other lookup to the default pool, so
    # reflection can use it, though it is no DescriptorPool subclass.
    pool = _MemberSymbolPool()
    reflection.enable_server_reflection(names, server, pool=pool)  # type: ignore[arg-type]
    return servicer


class _MemberSymbolPool:
    """The default descriptor pool, plus lookups of methods and fields by name.

    The upb pool of protobuf 7 finds services and messages by name but not
    their members, so ``grpcurl describe Service.Method`` would fail. A member
    lives in the file of its parent, which this pool looks up instead.
    """

    def __init__(self) -> None:
        self._pool = descriptor_pool.Default()

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            parent, _, _ = symbol.rpartition(".")
            if not parent:
                raise
            return self.FindFileContainingSymbol(parent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


async def _mark_serving(
    servicer: health.aio.HealthServicer,
    status: int = health_pb2.HealthCheckResponse.SERVING,
) -> None:
    await servicer.set("", status)
    for name in SERVICE_NAMES:
        await servicer.set(name, status)


def _report_store_failure(
    store: EmbeddedStore,
    servicer: health.aio.HealthServicer,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Set health to NOT_SERVING once DuckDB invalidates the store.

    The store logs the failure and rejects every later call with
    UNAVAILABLE; health lets a supervisor see it and restart the server.
    """

    tasks: set[asyncio.Task[None]] = set()

    def mark_not_serving() -> None:
        logger.error(
            "Health set to NOT_SERVING: the telemetry store failed; restart the "
            "server to recover it"
        )
        status = health_pb2.HealthCheckResponse.NOT_SERVING
        task = loop.create_task(_mark_serving(servicer, status))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_failure(_: BaseException) -> None:
        # The store calls this from a worker thread.
        loop.call_soon_threadsafe(mark_not_serving)

    store.add_failure_listener(on_failure)
