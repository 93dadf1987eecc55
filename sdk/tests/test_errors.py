"""gRPC status to exception mapping, retriable flags and rich details."""

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2

from aetus.sdk import (
    AetusError,
    AuthenticationError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    UnavailableError,
    error_from_status,
)

Code = grpc.StatusCode


@pytest.mark.parametrize(
    ("code", "cls", "retriable"),
    [
        (Code.INVALID_ARGUMENT, InvalidArgumentError, False),
        (Code.OUT_OF_RANGE, InvalidArgumentError, False),
        (Code.FAILED_PRECONDITION, InvalidArgumentError, False),
        (Code.UNAUTHENTICATED, AuthenticationError, False),
        (Code.PERMISSION_DENIED, PermissionDeniedError, False),
        (Code.NOT_FOUND, NotFoundError, False),
        (Code.RESOURCE_EXHAUSTED, ResourceExhaustedError, True),
        (Code.UNAVAILABLE, UnavailableError, True),
        (Code.ABORTED, UnavailableError, True),
        (Code.DEADLINE_EXCEEDED, DeadlineExceededError, True),
        (Code.INTERNAL, ServerError, False),
        (Code.UNIMPLEMENTED, ServerError, False),
        (Code.UNKNOWN, ServerError, False),
    ],
    ids=lambda value: value.name if isinstance(value, Code) else None,
)
def test_errors_code_maps_to_class(
    code: grpc.StatusCode, cls: type[AetusError], retriable: bool
) -> None:
    error = error_from_status(code, "message")

    assert type(error) is cls
    assert isinstance(error, AetusError)
    assert error.retriable is retriable
    assert error.code is code
    assert str(error) == f"{code.name}: message"


def test_errors_numeric_code_accepted() -> None:
    assert type(error_from_status(3, "bad")) is InvalidArgumentError
    assert type(error_from_status(99, "?")) is ServerError


def test_errors_size_limit_not_retriable() -> None:
    error = error_from_status(
        Code.RESOURCE_EXHAUSTED, "Received message larger than max (5 vs. 4)"
    )

    assert error.retriable is False


def test_errors_details_are_read() -> None:
    details = []
    for message in (
        error_details_pb2.ErrorInfo(
            reason="INVALID_EVENT", domain="aetus.dev", metadata={"event_index": "3"}
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field="events[3].boot_id", description="required"
                )
            ]
        ),
        error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(nanos=250_000_000)
        ),
    ):
        packed = any_pb2.Any()
        packed.Pack(message)
        details.append(packed)

    error = error_from_status(
        Code.INVALID_ARGUMENT, "events[3].boot_id: required", details
    )

    assert error.reason == "INVALID_EVENT"
    assert error.metadata == {"event_index": "3"}
    assert error.field_violations == [("events[3].boot_id", "required")]
    assert error.retry_delay_s == 0.25
