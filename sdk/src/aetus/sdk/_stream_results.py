"""Outcomes an EventStream reports: rejected batches and its final counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aetus.sdk._errors import AetusError
from aetus.telemetry.v1 import telemetry_pb2


@dataclass(frozen=True, slots=True)
class BatchRejected:
    """A batch the server rejected; none of its events were stored.

    Attributes:
        batch_number: Position of the batch on this EventStream, from 1. It
            stays the same when the batch is resent on a new call.
        events: The events of the batch, for logging or quarantine.
        error: The server's status for the batch, mapped to an AetusError.
    """

    batch_number: int
    events: tuple[telemetry_pb2.Event, ...]
    error: AetusError


RejectionCallback = Callable[[BatchRejected], None]


@dataclass(frozen=True, slots=True)
class StreamResult:
    """Counters of an EventStream, as returned by ``close()``.

    Attributes:
        accepted_count: Events the server stored.
        duplicate_count: Events the server had already stored, such as
            events resent after a reconnect.
        rejected_batch_count: Batches the server rejected.
        rejected_event_count: Events in the rejected batches.
        reconnect_count: Calls opened after the first one.
        resent_batch_count: Batches written again on a new call.
        unacked_event_count: Events never acked: dropped at close or at a
            permanent failure. 0 after a clean close.
        error: The permanent failure that ended the stream, or None.
    """

    accepted_count: int
    duplicate_count: int
    rejected_batch_count: int
    rejected_event_count: int
    reconnect_count: int
    resent_batch_count: int
    unacked_event_count: int
    error: AetusError | None

    @property
    def complete(self) -> bool:
        """True when every event sent was acked and no failure ended the stream."""
        return self.unacked_event_count == 0 and self.error is None
