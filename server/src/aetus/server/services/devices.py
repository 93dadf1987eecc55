"""DeviceService: provisioning, token rotation and revocation, and the registry."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf import timestamp_pb2

from aetus.device.v1 import device_service_pb2, device_service_pb2_grpc
from aetus.server.auth import (
    TokenAuthorizer,
    hash_token,
    new_device_token,
    registry_unavailable_error,
)
from aetus.server.checks import ID_CHARACTERS, ID_PATTERN, TEXT_PATTERN
from aetus.server.errors import ApiError, abort, invalid_argument
from aetus.server.records import DeviceRegistry, DeviceRow, StoreError

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 128

T = TypeVar("T")


class DeviceServicer(device_service_pb2_grpc.DeviceServiceServicer):
    """Registers devices and manages their bearer tokens.

    Tokens are shown once, in the reply that issues them; the registry keeps
    only their SHA-256 hashes.
    """

    def __init__(self, registry: DeviceRegistry, authorizer: TokenAuthorizer) -> None:
        self._registry = registry
        self._authorizer = authorizer
        # Provisioning reads, then writes the registry; the lock keeps two
        # calls for one hardware id from both creating a device.
        self._provision_lock = asyncio.Lock()

    async def ProvisionDevice(
        self,
        request: device_service_pb2.ProvisionDeviceRequest,
        context: grpc.aio.ServicerContext[
            device_service_pb2.ProvisionDeviceRequest,
            device_service_pb2.ProvisionDeviceResponse,
        ],
    ) -> device_service_pb2.ProvisionDeviceResponse:
        """Register a device or re-issue its token; the old token stops working."""
        await self._authorizer.require_admin(context)
        try:
            _check_id("hardware_id", request.hardware_id, required=True)
            _check_id("device_id", request.device_id, required=False)
            _check_text("model", request.model)
            _check_text("site", request.site)
            async with self._provision_lock:
                device_id = await self._device_id_for(request)
                token = new_device_token()
                row = await self._call(
                    self._registry.upsert_device,
                    device_id,
                    request.hardware_id,
                    request.model,
                    request.site,
                    request.firmware_version,
                    hash_token(token),
                )
        except ApiError as error:
            await abort(context, error)
        logger.info(
            "Provisioned device %s (hardware id %s) with a new token",
            row.device_id,
            row.hardware_id,
        )
        return device_service_pb2.ProvisionDeviceResponse(
            device=device_message(row), token=token
        )

    async def ListDevices(
        self,
        request: device_service_pb2.ListDevicesRequest,
        context: grpc.aio.ServicerContext[
            device_service_pb2.ListDevicesRequest,
            device_service_pb2.ListDevicesResponse,
        ],
    ) -> device_service_pb2.ListDevicesResponse:
        """Return one page of devices, most recently seen first."""
        await self._authorizer.require_read(context)
        try:
            page_size = _page_size(request.page_size)
            _check_text("query", request.query)
            offset = _decode_page_token(request.page_token, request.query)
            rows, total = await self._call(
                self._registry.list_devices, request.query, offset, page_size
            )
        except ApiError as error:
            await abort(context, error)
        next_offset = offset + len(rows)
        next_token = ""
        if next_offset < total:
            next_token = _encode_page_token(next_offset, request.query)
        return device_service_pb2.ListDevicesResponse(
            devices=[device_message(row) for row in rows],
            next_page_token=next_token,
            total_size=total,
        )

    async def GetDevice(
        self,
        request: device_service_pb2.GetDeviceRequest,
        context: grpc.aio.ServicerContext[
            device_service_pb2.GetDeviceRequest, device_service_pb2.Device
        ],
    ) -> device_service_pb2.Device:
        """Return one device."""
        await self._authorizer.require_read(context)
        try:
            row = await self._existing_device(request.device_id)
        except ApiError as error:
            await abort(context, error)
        return device_message(row)

    async def RotateDeviceToken(
        self,
        request: device_service_pb2.RotateDeviceTokenRequest,
        context: grpc.aio.ServicerContext[
            device_service_pb2.RotateDeviceTokenRequest,
            device_service_pb2.RotateDeviceTokenResponse,
        ],
    ) -> device_service_pb2.RotateDeviceTokenResponse:
        """Issue a new token; the old one stops working at once."""
        await self._authorizer.require_admin(context)
        token = new_device_token()
        try:
            await self._existing_device(request.device_id)
            row = await self._call(
                self._registry.set_token, request.device_id, hash_token(token)
            )
        except ApiError as error:
            await abort(context, error)
        logger.info("Rotated the token of device %s", row.device_id)
        return device_service_pb2.RotateDeviceTokenResponse(
            device=device_message(row), token=token
        )

    async def RevokeDeviceToken(
        self,
        request: device_service_pb2.RevokeDeviceTokenRequest,
        context: grpc.aio.ServicerContext[
            device_service_pb2.RevokeDeviceTokenRequest, device_service_pb2.Device
        ],
    ) -> device_service_pb2.Device:
        """Revoke a device's token until RotateDeviceToken issues a new one."""
        await self._authorizer.require_admin(context)
        try:
            await self._existing_device(request.device_id)
            row = await self._call(self._registry.set_token, request.device_id, None)
        except ApiError as error:
            await abort(context, error)
        logger.info("Revoked the token of device %s", row.device_id)
        return device_message(row)

    async def _device_id_for(
        self, request: device_service_pb2.ProvisionDeviceRequest
    ) -> str:
        """Return the device id to provision, rejecting ids owned by other hardware."""
        by_hardware = await self._call(
            self._registry.find_device_by_hardware_id, request.hardware_id
        )
        if by_hardware is not None:
            if request.device_id and request.device_id != by_hardware.device_id:
                raise _already_exists(
                    "device_id",
                    f"hardware id {request.hardware_id!r} is registered as device "
                    f"{by_hardware.device_id!r}; send that device_id or leave it "
                    "empty",
                )
            return by_hardware.device_id
        device_id = request.device_id or request.hardware_id
        by_id = await self._call(self._registry.get_device, device_id)
        if by_id is not None and by_id.hardware_id != request.hardware_id:
            raise _already_exists(
                "device_id",
                f"device id {device_id!r} belongs to hardware id "
                f"{by_id.hardware_id!r}; choose another device_id",
            )
        return device_id

    async def _existing_device(self, device_id: str) -> DeviceRow:
        _check_id("device_id", device_id, required=True)
        row = await self._call(self._registry.get_device, device_id)
        if row is None:
            raise _not_found(device_id)
        return row

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        """Run a blocking registry call in a worker thread, mapping its errors."""
        try:
            return await asyncio.to_thread(function, *args)
        except KeyError as exc:
            # The store raises a KeyError subclass for a device that a
            # concurrent call removed between the check and the write.
            raise _not_found(str(args[0])) from exc
        except StoreError as exc:
            logger.error("Device registry call failed: %s: %s", type(exc).__name__, exc)
            raise registry_unavailable_error(exc) from exc


