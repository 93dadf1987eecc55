"""gRPC errors for store failures during reads."""

from __future__ import annotations

import logging

import grpc

from aetus.server.errors import ApiError
from aetus.server.eventlog import store_failed_error
from aetus.server.records import StoreError
from aetus.server.store import StoreFailed, StoreOutOfMemory

logger = logging.getLogger(__name__)


def store_read_error(exc: StoreError) -> ApiError:
    """Map a store failure during a read to a gRPC error a caller can act on."""
    if isinstance(exc, StoreOutOfMemory):
        return ApiError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the read needed more memory than the store's limit of "
            f"{exc.limit_mb} MiB allows; request a shorter range (start_time, "
            "end_time) or a smaller max_points, or retry when fewer reads run",
            "READ_MEMORY_EXHAUSTED",
            {"memory_limit_mb": str(exc.limit_mb)},
        )
    if isinstance(exc, StoreFailed):
        return store_failed_error(exc)
    logger.error("A read failed in the store: %s: %s", type(exc).__name__, exc)
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"the store failed to read ({type(exc).__name__}); retry with backoff",
        "STORE_UNAVAILABLE",
    )
