"""Credentials: device bearer tokens, the admin token and the read token.

Tokens are never stored or logged in clear. Device tokens are kept as SHA-256
hashes in the device registry; the admin and read tokens are compared through
their hashes in constant time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import grpc

from aetus.server.errors import ApiError, abort
from aetus.server.eventlog import store_failed_error
from aetus.server.records import DeviceRegistry, StoreError
from aetus.server.store import StoreFailed

logger = logging.getLogger(__name__)

DEVICE_TOKEN_PREFIX = "aetus_dev_"
ADMIN_TOKEN_PREFIX = "aetus_admin_"
ADMIN_TOKEN_FILE = "admin-token"
AUTHORIZATION_KEY = "authorization"


class Authorizer(Protocol):
    """Checks the caller's credential; each method aborts the RPC when it fails.

    The credential travels in the ``authorization`` metadata as
    ``Bearer <token>``. Failures end the call with UNAUTHENTICATED (no or
    unknown credential) or PERMISSION_DENIED (valid but not allowed).
    """

    async def require_admin(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Allow only the admin credential."""
        ...

    async def require_read(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Allow the read credential or the admin credential."""
        ...

    async def require_device(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """Allow an active device token and return the device id it belongs to."""
        ...


class Role(Enum):
    """Kind of credential a caller presented."""

    ADMIN = "admin"
    READ = "read"
    DEVICE = "device"


def new_device_token() -> str:
    """Generate a device token: the prefix and 256 random bits, URL-safe."""
    return DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """Return the SHA-256 digest under which a token is stored and compared."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def load_admin_token(configured: str, data_dir: Path) -> str:
    """Return the admin token: the configured one, or the one kept in ``data_dir``.

    When none is configured, the token is read from ``data_dir/admin-token``,
    which is created on first start with a new random token and mode 0600.

    Raises:
        ValueError: The token file exists but is empty.
    """
    if configured:
        return configured
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        return _read_admin_token(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    try:
        # link() fails when the name exists, so a token file appears whole or
        # not at all, and two servers starting at once never replace each
        # other's token.
        os.link(temporary, path)
    except FileExistsError:
        return _read_admin_token(path)
    finally:
        temporary.unlink()
    logger.info("Generated the admin token and stored it in %s (mode 0600)", path)
    return token


def _read_admin_token(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning(
            "Admin token file %s has mode %o, readable by others; run chmod 600",
            path,
            mode,
        )
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(
            f"admin token file {path} is empty; delete it or set AETUS_ADMIN_TOKEN"
        )
    return token


class TokenAuthorizer:
    """Authorizer over the admin token, an optional read token and device tokens.

    The admin credential may also ingest for any device, as gateways, scripts
    and the demo fleet do. A device token may only send its own device id.
    """

    def __init__(
        self, admin_token: str, read_token: str, registry: DeviceRegistry
    ) -> None:
        """Create an authorizer.

        Args:
            admin_token: The admin credential; must not be empty.
            read_token: The read credential, or empty when only the admin
                token may read.
            registry: Device registry that maps token hashes to devices.
        """
        if not admin_token:
            raise ValueError("admin_token must not be empty")
        self._admin_hash = hash_token(admin_token)
        self._read_hash = hash_token(read_token) if read_token else None
        self._registry = registry

    async def require_admin(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Allow only the admin credential."""
        role, _ = await self._identify(context)
        if role is not Role.ADMIN:
            await abort(context, _forbidden(role, "the admin token"))

    async def require_read(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Allow the read credential or the admin credential."""
        role, _ = await self._identify(context)
        if role is Role.DEVICE:
            await abort(context, _forbidden(role, "the read or admin token"))

    async def require_device(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        """Allow an active device token and return the device id it belongs to."""
        role, device_id = await self._identify(context)
        if device_id is None:
            await abort(context, _forbidden(role, "a device token"))
        return device_id

    async def require_ingest(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> str | None:
        """Allow a device token or the admin token.

        Returns:
            The device id of a device token, or None for the admin token, which
            may send events of any device.
        """
        role, device_id = await self._identify(context)
        if role is Role.READ:
            await abort(context, _forbidden(role, "a device token or the admin token"))
        return device_id

    async def require_any(self, context: grpc.aio.ServicerContext[Any, Any]) -> Role:
        """Allow any valid credential and return its role."""
        role, _ = await self._identify(context)
        return role

    async def _identify(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[Role, str | None]:
        token = _bearer_token(context.invocation_metadata() or ())
        if isinstance(token, ApiError):
            await abort(context, token)
        token_hash = hash_token(token)
        if hmac.compare_digest(token_hash, self._admin_hash):
            return Role.ADMIN, None
        if self._read_hash is not None and hmac.compare_digest(
            token_hash, self._read_hash
        ):
            return Role.READ, None
        # The registry looks devices up by the hash, never by the token, so a
        # lookup's timing reveals nothing about a valid token.
        try:
            device_id = await asyncio.to_thread(
                self._registry.device_id_for_token_hash, token_hash
            )
        except StoreError as exc:
            logger.error("Device token lookup failed: %s: %s", type(exc).__name__, exc)
            await abort(context, registry_unavailable_error(exc))
        if device_id is not None:
            return Role.DEVICE, device_id
        await abort(context, _unknown_token(token))


def _bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | ApiError:
    values = [str(value) for key, value in metadata if key == AUTHORIZATION_KEY]
    if not values:
        return _unauthenticated(
            "missing credential; send the metadata (HTTP header) "
            "'authorization: Bearer <token>'",
            "MISSING_CREDENTIAL",
        )
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # The message quotes no part of the value: a caller that left out
        # "Bearer " sent the bare token, and errors end up in logs.
        return _unauthenticated(
            "the authorization metadata is not of the form 'Bearer <token>'; "
            "send the metadata (HTTP header) 'authorization: Bearer <token>'",
            "INVALID_AUTHORIZATION_SCHEME",
        )
    return token.strip()


def registry_unavailable_error(exc: BaseException) -> ApiError:
    """Build the UNAVAILABLE error for a device registry that failed."""
    if isinstance(exc, StoreFailed):
        return store_failed_error(exc)
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"the device registry failed ({type(exc).__name__}); retry with backoff",
        "REGISTRY_UNAVAILABLE",
        {"error_type": type(exc).__name__},
    )


def _unknown_token(token: str) -> ApiError:
    if token.startswith(DEVICE_TOKEN_PREFIX):
        return _unauthenticated(
            "the device token is not valid: it was revoked, replaced by a newer "
            "token, or never issued; provision the device again or ask an "
            "operator to rotate its token",
            "INVALID_DEVICE_TOKEN",
        )
    return _unauthenticated(
        "the token is not a valid device, read or admin token; check the "
        "credential configured for this client",
        "INVALID_TOKEN",
    )


def _unauthenticated(message: str, reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message, reason)


def _forbidden(role: Role, needed: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"this call needs {needed}; the {role.value} token is not allowed",
        "CREDENTIAL_NOT_ALLOWED",
        {"role": role.value},
    )
