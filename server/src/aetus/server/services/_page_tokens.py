"""Page tokens of the query service: a cursor bound to the request it pages."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aetus.server.errors import invalid_argument

# Version 2 read tokens carry the median interval of each channel read.
_TOKEN_VERSION = 2


def encode_token(kind: str, scope: dict[str, Any], cursor: list[int]) -> str:
    """Encode a cursor and the request fields it belongs to as a page token."""
    body = {"v": _TOKEN_VERSION, "k": kind, **scope, "c": cursor}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str, scope: dict[str, Any]) -> list[int] | None:
    """Return a page token's cursor after checking it belongs to this request."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        cursor = [int(value) for value in body["c"]]
        valid = body["v"] == _TOKEN_VERSION and body["k"] == kind
    except (binascii.Error, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise invalid_argument(
            "page_token is not a token this service issued; pass "
            "next_page_token from the previous response unchanged",
            field="page_token",
        )
    if any(body.get(key) != value for key, value in scope.items()):
        raise invalid_argument(
            "page_token was issued for a different request; repeat the "
            "request with the same device, stream and range",
            field="page_token",
        )
    return cursor
