"""DeviceService over a real server: provisioning, rotation, revocation, listing."""

from __future__ import annotations

import grpc
import pytest

from aetus.device.v1 import device_service_pb2 as pb
from aetus.ingest.v1 import ingest_service_pb2
from aetus.server.app import RunningServer
from aetus.server.testing import bearer

HARDWARE_ID = "esp32c5-a1b2c3d4e5f6"
INVALID_DEVICE_TOKEN = (
    "the device token is not valid: it was revoked, replaced by a newer token, "
    "or never issued; provision the device again or ask an operator to rotate "
    "its token"
)


async def _provision(devices, admin, **fields: object) -> pb.ProvisionDeviceResponse:
    fields.setdefault("hardware_id", HARDWARE_ID)
    return await devices.ProvisionDevice(
        pb.ProvisionDeviceRequest(**fields), metadata=admin
    )


async def _time_call_code(ingest, token: str) -> grpc.StatusCode:
    try:
        await ingest.GetTime(
            ingest_service_pb2.GetTimeRequest(), metadata=bearer(token)
        )
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_provision_issues_token(devices, ingest, admin) -> None:
    response = await _provision(
        devices, admin, model="esp32c5", site="factory-a", firmware_version=0x010203
    )

    device = response.device
    assert response.token.startswith("aetus_dev_")
    assert len(response.token) > 40
    assert device.device_id == HARDWARE_ID
    assert device.hardware_id == HARDWARE_ID
    assert device.model == "esp32c5"
    assert device.site == "factory-a"
    assert device.firmware_version == 0x010203
    assert device.token_state == pb.TOKEN_STATE_ACTIVE
    assert device.create_time.seconds > 0
    assert not device.HasField("last_seen_time")
    assert await _time_call_code(ingest, response.token) == grpc.StatusCode.OK


