"""Exceptions of the AETUS SDK and the one place that maps gRPC codes to them.

AetusError                  base; ``retriable`` is True when a retry can help
├── InvalidArgumentError    INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION
├── AuthenticationError     UNAUTHENTICATED
├── PermissionDeniedError   PERMISSION_DENIED
├── NotFoundError           NOT_FOUND
├── ResourceExhaustedError  RESOURCE_EXHAUSTED (retriable unless a size limit)
├── UnavailableError        UNAVAILABLE, ABORTED (retriable)
├── DeadlineExceededError   DEADLINE_EXCEEDED (retriable)
├── ServerError             INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED, ...
└── StreamClosedError       an EventStream that was closed or failed for good
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Details of the INTERNAL status that grpc.aio (1.85) sets on a call when
# sending a message fails inside the library.
_LOCAL_CORE_ERROR = "Internal error from Core"


class AetusError(Exception):
    """Base class of every error the SDK raises for a failed call.

    Attributes:
        retriable: True when sending the same request again can succeed.
        code: The gRPC status code, or None for an error raised locally.
        message: The server's message, or the local one.
        reason: ErrorInfo reason from the server, for example
            ``INVALID_EVENT``; empty when the server sent none.
        metadata: ErrorInfo metadata: the dynamic values of the error.
        field_violations: (field path, description) pairs from a BadRequest.
        retry_delay_s: Delay the server asked for before a retry (RetryInfo),
            or None.
    """

    retriable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[tuple[str, str]] = (),
        retry_delay_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations = list(field_violations)
        self.retry_delay_s = retry_delay_s

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.code.name}: {self.message}"


class InvalidArgumentError(AetusError):
    """The server rejected the request's content. Fix the input; do not retry."""


class AuthenticationError(AetusError):
    """The credential is missing, unknown or revoked."""


class PermissionDeniedError(AetusError):
    """The credential is valid but may not do this, for example write another
    device's events."""


class NotFoundError(AetusError):
    """The named device or stream does not exist."""


class ResourceExhaustedError(AetusError):
    """A rate limit or a size limit was hit. Rate limits are retriable."""


class UnavailableError(AetusError):
    """The server could not be reached or could not serve the call now."""

    retriable = True


class DeadlineExceededError(AetusError):
    """The call's deadline passed before the server replied.

    The server may still have stored the events, which is why retries keep
    the events' identity: the server then counts them as duplicates.
    """

    retriable = True


class ServerError(AetusError):
    """The server failed in a way a retry is not expected to fix."""


class StreamClosedError(AetusError):
    """An EventStream was used after ``close()`` or after it failed for good."""


_CLASS_BY_CODE: dict[grpc.StatusCode, type[AetusError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidArgumentError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.ABORTED: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}

_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {
    code.value[0]: code for code in grpc.StatusCode
}

# Phrases of gRPC's own size-limit errors ("Received message larger than max
# (N vs. M)", "Sent message larger than max") and ErrorInfo reasons of size
# limits. Sending the same request again hits the same limit.
_SIZE_LIMIT_PHRASES = ("larger than max", "too large", "exceeds the limit")
_SIZE_LIMIT_REASONS = frozenset(
    {"MESSAGE_TOO_LARGE", "REQUEST_TOO_LARGE", "BATCH_TOO_LARGE", "TOO_MANY_EVENTS"}
)


def error_from_status(
    code: grpc.StatusCode | int, message: str, details: Sequence[any_pb2.Any] = ()
) -> AetusError:
    """Build the SDK exception for a gRPC status.

    Args:
        code: Status code, as ``grpc.StatusCode`` or its number.
        message: Status message.
        details: ``google.protobuf.Any`` details of a ``google.rpc.Status``.

    Returns:
        An instance of the AetusError subclass mapped from ``code``.
    """
    if isinstance(code, int):
        code = _CODE_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    reason, metadata, violations, retry_delay_s = _read_details(details)
    cls = _CLASS_BY_CODE.get(code, ServerError)
    error = cls(
        message,
        code=code,
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        retry_delay_s=retry_delay_s,
    )
    if cls is ResourceExhaustedError:
        lowered = message.lower()
        is_size_limit = reason in _SIZE_LIMIT_REASONS or any(
            phrase in lowered for phrase in _SIZE_LIMIT_PHRASES
        )
        error.retriable = not is_size_limit
    return error


def error_from_status_proto(status: status_pb2.Status) -> AetusError:
    """Build the SDK exception for a ``google.rpc.Status`` message."""
    return error_from_status(status.code, status.message, list(status.details))


def error_from_rpc_error(exc: grpc.aio.AioRpcError) -> AetusError:
    """Build the SDK exception for a failed call, reading its rich status.

    Args:
        exc: The error raised by a grpc.aio call.

    Returns:
        The mapped exception. The caller raises it ``from exc``.
    """
    code = exc.code()
    message = exc.details() or ""
    if code == grpc.StatusCode.INTERNAL and message == _LOCAL_CORE_ERROR:
        # grpc.aio reports a write that raced with the end of the call this
        # way, which hides the server's status. A new call shows it.
        return UnavailableError(
            "the call ended while a message was being written "
            f"({exc.debug_error_string()})",
            code=grpc.StatusCode.UNAVAILABLE,
        )
    details: list[any_pb2.Any] = []
    trailing = exc.trailing_metadata() or ()
    for key, value in trailing:
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            break
        details = list(status.details)
        message = status.message or message
    return error_from_status(code, message, details)


def _read_details(
    details: Sequence[any_pb2.Any],
) -> tuple[str, dict[str, str], list[tuple[str, str]], float | None]:
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    retry_delay_s: float | None = None
    for packed in details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry_info = error_details_pb2.RetryInfo()
        if packed.Unpack(info):
            reason = info.reason
            metadata.update(info.metadata)
        elif packed.Unpack(bad_request):
            violations.extend(
                (item.field, item.description) for item in bad_request.field_violations
            )
        elif packed.Unpack(retry_info):
            retry_delay_s = retry_info.retry_delay.ToTimedelta().total_seconds()
    return reason, metadata, violations, retry_delay_s
