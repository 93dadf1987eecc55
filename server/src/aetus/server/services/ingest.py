"""IngestService: unary and HTTP batches, the bidi stream with acks, and time."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence

import grpc
from google.api import httpbody_pb2
from google.protobuf import timestamp_pb2

from aetus.ingest.v1 import ingest_service_pb2, ingest_service_pb2_grpc
from aetus.server.auth import TokenAuthorizer
from aetus.server.checks import VALID_AFTER_NS
from aetus.server.errors import ApiError, abort
from aetus.server.eventlog import EventLog, storage_unavailable_error
from aetus.server.jsonbody import decode_ingest_request, encode_message
from aetus.server.normalize import NormalizedRequest, Normalizer
from aetus.server.records import SeriesTypeConflict, StoreError, WriteResult
from aetus.server.services._stream import StreamSession, rejection_log
from aetus.telemetry.v1 import telemetry_pb2

logger = logging.getLogger(__name__)


class IngestServicer(ingest_service_pb2_grpc.IngestServiceServicer):
    """Accepts telemetry and replies only after it is durable."""

    def __init__(
        self,
        *,
        normalizer: Normalizer,
        event_log: EventLog,
        authorizer: TokenAuthorizer,
        max_request_bytes: int,
        stream_read_ahead_batches: int,
    ) -> None:
        """Create the servicer.

        Args:
            normalizer: Validates and normalises batches.
            event_log: Where accepted batches go.
            authorizer: Checks credentials.
            max_request_bytes: Largest body IngestHttpBody accepts, in bytes.
            stream_read_ahead_batches: Batches of one stream read before
                earlier ones are durable.
        """
        self._normalizer = normalizer
        self._event_log = event_log
        self._authorizer = authorizer
        self._max_request_bytes = max_request_bytes
        self._read_ahead = stream_read_ahead_batches

    async def IngestEvents(
        self,
        request: ingest_service_pb2.IngestEventsRequest,
        context: grpc.aio.ServicerContext[
            ingest_service_pb2.IngestEventsRequest,
            ingest_service_pb2.IngestEventsResponse,
        ],
    ) -> ingest_service_pb2.IngestEventsResponse:
        """Store one batch; see the proto for the contract."""
        device_id = await self._authorizer.require_ingest(context)
        try:
            return await self.ingest(request.events, device_id)
        except ApiError as error:
            rejection_log.log(device_id, error)
            await abort(context, error)

    async def IngestHttpBody(
        self,
        request: httpbody_pb2.HttpBody,
        context: grpc.aio.ServicerContext[httpbody_pb2.HttpBody, httpbody_pb2.HttpBody],
    ) -> httpbody_pb2.HttpBody:
        """Store one batch posted as protobuf or JSON bytes, and reply in kind."""
        device_id = await self._authorizer.require_ingest(context)
        try:
            decoded, kind = decode_ingest_request(
                request.content_type, request.data, self._max_request_bytes
            )
            response = await self.ingest(decoded.events, device_id)
        except ApiError as error:
            rejection_log.log(device_id, error)
            await abort(context, error)
        return httpbody_pb2.HttpBody(
            content_type=kind, data=encode_message(kind, response)
        )

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[ingest_service_pb2.StreamEventsRequest],
        context: grpc.aio.ServicerContext[
            ingest_service_pb2.StreamEventsRequest,
            ingest_service_pb2.StreamEventsResponse,
        ],
    ) -> AsyncIterator[ingest_service_pb2.StreamEventsResponse]:
        """Store batches from a stream, with cumulative acks once they are durable."""
        device_id = await self._authorizer.require_ingest(context)
        session = StreamSession(self, device_id, self._read_ahead)
        async for response in session.run(request_iterator, context):
            yield response

    async def GetTime(
        self,
        request: ingest_service_pb2.GetTimeRequest,
        context: grpc.aio.ServicerContext[
            ingest_service_pb2.GetTimeRequest, ingest_service_pb2.GetTimeResponse
        ],
    ) -> ingest_service_pb2.GetTimeResponse:
        """Return the server clock to any valid credential."""
        await self._authorizer.require_any(context)
        now_ns = time.time_ns()
        server_time = timestamp_pb2.Timestamp()
        server_time.FromNanoseconds(now_ns)
        valid_after = timestamp_pb2.Timestamp()
        valid_after.FromNanoseconds(VALID_AFTER_NS)
        return ingest_service_pb2.GetTimeResponse(
            server_time=server_time,
            unix_time_ns=now_ns,
            valid_after_time=valid_after,
        )

    async def ingest(
        self, events: Sequence[telemetry_pb2.Event], device_id: str | None
    ) -> ingest_service_pb2.IngestEventsResponse:
        """Validate, normalise and durably store one batch.

        Args:
            events: The batch.
            device_id: Device of the credential, or None for the admin token.

        Raises:
            ApiError: The batch was rejected or could not be stored; nothing
                of it is acknowledged.
        """
        normalized = await self._normalizer.normalize(events, device_id=device_id)
        result = await self.append(normalized)
        return _response(result, normalized)

    async def normalize(
        self, events: Sequence[telemetry_pb2.Event], device_id: str | None
    ) -> NormalizedRequest:
        """Validate and normalise one batch; see ``Normalizer.normalize``."""
        return await self._normalizer.normalize(events, device_id=device_id)

    async def append(self, normalized: NormalizedRequest) -> WriteResult:
        """Store a normalised batch and return once it is durable.

        Raises:
            ApiError: INVALID_ARGUMENT when the store rejects the batch (a
                metric's value type differs from its stored type), or
                UNAVAILABLE when storage failed.
        """
        try:
            result = await self._event_log.append(normalized.batch)
        except SeriesTypeConflict as conflict:
            raise series_conflict_error(conflict, normalized.request_indices) from None
        except StoreError as exc:
            raise storage_unavailable_error(exc) from None
        logger.debug(
            "Stored batch of %d events: %d accepted, %d duplicates",
            len(normalized.batch.events) + normalized.duplicate_count,
            result.accepted_count,
            result.duplicate_count + normalized.duplicate_count,
        )
        return result


def series_conflict_error(
    conflict: SeriesTypeConflict, request_indices: list[int]
) -> ApiError:
    """Map a store's type conflict to INVALID_ARGUMENT naming the request's event."""
    index = request_indices[conflict.event_index]
    field = f"events[{index}]"
    stored = conflict.stored.name.lower()
    received = conflict.received.name.lower()
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: metric {conflict.name!r} is stored as {stored}, but this event "
        f"sends {received}; send {stored} values or use a new metric name",
        "SERIES_TYPE_CONFLICT",
        {
            "event_index": str(index),
            "field": field,
            "name": conflict.name,
            "stored_type": conflict.stored.name,
            "received_type": conflict.received.name,
        },
        field,
    )


def commit_timestamp(commit_time_ns: int) -> timestamp_pb2.Timestamp:
    """Convert a store commit time to a Timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(commit_time_ns)
    return stamp


def _response(
    result: WriteResult, normalized: NormalizedRequest
) -> ingest_service_pb2.IngestEventsResponse:
    return ingest_service_pb2.IngestEventsResponse(
        accepted_count=result.accepted_count,
        duplicate_count=result.duplicate_count + normalized.duplicate_count,
        commit_time=commit_timestamp(result.commit_time_ns),
    )