async def test_provision_same_hardware_rotates_token(devices, ingest, admin) -> None:
    first = await _provision(devices, admin, device_id="dev-01")
    second = await _provision(devices, admin)

    assert second.device.device_id == "dev-01"
    assert second.token != first.token
    assert second.device.create_time == first.device.create_time
    assert await _time_call_code(ingest, first.token) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert await _time_call_code(ingest, second.token) == grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        pytest.param(
            {"hardware_id": ""},
            grpc.StatusCode.INVALID_ARGUMENT,
            "hardware_id: missing; it must not be empty",
            id="hardware-id-missing",
        ),
        pytest.param(
            {"hardware_id": "esp32 c5"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "hardware_id: 'esp32 c5' contains characters outside letters, digits "
            "and . _ : -",
            id="hardware-id-character",
        ),
        pytest.param(
            {"device_id": "d" * 129},
            grpc.StatusCode.INVALID_ARGUMENT,
            "device_id: length 129 exceeds the limit of 128 characters",
            id="device-id-too-long",
        ),
        pytest.param(
            {"site": "s" * 129},
            grpc.StatusCode.INVALID_ARGUMENT,
            "site: length 129 exceeds the limit of 128 characters",
            id="site-too-long",
        ),
        pytest.param(
            {"model": "esp\x0032"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "model: contains a control character; send printable text",
            id="model-control-character",
        ),
    ],
)
async def test_provision_rejects_invalid_request(
    devices, admin, fields: dict[str, object], code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _provision(devices, admin, **fields)

    assert raised.value.code() == code
    assert raised.value.details() == message


async def test_provision_rejects_taken_ids(devices, admin) -> None:
    await _provision(devices, admin, device_id="dev-01")

    with pytest.raises(grpc.aio.AioRpcError) as other_id:
        await _provision(devices, admin, device_id="dev-02")
    with pytest.raises(grpc.aio.AioRpcError) as taken_id:
        await _provision(
            devices, admin, hardware_id="esp32c5-ffffffffffff", device_id="dev-01"
        )

    assert other_id.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert other_id.value.details() == (
        f"device_id: hardware id '{HARDWARE_ID}' is registered as device 'dev-01'; "
        "send that device_id or leave it empty"
    )
    assert taken_id.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert taken_id.value.details() == (
        f"device_id: device id 'dev-01' belongs to hardware id '{HARDWARE_ID}'; "
        "choose another device_id"
    )


async def test_rotate_token_replaces_old(devices, ingest, admin) -> None:
    provisioned = await _provision(devices, admin, device_id="dev-01")

    rotated = await devices.RotateDeviceToken(
        pb.RotateDeviceTokenRequest(device_id="dev-01"), metadata=admin
    )

    assert rotated.token.startswith("aetus_dev_")
    assert rotated.token != provisioned.token
    assert rotated.device.token_state == pb.TOKEN_STATE_ACTIVE
    assert rotated.device.token_issue_time.ToNanoseconds() >= (
        provisioned.device.token_issue_time.ToNanoseconds()
    )
    assert await _time_call_code(ingest, provisioned.token) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert await _time_call_code(ingest, rotated.token) == grpc.StatusCode.OK


async def test_revoke_token_blocks_device(devices, ingest, admin) -> None:
    provisioned = await _provision(devices, admin, device_id="dev-01")

    revoked = await devices.RevokeDeviceToken(
        pb.RevokeDeviceTokenRequest(device_id="dev-01"), metadata=admin
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await ingest.GetTime(
            ingest_service_pb2.GetTimeRequest(), metadata=bearer(provisioned.token)
        )
    stored = await devices.GetDevice(
        pb.GetDeviceRequest(device_id="dev-01"), metadata=admin
    )
    renewed = await devices.RotateDeviceToken(
        pb.RotateDeviceTokenRequest(device_id="dev-01"), metadata=admin
    )

    assert revoked.token_state == pb.TOKEN_STATE_REVOKED
    assert stored.token_state == pb.TOKEN_STATE_REVOKED
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.details() == INVALID_DEVICE_TOKEN
    assert await _time_call_code(ingest, renewed.token) == grpc.StatusCode.OK


@pytest.mark.parametrize(
    "method", ["GetDevice", "RotateDeviceToken", "RevokeDeviceToken"]
)
async def test_device_calls_unknown_device(devices, admin, method: str) -> None:
    request_type = getattr(pb, f"{method}Request")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(devices, method)(request_type(device_id="dev-99"), metadata=admin)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == (
        "device 'dev-99' is not registered; provision it first or check the id "
        "with ListDevices"
    )


async def test_list_devices_pages(devices, admin, reader) -> None:
    for number in range(5):
        await _provision(
            devices,
            admin,
            hardware_id=f"esp32c5-00000000000{number}",
            site="factory-a" if number % 2 else "factory-b",
        )

    seen: list[str] = []
    pages = 0
    token = ""
    while True:
        page = await devices.ListDevices(
            pb.ListDevicesRequest(page_size=2, page_token=token), metadata=reader
        )
        pages += 1
        assert page.total_size == 5
        assert len(page.devices) <= 2
        seen.extend(device.device_id for device in page.devices)
        token = page.next_page_token
        if not token:
            break
    filtered = await devices.ListDevices(
        pb.ListDevicesRequest(query="FACTORY-A"), metadata=reader
    )

    assert pages == 3
    assert sorted(seen) == [f"esp32c5-00000000000{n}" for n in range(5)]
    assert filtered.total_size == 2
    assert sorted(d.device_id for d in filtered.devices) == [
        "esp32c5-000000000001",
        "esp32c5-000000000003",
    ]
    assert filtered.next_page_token == ""


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        pytest.param(
            {"page_size": -1},
            "page_size: -1 is negative; send 0 for the default of 100 or a size "
            "up to 1000",
            id="negative-page-size",
        ),
        pytest.param(
            {"page_token": "not-a-token"},
            "page_token: not a token from ListDevices; send the next_page_token of "
            "the previous response, or none for the first page",
            id="garbage-token",
        ),
    ],
)
async def test_list_devices_rejects_bad_paging(
    devices, reader, request_fields: dict[str, object], message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await devices.ListDevices(
            pb.ListDevicesRequest(**request_fields), metadata=reader
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == message


async def test_list_devices_token_bound_to_query(devices, admin) -> None:
    for number in range(3):
        await _provision(devices, admin, hardware_id=f"esp32c5-00000000000{number}")
    first = await devices.ListDevices(
        pb.ListDevicesRequest(page_size=1, query="esp32"), metadata=admin
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await devices.ListDevices(
            pb.ListDevicesRequest(page_token=first.next_page_token, query="other"),
            metadata=admin,
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "page_token: the token belongs to another query; repeat the query of the "
        "request that returned it, or start again without a token"
    )


async def test_tokens_stored_only_as_hashes(
    server: RunningServer, devices, admin
) -> None:
    issued = [(await _provision(devices, admin)).token]
    rotated = await devices.RotateDeviceToken(
        pb.RotateDeviceTokenRequest(device_id=HARDWARE_ID), metadata=admin
    )
    issued.append(rotated.token)
    await server.stop(grace_s=1.0)

    files = [path for path in server.store.path.parent.rglob("*") if path.is_file()]
    contents = b"".join(path.read_bytes() for path in files)
    assert files
    for token in issued:
        assert token.encode() not in contents
