"""End-to-end fixtures: the real AETUS server and real Envoy in front of it.

The server runs in-process on the test module's event loop, so tests that use
these fixtures are async and run on the module loop::

    pytestmark = pytest.mark.asyncio(loop_scope="module")

Blocking HTTP calls go through ``FrontDoor.http``, which runs them in a worker
thread so that the server on the same loop keeps serving.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.server.app import RunningServer, start_server
from aetus.server.config import Settings
from aetus.server.envoy import (
    CLUSTER_NAME,
    TEMPLATE_PATH,
    EnvoyProcess,
    split_address,
)

ADMIN_TOKEN = "test-admin-token"
READ_TOKEN = "test-read-token"
DEVICE_ID = "e2e-dev-01"
HTTP_TIMEOUT_S = 30.0

_HTTP_CLIENT_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="http-client")


@dataclass
class HttpReply:
    """One HTTP response as the client received it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Decode the body as JSON, rejecting bare NaN and Infinity tokens."""
        return json.loads(self.body, parse_constant=_reject_constant)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"response contains the bare JSON token {token}")


@dataclass
class EnvoyFront:
    """A running Envoy and a client for its listener.

    Attributes:
        http_address: host:port of Envoy (HTTP/JSON, protobuf posts, gRPC).
        envoy: The Envoy process, for its stats and logs.
    """

    http_address: str
    envoy: EnvoyProcess

    async def http(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = False,
    ) -> HttpReply:
        """Send one HTTP/1.1 request to Envoy and return the full response.

        With ``chunked``, the body goes out with Transfer-Encoding: chunked
        and no Content-Length.
        """
        # A pool of its own: the server on this loop runs its store writes in
        # the default executor, which waiting clients must not fill.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _HTTP_CLIENT_POOL,
            http_request,
            self.http_address,
            method,
            path,
            body,
            headers or {},
            chunked,
        )

    def upstream_requests(self) -> int:
        """Return how many requests Envoy has sent to the gRPC server."""
        return self.envoy.stat(f"cluster.{CLUSTER_NAME}.upstream_rq_total")


@dataclass
class FrontDoor(EnvoyFront):
    """The real server with Envoy in front and one provisioned device.

    Attributes:
        grpc_address: host:port of the gRPC server itself.
        device_id: The provisioned device.
        device_token: Bearer token of that device.
        admin_token: The admin credential.
        read_token: The read credential.
        server: The in-process server, for its store.
        settings: The server's settings.
    """

    grpc_address: str
    device_id: str
    device_token: str
    admin_token: str
    read_token: str
    server: RunningServer
    settings: Settings

    def bearer(self, token: str) -> dict[str, str]:
        """Return an Authorization header for ``token``."""
        return {"authorization": f"Bearer {token}"}

    def grpc_metadata(self, token: str) -> tuple[tuple[str, str], ...]:
        """Return gRPC call metadata that carries ``token``."""
        return (("authorization", f"Bearer {token}"),)

    def event_count(self, device_id: str | None = None) -> int:
        """Return how many events the store holds for a device."""
        row = self.server.store.get_device(device_id or self.device_id)
        return 0 if row is None else row.event_count


def http_request(
    address: str,
    method: str,
    path: str,
    body: bytes | None,
    headers: Mapping[str, str],
    chunked: bool = False,
) -> HttpReply:
    """Send one request on a fresh connection and read the whole response."""
    host, port = split_address(address, "address")
    connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_S)
    payload: bytes | Iterator[bytes] | None = body
    if chunked and body is not None:
        payload = _chunks(body)
    try:
        connection.request(
            method, path, body=payload, headers=dict(headers), encode_chunked=chunked
        )
        response = connection.getresponse()
        reply_headers = {name.lower(): value for name, value in response.getheaders()}
        return HttpReply(response.status, reply_headers, response.read())
    finally:
        connection.close()


def _chunks(body: bytes, size: int = 65_536) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def provision(
    grpc_address: str, admin_token: str, device_id: str
) -> device_service_pb2.ProvisionDeviceResponse:
    """Register a device over gRPC with the admin token and return its token."""
    async with grpc.aio.insecure_channel(grpc_address) as channel:
        stub = device_service_pb2_grpc.DeviceServiceStub(channel)
        return await stub.ProvisionDevice(
            device_service_pb2.ProvisionDeviceRequest(
                device_id=device_id, hardware_id=f"hw-{device_id}", model="test"
            ),
            metadata=(("authorization", f"Bearer {admin_token}"),),
        )


def server_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Return settings for a test server on free ports with known tokens."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "grpc_address": "127.0.0.1:0",
        "http_address": "127.0.0.1:0",
        "envoy_admin_address": "127.0.0.1:0",
        "admin_token": ADMIN_TOKEN,
        "read_token": READ_TOKEN,
    }
    values.update(overrides)
    return Settings.load(environ={}, **values)


@pytest.fixture(scope="module")
def aetus_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Return the settings of the module's server: a temporary data folder."""
    return server_settings(tmp_path_factory.mktemp("aetus-data"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def aetus_server(aetus_settings: Settings) -> AsyncIterator[RunningServer]:
    """Start the real gRPC server in a temporary data folder on a free port."""
    running = await start_server(aetus_settings)
    try:
        yield running
    finally:
        await running.stop(0)


EnvoyFactory = Callable[..., Awaitable[EnvoyFront]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def envoy_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EnvoyFactory]:
    """Return a function that starts Envoy in front of a gRPC address.

    The function takes the upstream address, optionally another config
    template, and Settings overrides such as ``max_request_bytes``. Every
    Envoy it started stops at the end of the module.
    """
    started: list[EnvoyProcess] = []

    async def start(
        grpc_address: str, *, template_path: Path = TEMPLATE_PATH, **overrides: Any
    ) -> EnvoyFront:
        settings = server_settings(
            tmp_path_factory.mktemp("envoy"), grpc_address=grpc_address, **overrides
        )
        envoy = await asyncio.to_thread(
            EnvoyProcess.start,
            settings,
            settings.data_dir,
            concurrency=1,
            template_path=template_path,
        )
        started.append(envoy)
        return EnvoyFront(envoy.http_address, envoy)

    try:
        yield start
    finally:
        for envoy in started:
            await asyncio.to_thread(envoy.stop)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def front_door(
    aetus_settings: Settings, aetus_server: RunningServer, envoy_factory: EnvoyFactory
) -> FrontDoor:
    """Start real Envoy in front of ``aetus_server`` and provision one device."""
    front = await envoy_factory(aetus_server.address)
    provisioned = await provision(aetus_server.address, ADMIN_TOKEN, DEVICE_ID)
    return FrontDoor(
        http_address=front.http_address,
        envoy=front.envoy,
        grpc_address=aetus_server.address,
        device_id=DEVICE_ID,
        device_token=provisioned.token,
        admin_token=ADMIN_TOKEN,
        read_token=READ_TOKEN,
        server=aetus_server,
        settings=aetus_settings,
    )
