"""A running Envoy with no AETUS server behind it: its config, errors and pages."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import descriptor_pb2

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.app import KEEPALIVE_OPTIONS, MIN_PING_INTERVAL_KEY
from aetus.server.config import Settings
from aetus.server.envoy import (
    DESCRIPTOR_PATH,
)

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """Yield a loopback port that refuses connections: bound, never listening."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def no_upstream(envoy_factory, closed_port: int) -> Any:
    """Envoy whose gRPC server does not run."""
    return await envoy_factory(f"127.0.0.1:{closed_port}")


def _config_dump(front: Any) -> dict[str, Any]:
    status, body = front.envoy.admin_get("/config_dump")
    assert status == 200
    return json.loads(body)


def _section(dump: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in dump["configs"] if c["@type"].endswith(kind))


def _connection_manager(dump: dict[str, Any]) -> dict[str, Any]:
    listeners = _section(dump, "ListenersConfigDump")["static_listeners"]
    listener = next(
        item["listener"]
        for item in listeners
        if item["listener"]["name"] == "front_door"
    )
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def _http_filter(manager: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in manager["http_filters"] if f["name"] == name)["typed_config"]


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path}
    values.update(overrides)
    return Settings.load(environ={}, **values)


async def test_config_grpc_route_has_no_stream_timeouts(no_upstream) -> None:
    manager = _connection_manager(_config_dump(no_upstream))
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    grpc_route = next(
        route["route"]
        for route in routes
        if any(h["name"] == "content-type" for h in route["match"].get("headers", []))
    )

    # The default route timeout (15 s) would end a stream 15 s after the
    # client half-closes; gRPC requests get none and keep the client deadline.
    assert grpc_route["timeout"] == "0s"
    assert grpc_route["max_stream_duration"] == {
        "max_stream_duration": "0s",
        "grpc_timeout_header_max": "0s",
    }
    assert grpc_route["idle_timeout"] == "3600s"
    assert manager["stream_idle_timeout"] == "300s"


async def test_config_transcoder_covers_every_service(no_upstream) -> None:
    manager = _connection_manager(_config_dump(no_upstream))
    transcoder = _http_filter(manager, "envoy.filters.http.grpc_json_transcoder")
    descriptors = descriptor_pb2.FileDescriptorSet.FromString(
        DESCRIPTOR_PATH.read_bytes()
    )
    services = {
        f"{file.package}.{service.name}"
        for file in descriptors.file
        if file.package.startswith("aetus.")
        for service in file.service
    }

    assert set(transcoder["services"]) == services
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["request_validation_options"] == {
        "reject_unknown_method": True,
        "reject_unknown_query_parameters": True,
    }
    assert transcoder.get("query_param_unescape_plus", False) is False
    assert transcoder["print_options"]["always_print_primitive_fields"] is True
    assert transcoder["max_request_body_size"] == Settings().max_request_bytes


async def test_config_no_upstream_pings(no_upstream) -> None:
    clusters = _section(_config_dump(no_upstream), "ClustersConfigDump")
    cluster = next(
        item["cluster"]
        for item in clusters["static_clusters"]
        if item["cluster"]["name"] == "aetus_grpc"
    )
    options = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]["explicit_http_config"]["http2_protocol_options"]
    server_min_ping_ms = dict(KEEPALIVE_OPTIONS)[MIN_PING_INTERVAL_KEY]

    # Upstream pings more often than the server accepts would end every
    # stream on the connection with GOAWAY too_many_pings.
    keepalive = options.get("connection_keepalive")
    if keepalive is not None:
        interval_ms = float(keepalive["interval"].removesuffix("s")) * 1000
        assert interval_ms >= server_min_ping_ms


async def test_process_binds_free_ports_on_loopback(no_upstream) -> None:
    listen_host, _, listen_port = no_upstream.http_address.rpartition(":")
    admin_host, _, admin_port = no_upstream.envoy.admin_address.rpartition(":")

    assert listen_host == "127.0.0.1"
    assert int(listen_port) > 0
    assert admin_host == "127.0.0.1"
    assert int(admin_port) > 0


async def test_process_upstream_down_is_503_json(no_upstream) -> None:
    reply = await no_upstream.http("GET", "/v1/time")

    assert reply.status == 503
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["grpc-status"] == "14"
    body = reply.json()
    assert body["code"] == 14
    assert body["message"].startswith("AETUS gRPC server unavailable")
    assert body["message"].endswith("retry with backoff")


async def test_upstream_down_grpc_unavailable(no_upstream) -> None:
    async with grpc.aio.insecure_channel(no_upstream.http_address) as channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetTime(ingest_service_pb2.GetTimeRequest(), timeout=10)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # A gRPC client gets Envoy's plain text, not a JSON document.
    assert not caught.value.details().startswith("{")


async def test_process_ui_placeholder_page(no_upstream) -> None:
    page = await no_upstream.http("GET", "/")
    post = await no_upstream.http("POST", "/", b"{}", {"content-type": "text/plain"})

    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert b"/v1/" in page.body
    assert post.status == 404
    assert post.json()["code"] == 5


async def test_process_two_envoys_side_by_side(envoy_factory, closed_port) -> None:
    first = await envoy_factory(f"127.0.0.1:{closed_port}")
    second = await envoy_factory(f"127.0.0.1:{closed_port}")

    first_reply = await first.http("GET", "/")
    second_reply = await second.http("GET", "/")

    assert first.http_address != second.http_address
    assert first_reply.status == 200
    assert second_reply.status == 200
