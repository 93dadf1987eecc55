"""``aetus serve`` and ``aetus up``: start the parts, show where they are, stop.

``aetus up`` starts, in this order: the gRPC server in this process, Envoy as
a child process, and the demo device, which streams to the server over the
SDK's bidi stream. On Ctrl-C or SIGTERM it stops them in reverse order. The
demo device first sends what it has and waits for the acks. Then Envoy stops,
and then the server stops after its in-flight calls. So every acknowledged
event is durable when the command returns.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TextIO

import duckdb

from aetus.sdk import AsyncClient, StreamResult
from aetus.server import app, banner
from aetus.server.cli_client import provision_device
from aetus.server.config import ENVIRONMENT, Settings
from aetus.server.credentials import (
    device_token_path,
    read_token_file,
    write_token_file,
)
from aetus.server.demo import DEMO_DEVICE_ID, DEMO_HARDWARE_ID, DemoDevice
from aetus.server.envoy import EnvoyError, EnvoyProcess, split_address

__all__ = [
    "DataDirInUseError",
    "PortInUseError",
    "check_ports",
    "run_server_only",
    "run_stack",
]

logger = logging.getLogger(__name__)

# How often ``aetus up`` checks that Envoy still runs, in seconds.
_ENVOY_POLL_S = 0.5

# DuckDB (1.x) names the process that holds the file lock in its IOException.
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*?\(PID (\d+)\)")


class PortInUseError(Exception):
    """A configured address is taken; the message names the setting to change."""


class DataDirInUseError(Exception):
    """The embedded store of the data folder is open in another process."""


async def start_server(settings: Settings) -> app.RunningServer:
    """Start the gRPC server, naming the holder when the data folder is locked.

    Raises:
        DataDirInUseError: Another process has the embedded store open.
    """
    try:
        return await app.start_server(settings)
    except duckdb.IOException as exc:
        if "Could not set lock" not in str(exc):
            raise
        raise DataDirInUseError(_data_dir_message(settings, str(exc))) from exc


def _data_dir_message(settings: Settings, detail: str) -> str:
    match = _LOCK_HOLDER.search(detail)
    holder = f"process {match.group(1)}" if match else "another process"
    return (
        f"data folder {settings.data_dir} is in use by {holder}, which has its "
        f"store open; stop that process or choose another folder with "
        f"--data-dir or {ENVIRONMENT['data_dir']}"
    )


def check_ports(settings: Settings, names: tuple[str, ...]) -> None:
    """Bind each configured address once to find a taken port before starting.

    Port 0 is skipped, since the system picks a free port for it.

    Raises:
        PortInUseError: An address is in use or cannot be bound.
    """
    for name in names:
        address = getattr(settings, name)
        host, port = split_address(address, name)
        if port == 0:
            continue
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise PortInUseError(_port_message(name, address, exc)) from exc


def _port_message(name: str, address: str, exc: OSError) -> str:
    flag = "--" + name.replace("_", "-")
    fix = f"choose another with {flag} or {ENVIRONMENT[name]}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {address} ({name}) is already in use; stop what uses it or {fix}"
    return f"cannot listen on {address} ({name}): {exc.strerror}; {fix}"


async def run_server_only(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Run the gRPC server until SIGINT or SIGTERM; return the exit status."""
    try:
        check_ports(settings, ("grpc_address",))
    except PortInUseError as exc:
        print(f"aetus serve: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with _signal_handlers(loop, stop):
        try:
            server = await start_server(settings)
        except DataDirInUseError as exc:
            print(f"aetus serve: {exc}", file=sys.stderr)
            return 1
        try:
            out.write(f"AETUS gRPC server on {server.address}; Ctrl-C stops it.\n")
            out.flush()
            await _wait_for(stop)
        finally:
            await server.stop(settings.shutdown_grace_s)
    return 0


@dataclass
class _Parts:
    """Parts that ``aetus up`` started, kept so that it can stop each one."""

    server: app.RunningServer
    envoy: EnvoyProcess | None = None
    demo_device: DemoDevice | None = None
    demo_client: AsyncClient | None = None
    demo_run: asyncio.Task[StreamResult] | None = None


async def run_stack(
    settings: Settings, *, demo: bool = True, out: TextIO = sys.stdout
) -> int:
    """Run server, Envoy and demo device until SIGINT or SIGTERM.

    Returns:
        0 after a stop by signal, 1 when a part failed to start or stopped on
        its own while the stack ran.
    """
    names = ("grpc_address", "http_address", "envoy_admin_address")
    try:
        check_ports(settings, names)
    except PortInUseError as exc:
        print(f"aetus up: {exc}", file=sys.stderr)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # The handlers stay installed until everything has stopped, so a second
    # Ctrl-C cannot interrupt the shutdown halfway.
    with _signal_handlers(loop, stop):
        try:
            parts = _Parts(await start_server(settings))
        except DataDirInUseError as exc:
            print(f"aetus up: {exc}", file=sys.stderr)
            return 1
        failure: str | None = "a part failed to start"
        try:
            await _start_front_door_and_demo(parts, settings, demo, out)
            failure = await _wait_for(stop, parts)
        except EnvoyError as exc:
            print(f"aetus up: Envoy failed to start: {exc}", file=sys.stderr)
        finally:
            await _stop(parts, settings, out)
    if failure is not None:
        print(f"aetus up: {failure}; stopped the other parts", file=sys.stderr)
        return 1
    out.write("Stopped. Every acknowledged event is stored.\n")
    out.flush()
    return 0


async def _start_front_door_and_demo(
    parts: _Parts, settings: Settings, demo: bool, out: TextIO
) -> None:
    live = replace(settings, grpc_address=parts.server.address)
    parts.envoy = await asyncio.to_thread(EnvoyProcess.start, live)
    live = replace(
        live,
        http_address=parts.envoy.http_address,
        envoy_admin_address=parts.envoy.admin_address,
    )
    provisioned = await _start_demo(parts, live) if demo else False
    banner.print_banner(live, out, demo=demo, demo_provisioned=provisioned)


async def _start_demo(parts: _Parts, settings: Settings) -> bool:
    """Start the demo device, provisioning it on first start.

    Returns:
        Whether the demo device was provisioned at this start.
    """
    token_path = device_token_path(settings.data_dir, DEMO_DEVICE_ID)
    provisioned = False
    if token_path.is_file():
        token = read_token_file(token_path)
    else:
        admin = parts.server.admin_token
        async with AsyncClient(settings.grpc_address, token=admin) as admin_client:
            _, token = await provision_device(
                admin_client,
                DEMO_HARDWARE_ID,
                device_id=DEMO_DEVICE_ID,
                model="host",
                site="demo",
            )
        write_token_file(token_path, token)
        provisioned = True
    parts.demo_client = AsyncClient(settings.grpc_address, token=token)
    parts.demo_device = DemoDevice(parts.demo_client)
    parts.demo_run = asyncio.create_task(parts.demo_device.run(), name="aetus-demo")
    return provisioned


async def _wait_for(stop: asyncio.Event, parts: _Parts | None = None) -> str | None:
    """Wait until ``stop`` is set or a part of ``parts`` ends on its own.

    Returns:
        None after ``stop``, else which part stopped and where its log is.
    """
    owned: dict[asyncio.Future[Any], str] = {asyncio.create_task(stop.wait()): ""}
    if parts is not None:
        # Shielded, because cancelling wait_for_termination() cancels the
        # future that grpc.aio's own stop() awaits. The inner task ends when
        # _stop stops the server.
        server_end = asyncio.shield(parts.server.server.wait_for_termination())
        owned[server_end] = "server"
        if parts.envoy is not None:
            owned[asyncio.create_task(_envoy_exit(parts.envoy))] = "envoy"
    # The demo task belongs to ``parts``; _stop awaits it, so it is not cancelled.
    watched = dict(owned)
    if parts is not None and parts.demo_run is not None:
        watched[parts.demo_run] = "demo"
    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    for task in owned:
        task.cancel()
    if stop.is_set() or parts is None:
        return None
    return _describe_failure(watched[next(iter(done))], parts)


async def _envoy_exit(envoy: EnvoyProcess) -> None:
    # Polling, since subprocess.Popen offers no awaitable exit and a thread
    # blocked in wait() would race EnvoyProcess.stop() for the exit status.
    while envoy.returncode is None:  # noqa: ASYNC110
        await asyncio.sleep(_ENVOY_POLL_S)


def _describe_failure(part: str, parts: _Parts) -> str:
    if part == "envoy" and parts.envoy is not None:
        return (
            f"Envoy (PID {parts.envoy.pid}) stopped unexpectedly with exit status "
            f"{parts.envoy.returncode}; its log is {parts.envoy.log_path}"
        )
    if part == "demo" and parts.demo_run is not None:
        error = parts.demo_run.exception() if not parts.demo_run.cancelled() else None
        return (
            f"the demo device stopped unexpectedly ({error!r}); the log lines "
            "above on stderr say why"
        )
    return (
        f"the gRPC server on {parts.server.address} stopped unexpectedly; the log "
        "lines above on stderr say why"
    )


@contextmanager
def _signal_handlers(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event
) -> Iterator[None]:
    def request_stop(number: int) -> None:
        if stop.is_set():
            logger.warning("Already stopping; waiting for the last acks")
        else:
            logger.info("Received %s; stopping", signal.Signals(number).name)
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, request_stop, number)
    try:
        yield
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


async def _stop(parts: _Parts, settings: Settings, out: TextIO) -> None:
    """Stop the demo device (after its last acks), then Envoy, then the server."""
    out.write("Stopping the demo device, Envoy and the server...\n")
    out.flush()
    if parts.demo_device is not None and parts.demo_run is not None:
        parts.demo_device.stop()
        try:
            await parts.demo_run
        except Exception:
            logger.exception("Demo device failed while stopping")
    if parts.demo_client is not None:
        await parts.demo_client.close()
    if parts.envoy is not None:
        await asyncio.to_thread(parts.envoy.stop)
    await parts.server.stop(settings.shutdown_grace_s)
