"""Authentication and authorisation over a real server, and the admin token file."""

from __future__ import annotations

import logging
import stat
import time

import grpc
import pytest

from aetus.device.v1 import device_service_pb2 as pb
from aetus.ingest.v1 import ingest_service_pb2
from aetus.server.auth import load_admin_token
from aetus.server.testing import bearer, running_server
from aetus.telemetry.v1 import telemetry_pb2


def _ingest_request(device_id: str) -> ingest_service_pb2.IngestEventsRequest:
    event = telemetry_pb2.Event(device_id=device_id, boot_id="boot-1", sequence=1)
    event.time.FromNanoseconds(time.time_ns())
    event.metrics.metrics.add(name="temp", double_value=20.0)
    return ingest_service_pb2.IngestEventsRequest(events=[event])


async def _ingest_error(ingest, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(_ingest_request("dev-01"), metadata=metadata)
    return raised.value


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param(
            (),
            "missing credential; send the metadata (HTTP header) "
            "'authorization: Bearer <token>'",
            id="missing",
        ),
        pytest.param(
            (("authorization", "Basic dXNlcjpwYXNz"),),
            "the authorization metadata is not of the form 'Bearer <token>'; "
            "send the metadata (HTTP header) 'authorization: Bearer <token>'",
            id="basic-scheme",
        ),
        pytest.param(
            (("authorization", "Bearer"),),
            "the authorization metadata is not of the form 'Bearer <token>'; "
            "send the metadata (HTTP header) 'authorization: Bearer <token>'",
            id="empty-token",
        ),
        pytest.param(
            bearer("aetus_dev_unknown"),
            "the device token is not valid: it was revoked, replaced by a newer "
            "token, or never issued; provision the device again or ask an "
            "operator to rotate its token",
            id="unknown-device-token",
        ),
        pytest.param(
            bearer("guessed"),
            "the token is not a valid device, read or admin token; check the "
            "credential configured for this client",
            id="unknown-token",
        ),
    ],
)
async def test_auth_rejects_bad_credential(ingest, metadata, message: str) -> None:
    error = await _ingest_error(ingest, metadata)

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == message


@pytest.mark.parametrize(
    "header",
    [
        "{token}",
        "Token {token}",
        "{token} Bearer",
        "Bearer:{token}",
        "Basic {token}",
    ],
)
async def test_auth_malformed_header_hides_token(ingest, server, header) -> None:
    token = server.admin_token
    metadata = (("authorization", header.format(token=token)),)

    error = await _ingest_error(ingest, metadata)
    visible_text = error.details() + repr(error.trailing_metadata())

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "'authorization: Bearer <token>'" in error.details()
    for start in range(len(token) - 5):
        assert token[start : start + 6] not in visible_text, token[start : start + 6]


async def test_auth_accepts_lower_case_scheme(ingest, server) -> None:
    metadata = (("authorization", f"bearer {server.admin_token}"),)

    response = await ingest.IngestEvents(_ingest_request("dev-01"), metadata=metadata)

    assert response.accepted_count == 1


async def test_auth_rejects_foreign_device(devices, ingest, admin) -> None:
    provisioned = await devices.ProvisionDevice(
        pb.ProvisionDeviceRequest(hardware_id="esp32c5-a1b2c3d4e5f6"), metadata=admin
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.IngestEvents(
            _ingest_request("dev-01"), metadata=bearer(provisioned.token)
        )

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == (
        "events[0].device_id: 'dev-01' is not the authenticated device "
        "'esp32c5-a1b2c3d4e5f6'; a device token may only send its own device id"
    )


async def test_auth_device_token_not_admin(devices, admin) -> None:
    provisioned = await devices.ProvisionDevice(
        pb.ProvisionDeviceRequest(hardware_id="esp32c5-a1b2c3d4e5f6"), metadata=admin
    )

    with pytest.raises(grpc.aio.AioRpcError) as provision:
        await devices.ProvisionDevice(
            pb.ProvisionDeviceRequest(hardware_id="esp32c5-000000000000"),
            metadata=bearer(provisioned.token),
        )
    with pytest.raises(grpc.aio.AioRpcError) as listing:
        await devices.ListDevices(
            pb.ListDevicesRequest(), metadata=bearer(provisioned.token)
        )

    assert provision.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert provision.value.details() == (
        "this call needs the admin token; the device token is not allowed"
    )
    assert listing.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert listing.value.details() == (
        "this call needs the read or admin token; the device token is not allowed"
    )


async def test_auth_read_token_reads_only(devices, ingest, reader) -> None:
    listing = await devices.ListDevices(pb.ListDevicesRequest(), metadata=reader)
    clock = await ingest.GetTime(ingest_service_pb2.GetTimeRequest(), metadata=reader)

    with pytest.raises(grpc.aio.AioRpcError) as provision:
        await devices.ProvisionDevice(
            pb.ProvisionDeviceRequest(hardware_id="esp32c5-000000000000"),
            metadata=reader,
        )
    ingest_error = await _ingest_error(ingest, reader)

    assert listing.total_size == 0
    assert clock.unix_time_ns > 0
    assert provision.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert ingest_error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert ingest_error.details() == (
        "this call needs a device token or the admin token; the read token is "
        "not allowed"
    )


async def test_auth_never_logs_tokens(devices, ingest, admin, server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    provisioned = await devices.ProvisionDevice(
        pb.ProvisionDeviceRequest(hardware_id="esp32c5-a1b2c3d4e5f6"), metadata=admin
    )
    await ingest.IngestEvents(
        _ingest_request("esp32c5-a1b2c3d4e5f6"), metadata=bearer(provisioned.token)
    )
    await _ingest_error(ingest, bearer("aetus_dev_SECRET_123"))
    await _ingest_error(ingest, bearer(provisioned.token))

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Provisioned device esp32c5-a1b2c3d4e5f6" in logged
    assert provisioned.token not in logged
    assert server.admin_token not in logged
    assert "SECRET_123" not in logged


def test_admin_token_file_created_private(tmp_path) -> None:
    token = load_admin_token("", tmp_path)
    path = tmp_path / "admin-token"

    assert token.startswith("aetus_admin_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8").strip() == token
    assert load_admin_token("", tmp_path) == token
    assert load_admin_token("configured", tmp_path) == "configured"
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]


def test_admin_token_file_empty_rejected(tmp_path) -> None:
    (tmp_path / "admin-token").write_text("\n", encoding="utf-8")

    with pytest.raises(ValueError) as raised:
        load_admin_token("", tmp_path)

    assert str(raised.value) == (
        f"admin token file {tmp_path / 'admin-token'} is empty; delete it or set "
        "AETUS_ADMIN_TOKEN"
    )


async def test_admin_token_survives_restart(tmp_path) -> None:
    async with running_server(tmp_path) as first:
        token = first.admin_token
    async with running_server(tmp_path) as second:
        assert second.admin_token == token
    async with running_server(tmp_path, admin_token="configured") as third:
        assert third.admin_token == "configured"
