"""HTTP fallback: a batch as an ``application/x-protobuf`` POST to ``/v1/ingest``.

For networks where HTTP/2 to the server is blocked, the Envoy front door
accepts the encoded IngestEventsRequest as a plain HTTP/1.1 POST and replies
with the encoded IngestEventsResponse. Errors come back as the mapped HTTP
status with a JSON ``google.rpc.Status`` body and a ``grpc-status`` header.
A ``grpc-status`` header always wins over the HTTP status, because a gRPC-HTTP
bridge may reply to a failed call with HTTP 200.
"""

from __future__ import annotations

import http.client
import urllib.parse

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2

from aetus.ingest.v1 import ingest_service_pb2
from aetus.sdk._errors import (
    AetusError,
    DeadlineExceededError,
    UnavailableError,
    error_from_status,
    error_from_status_proto,
)

PROTOBUF = "application/x-protobuf"
INGEST_PATH = "/v1/ingest"

# The standard HTTP-to-gRPC mapping of the statuses a front door returns.
_CODE_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def post_ingest(
    base_url: str, body: bytes, token: str, timeout_s: float
) -> ingest_service_pb2.IngestEventsResponse:
    """POST one encoded IngestEventsRequest and decode the reply (blocking).

    Args:
        base_url: ``http://host:port`` of the front door.
        body: The encoded IngestEventsRequest.
        token: Bearer token; empty sends none.
        timeout_s: Socket timeout of the connection and of each read.

    Returns:
        The decoded IngestEventsResponse.

    Raises:
        ValueError: ``base_url`` is not an http:// or https:// URL.
        AetusError: The request failed; the class follows the gRPC code.
    """
    connection = _connect(base_url, timeout_s)
    headers = {"content-type": PROTOBUF, "accept": PROTOBUF}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", INGEST_PATH, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    except TimeoutError as exc:
        raise DeadlineExceededError(
            f"no reply from {base_url} within {timeout_s} s"
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise UnavailableError(
            f"POST to {base_url}{INGEST_PATH} failed: {exc}"
        ) from exc
    finally:
        connection.close()

    error = _reply_error(response, payload)
    if error is not None:
        raise error
    return ingest_service_pb2.IngestEventsResponse.FromString(payload)


def _connect(base_url: str, timeout_s: float) -> http.client.HTTPConnection:
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"http_url={base_url!r} is not valid; use http://host:port, for "
            "example http://127.0.0.1:8080"
        )
    if parsed.scheme == "https":
        return http.client.HTTPSConnection(
            parsed.hostname, parsed.port, timeout=timeout_s
        )
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout_s)


def _reply_error(
    response: http.client.HTTPResponse, payload: bytes
) -> AetusError | None:
    grpc_status = response.getheader("grpc-status")
    if grpc_status is not None and grpc_status.strip() not in ("", "0"):
        return _error_from_body(int(grpc_status), response, payload)
    if response.status == 200:
        return None
    code = _CODE_BY_HTTP_STATUS.get(response.status, grpc.StatusCode.UNKNOWN)
    error = _error_from_body(code.value[0], response, payload)
    if response.status == 413:
        error.retriable = False  # The same body is too large every time.
    return error


def _error_from_body(
    code: int, response: http.client.HTTPResponse, payload: bytes
) -> AetusError:
    """Build the error from a JSON google.rpc.Status body or the grpc-message."""
    try:
        status = json_format.Parse(
            payload, status_pb2.Status(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, UnicodeDecodeError):
        status = None
    if status is not None and status.message:
        status.code = code
        return error_from_status_proto(status)
    message = urllib.parse.unquote(response.getheader("grpc-message") or "")
    if not message:
        text = payload[:200].decode("utf-8", errors="replace")
        message = f"HTTP {response.status} {response.reason}: {text}".strip()
    return error_from_status(code, message)
