"""The server under test in its own process, its RSS sampler, and Envoy."""

from __future__ import annotations

import asyncio
import cProfile
import logging
import multiprocessing
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
import psutil

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.server.config import Settings
from aetus.server.envoy import EnvoyProcess
from aetus.server.native_memory import limit_malloc_arenas

logger = logging.getLogger(__name__)

_SERVER_START_TIMEOUT_S = 60.0


def _serve(settings: Settings, ready: Connection, profile_path: str) -> None:
    """Child process: run the server until SIGTERM, then stop it gracefully."""
    # The same first step as the aetus command, before any thread starts.
    limit_malloc_arenas()
    logging.basicConfig(level=logging.WARNING, format="server: %(message)s")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(_serve_async(settings, ready))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)


async def _serve_async(settings: Settings, ready: Connection) -> None:
    from aetus.server import app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    running = await app.start_server(settings)
    ready.send(running.address)
    ready.close()
    await stop.wait()
    await running.stop(settings.shutdown_grace_s)


@dataclass
class ServerProcess:
    """The AETUS gRPC server running in a child process with its own store.

    Attributes:
        process: The child process.
        address: host:port of the gRPC server.
        settings: Settings of the server, with the bound address.
    """

    process: multiprocessing.process.BaseProcess
    address: str
    settings: Settings

    @classmethod
    def start(
        cls, data_dir: Path, admin_token: str, profile_path: Path | None = None
    ) -> ServerProcess:
        """Start the server on a free loopback port with its data in ``data_dir``.

        Args:
            data_dir: Folder for the embedded store.
            admin_token: Admin credential the server accepts.
            profile_path: When set, the server runs under cProfile and writes
                its statistics (main thread only) to this file at exit.

        Raises:
            RuntimeError: The server did not report its address in time.
        """
        settings = Settings.load(
            {},
            data_dir=data_dir,
            grpc_address="127.0.0.1:0",
            admin_token=admin_token,
            shutdown_grace_s=5,
        )
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve,
            args=(settings, sender, str(profile_path or "")),
            name="aetus-bench-server",
        )
        process.start()
        sender.close()
        try:
            if not receiver.poll(_SERVER_START_TIMEOUT_S):
                raise RuntimeError(
                    f"the server did not start within {_SERVER_START_TIMEOUT_S} s"
                )
            address = receiver.recv()
        except EOFError:
            process.join(5)
            raise RuntimeError(
                f"the server process exited with code {process.exitcode} before "
                "it listened; its error is printed above"
            ) from None
        except BaseException:
            process.kill()
            raise
        return cls(process, address, replace(settings, grpc_address=address))

    @property
    def pid(self) -> int:
        """Process id of the server."""
        assert self.process.pid is not None
        return self.process.pid

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server with SIGTERM; kill it when it does not exit in time."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout_s)
        if self.process.is_alive():
            logger.warning("server %d ignored SIGTERM; killing it", self.pid)
            self.process.kill()
            self.process.join()


@dataclass
class RssSampler:
    """Samples the RSS of processes in a thread and keeps the maximum per phase.

    Attributes:
        interval_s: Seconds between samples.
        maxima: Largest RSS seen, in bytes, per process label and phase.
    """

    pids: dict[str, int]
    interval_s: float = 0.02
    maxima: dict[str, dict[str, int]] = field(default_factory=dict)
    samples: int = 0
    _phase: str = "startup"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Take a last sample and stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def add(self, label: str, pid: int) -> None:
        """Sample one more process from now on."""
        self.pids = {**self.pids, label: pid}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Attribute samples taken inside the block to phase ``name``."""
        self._phase = name
        self._sample()
        try:
            yield
        finally:
            self._sample()
            self._phase = "between phases"

    def max_bytes(self, label: str) -> int:
        """Largest RSS of process ``label`` over every phase."""
        return max(self.maxima.get(label, {}).values(), default=0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()
        self._sample()

    def _sample(self) -> None:
        phase = self._phase
        for label, pid in self.pids.items():
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
            per_phase = self.maxima.setdefault(label, {})
            per_phase[phase] = max(per_phase.get(phase, 0), rss)
        self.samples += 1


def start_envoy(
    server: ServerProcess, work_dir: Path, concurrency: int | None
) -> EnvoyProcess:
    """Start Envoy on free loopback ports in front of ``server``."""
    settings = replace(
        server.settings,
        http_address="127.0.0.1:0",
        envoy_admin_address="127.0.0.1:0",
    )
    return EnvoyProcess.start(settings, work_dir, concurrency=concurrency)


def provision_devices(address: str, admin_token: str, count: int) -> dict[str, str]:
    """Register ``count`` devices and return each device id with its token."""
    metadata = (("authorization", f"Bearer {admin_token}"),)
    tokens = {}
    with grpc.insecure_channel(address) as channel:
        stub = device_service_pb2_grpc.DeviceServiceStub(channel)
        for index in range(count):
            device_id = f"bench-device-{index:02d}"
            response = stub.ProvisionDevice(
                device_service_pb2.ProvisionDeviceRequest(
                    device_id=device_id,
                    hardware_id=f"bench-{index:02d}",
                    model="bench",
                    site="bench",
                ),
                metadata=metadata,
                timeout=30,
            )
            tokens[device_id] = response.token
    return tokens


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user and system) each process has used so far."""
    used = {}
    for label, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        used[label] = float(times.user + times.system)
    return used


def rss_bytes(pid: int) -> int:
    """Resident set size of a process now, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)
