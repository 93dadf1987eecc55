"""Credentials: device bearer tokens, the admin token and the read token."""

from __future__ import annotations

from typing import Protocol

import grpc


class Authorizer(Protocol):
    """Checks the caller's credential; each method aborts the RPC when it fails.

    The credential travels in the ``authorization`` metadata as
    ``Bearer <token>``. Failures end the call with UNAUTHENTICATED (no or
    unknown credential) or PERMISSION_DENIED (valid but not allowed).
    """

    async def require_admin(self, context: grpc.aio.ServicerContext) -> None:
        """Allow only the admin credential."""
        ...

    async def require_read(self, context: grpc.aio.ServicerContext) -> None:
        """Allow the read credential or the admin credential."""
        ...

    async def require_device(self, context: grpc.aio.ServicerContext) -> str:
        """Allow an active device token and return the device id it belongs to."""
        ...
