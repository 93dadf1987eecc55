"""Rich gRPC errors: a canonical code, a readable message and details.

Every rejection carries a ``google.rpc.Status`` with an ``ErrorInfo`` (an
UPPER_SNAKE reason in the ``aetus.dev`` domain plus the dynamic values as
metadata) and, for invalid input, a ``BadRequest`` naming the field. Envoy's
transcoder turns the same status into the mapped HTTP status and a JSON body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "aetus.dev"


@dataclass
class ApiError(Exception):
    """An error that ends an RPC with a rich status.

    Attributes:
        code: Canonical gRPC status code.
        message: Sentence that names the value, the limit or rule, and the fix.
        reason: UPPER_SNAKE ErrorInfo reason, for example ``INVALID_EVENT``.
        metadata: Dynamic values of the error, such as the event index.
        field: Path of the offending field, for example
            ``events[3].signal_frame.samples``; empty when no field is at fault.
    """

    code: grpc.StatusCode
    message: str
    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    field: str = ""

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def to_status_proto(self) -> status_pb2.Status:
        """Build the google.rpc.Status that carries this error."""
        details: list[any_pb2.Any] = []
        info = error_details_pb2.ErrorInfo(
            reason=self.reason,
            domain=ERROR_DOMAIN,
            metadata={key: str(value) for key, value in self.metadata.items()},
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        details.append(packed)
        if self.field:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=self.field, description=self.message
                    )
                ]
            )
            packed = any_pb2.Any()
            packed.Pack(bad_request)
            details.append(packed)
        return status_pb2.Status(
            code=_code_number(self.code), message=self.message, details=details
        )

    def to_grpc_status(self) -> grpc.Status:
        """Build the status object that ``context.abort_with_status`` takes."""
        return rpc_status.to_status(self.to_status_proto())


def invalid_argument(
    message: str,
    *,
    field: str = "",
    reason: str = "INVALID_ARGUMENT",
    **metadata: object,
) -> ApiError:
    """Build an INVALID_ARGUMENT error for a field."""
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        reason,
        {key: str(value) for key, value in metadata.items()},
        field,
    )


async def abort(
    context: grpc.aio.ServicerContext[Any, Any], error: ApiError
) -> NoReturn:
    """End the RPC with ``error``'s status and details."""
    await context.abort_with_status(error.to_grpc_status())
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def _code_number(code: grpc.StatusCode) -> int:
    number = code.value[0]
    assert isinstance(number, int)
    if number not in code_pb2.Code.values():
        raise ValueError(f"unknown gRPC status code {code!r}")
    return number