def device_message(row: DeviceRow) -> device_service_pb2.Device:
    """Convert a registry row to the Device resource."""
    device = device_service_pb2.Device(
        device_id=row.device_id,
        hardware_id=row.hardware_id,
        model=row.model,
        site=row.site,
        firmware_version=row.firmware_version,
        token_state=(
            device_service_pb2.TOKEN_STATE_REVOKED
            if row.revoked
            else device_service_pb2.TOKEN_STATE_ACTIVE
        ),
        create_time=_timestamp(row.create_time_ns),
        token_issue_time=_timestamp(row.token_issue_time_ns),
        last_boot_id=row.last_boot_id,
        event_count=row.event_count,
    )
    if row.last_seen_time_ns is not None:
        device.last_seen_time.CopyFrom(_timestamp(row.last_seen_time_ns))
    return device


def _timestamp(time_ns: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time_ns)
    return stamp


def _check_id(field: str, value: str, *, required: bool) -> None:
    if not value:
        if required:
            raise invalid_argument(
                f"{field}: missing; it must not be empty", field=field
            )
        return
    if len(value) > MAX_ID_LENGTH:
        raise invalid_argument(
            f"{field}: length {len(value)} exceeds the limit of {MAX_ID_LENGTH} "
            "characters",
            field=field,
            length=len(value),
            limit=MAX_ID_LENGTH,
        )
    if not ID_PATTERN.fullmatch(value):
        raise invalid_argument(
            f"{field}: {value!r} contains characters outside {ID_CHARACTERS}",
            field=field,
            value=value,
        )


def _check_text(field: str, value: str) -> None:
    if len(value) > MAX_TEXT_LENGTH:
        raise invalid_argument(
            f"{field}: length {len(value)} exceeds the limit of {MAX_TEXT_LENGTH} "
            "characters",
            field=field,
            length=len(value),
            limit=MAX_TEXT_LENGTH,
        )
    if not TEXT_PATTERN.fullmatch(value):
        raise invalid_argument(
            f"{field}: contains a control character; send printable text",
            field=field,
        )


def _page_size(requested: int) -> int:
    if requested < 0:
        raise invalid_argument(
            f"page_size: {requested} is negative; send 0 for the default of "
            f"{DEFAULT_PAGE_SIZE} or a size up to {MAX_PAGE_SIZE}",
            field="page_size",
            value=requested,
        )
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _encode_page_token(offset: int, query: str) -> str:
    raw = json.dumps({"offset": offset, "query": query}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_page_token(token: str, query: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = state["offset"]
        token_query = state["query"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid_argument(
            "page_token: not a token from ListDevices; send the next_page_token "
            "of the previous response, or none for the first page",
            field="page_token",
        ) from None
    if not isinstance(offset, int) or offset < 0 or token_query != query:
        raise invalid_argument(
            "page_token: the token belongs to another query; repeat the query "
            "of the request that returned it, or start again without a token",
            field="page_token",
        )
    return offset


def _not_found(device_id: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.NOT_FOUND,
        f"device {device_id!r} is not registered; provision it first or check "
        "the id with ListDevices",
        "DEVICE_NOT_FOUND",
        {"device_id": device_id},
        "device_id",
    )


def _already_exists(field: str, message: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"{field}: {message}",
        "DEVICE_ID_TAKEN",
        {"field": field},
        field,
    )
