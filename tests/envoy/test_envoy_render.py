"""Rendering the Envoy config from settings, and starting and stopping Envoy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aetus.server.config import Settings
from aetus.server.envoy import (
    TEMPLATE_PATH,
    EnvoyError,
    EnvoyProcess,
    render_config,
    validate_config,
)

pytestmark = pytest.mark.envoy


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """Yield a loopback port that refuses connections: bound, never listening."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path}
    values.update(overrides)
    return Settings.load(environ={}, **values)


def test_render_config_passes_envoy_validation(tmp_path: Path) -> None:
    # A folder name with a space and a colon must survive the YAML quoting.
    work_dir = tmp_path / "envoy work: 1"
    work_dir.mkdir()
    config_path = work_dir / "envoy.yaml"
    config_path.write_text(
        render_config(_settings(tmp_path), access_log_path=work_dir / "access.log")
    )

    validate_config(config_path)


@pytest.mark.parametrize(
    "admin_address",
    [
        pytest.param("0.0.0.0:9901", id="any_ipv4"),
        pytest.param("192.0.2.2:9901", id="host_address"),
        pytest.param("[::]:9901", id="any_ipv6"),
    ],
)
def test_render_config_admin_off_loopback_rejected(
    tmp_path: Path, admin_address: str
) -> None:
    settings = _settings(tmp_path, envoy_admin_address=admin_address)

    with pytest.raises(ValueError, match=r"envoy_admin_address.*not on loopback"):
        render_config(settings, access_log_path=tmp_path / "access.log")


@pytest.mark.parametrize(
    ("setting", "address", "error"),
    [
        pytest.param("http_address", "8080", "is not host:port", id="no_host"),
        pytest.param("http_address", "127.0.0.1:", "is not host:port", id="no_port"),
        pytest.param("grpc_address", "127.0.0.1:99999", "use 0 to 65535", id="port"),
        pytest.param("http_address", "front:8080", "not an IP address", id="name"),
    ],
)
def test_render_config_bad_address_named(
    tmp_path: Path, setting: str, address: str, error: str
) -> None:
    settings = _settings(tmp_path, **{setting: address})

    with pytest.raises(ValueError, match=error) as caught:
        render_config(settings, access_log_path=tmp_path / "access.log")

    assert setting in str(caught.value)


@pytest.mark.parametrize(
    ("grpc_address", "upstream", "discovery"),
    [
        pytest.param("0.0.0.0:50051", '"127.0.0.1"', '"STATIC"', id="any_ipv4"),
        pytest.param("[::]:50051", '"::1"', '"STATIC"', id="any_ipv6"),
        pytest.param("localhost:50051", '"127.0.0.1"', '"STATIC"', id="localhost"),
        pytest.param("server:50051", '"server"', '"STRICT_DNS"', id="dns_name"),
    ],
)
def test_render_config_upstream_address(
    tmp_path: Path, grpc_address: str, upstream: str, discovery: str
) -> None:
    settings = _settings(tmp_path, grpc_address=grpc_address)

    config = render_config(settings, access_log_path=tmp_path / "access.log")

    assert f"socket_address: {{address: {upstream}, port_value: 50051}}" in config
    assert f"type: {discovery}" in config


def test_render_config_missing_template_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(EnvoyError, match=r"template not found at .*absent\.yaml"):
        render_config(
            _settings(tmp_path),
            access_log_path=tmp_path / "access.log",
            template_path=missing,
        )


def test_process_bad_config_raises_with_log(tmp_path: Path) -> None:
    template = tmp_path / "broken.yaml"
    template.write_text(
        TEMPLATE_PATH.read_text().replace("type: ${upstream_type}", "type: NOPE")
    )
    settings = _settings(
        tmp_path, http_address="127.0.0.1:0", envoy_admin_address="127.0.0.1:0"
    )

    with pytest.raises(EnvoyError, match="Envoy exited with code") as caught:
        EnvoyProcess.start(settings, tmp_path / "envoy", template_path=template)

    assert "NOPE" in str(caught.value)


def test_process_stop_ends_envoy(tmp_path: Path, closed_port: int) -> None:
    settings = _settings(
        tmp_path,
        grpc_address=f"127.0.0.1:{closed_port}",
        http_address="127.0.0.1:0",
        envoy_admin_address="127.0.0.1:0",
    )
    envoy = EnvoyProcess.start(settings, tmp_path / "envoy", concurrency=1)

    envoy.stop()
    envoy.stop()

    with pytest.raises(OSError):
        envoy.admin_get("/ready", timeout_s=1)
    assert envoy.log_path.is_file()
