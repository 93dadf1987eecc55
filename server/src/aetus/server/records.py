"""Normalised telemetry records: what ingest hands to the event log and store.

Ingest validates each request and turns it into one ``NormalizedBatch``. The
batch is columnar where volume is high (metric points as numpy arrays, signal
samples as the raw bytes the device sent), so a request with many thousands of
points crosses the store boundary without a Python object per point.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class EventKind(enum.IntEnum):
    """Body kind of a stored event. Values are stored, so never renumber."""

    METRICS = 1
    SIGNAL_FRAME = 2
    STATUS = 3
    ALERT = 4
    METRIC_COLUMNS = 5


class ValueType(enum.IntEnum):
    """Type of a scalar stream's values; numbers match aetus.query.v1.ValueType."""

    DOUBLE = 1
    INT64 = 2
    BOOL = 3
    STRING = 4


@dataclass(frozen=True, slots=True)
class EventKey:
    """Identity of an event: retries repeat it, and the store keeps one copy."""

    device_id: str
    boot_id: str
    sequence: int


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One accepted event: its identity, resolved time and original bytes."""

    key: EventKey
    kind: EventKind
    # Wall-clock time in ns since the Unix epoch, after uptime correction.
    time_ns: int
    # aetus.telemetry.v1.TimeSource as received, with UNSPECIFIED resolved;
    # it stays UNSPECIFIED for an event placed at its arrival time.
    time_source: int
    uptime_ms: int
    firmware_version: int
    # The serialised aetus.telemetry.v1.Event, kept for replay and debugging.
    # A signal frame's samples are left out: the stored frame contains them.
    payload: bytes


@dataclass(slots=True)
class MetricSeriesPoints:
    """Points of one scalar stream of one device within a batch, in columns.

    ``values`` is float64 for DOUBLE, int64 for INT64 and BOOL (0 or 1), and a
    list of str for STRING. Every column has one entry per point.

    ``missing`` marks readings that arrived without a value. The store keeps
    them as SQL NULL, and their entries in ``values`` are placeholders (NaN,
    0 or ""). When every point is missing, ``value_type`` is DOUBLE and the
    store uses the stream's stored type instead.
    """

    device_id: str
    name: str
    unit: str
    value_type: ValueType
    # Index into NormalizedBatch.events of the event each point came from.
    event_index: Int64Array
    time_ns: Int64Array
    values: Float64Array | Int64Array | list[str]
    # True where the reading has no value; None when every reading has one.
    missing: BoolArray | None = None


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel of a signal frame; decoded value = raw * scale + offset."""

    name: str
    unit: str
    scale: float | None = None
    offset: float | None = None


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One signal frame, with its samples exactly as the device encoded them."""

    event_index: int
    device_id: str
    stream: str
    start_time_ns: int
    sample_interval_ns: int
    sample_count: int
    # aetus.telemetry.v1.SampleEncoding and SampleLayout numbers.
    encoding: int
    layout: int
    channels: tuple[ChannelSpec, ...]
    samples: bytes


@dataclass(frozen=True, slots=True)
class DeviceEventRecord:
    """A status or alert event; ``body`` is the serialised StatusEvent or AlertEvent."""

    event_index: int
    device_id: str
    kind: EventKind
    time_ns: int
    body: bytes


@dataclass(slots=True)
class NormalizedBatch:
    """A validated request, ready to store. All of it is stored or none of it."""

    received_time_ns: int
    events: list[EventRecord] = field(default_factory=list)
    metrics: list[MetricSeriesPoints] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    device_events: list[DeviceEventRecord] = field(default_factory=list)
    # Boot start estimates (ns since the epoch) for boots whose events carried
    # only uptime. The store keeps the smallest estimate seen per boot.
    boot_times_ns: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of storing one batch."""

    accepted_count: int
    duplicate_count: int
    commit_time_ns: int


class StoreError(Exception):
    """Base class for errors raised by a telemetry store."""


class SeriesTypeConflict(StoreError):
    """A batch writes a value type that differs from the stream's stored type."""

    def __init__(
        self, event_index: int, name: str, stored: ValueType, received: ValueType
    ) -> None:
        self.event_index = event_index
        self.name = name
        self.stored = stored
        self.received = received
        super().__init__(
            f"metric {name!r} is stored as {stored.name.lower()}, "
            f"but event {event_index} sends {received.name.lower()}"
        )


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A registered device as the store keeps it."""

    device_id: str
    hardware_id: str
    model: str
    site: str
    firmware_version: int
    revoked: bool
    create_time_ns: int
    token_issue_time_ns: int
    last_seen_time_ns: int | None
    last_boot_id: str
    event_count: int


class TelemetryWriter(Protocol):
    """The write side of a store, as ingest and the event log use it.

    Methods are synchronous and thread-safe; async callers run them in a worker
    thread. Each returns only after its changes are durable on disk.
    """

    def write_many(
        self, batches: Sequence[NormalizedBatch]
    ) -> list[WriteResult | StoreError]:
        """Store several batches in one transaction and one disk sync.

        Each batch succeeds or fails on its own: a batch that raises a
        StoreError stores nothing, and its error takes its place in the result.
        Events whose key is already stored count as duplicates, and their
        points, frames and device events are skipped.
        """
        ...

    def boot_time_ns(self, device_id: str, boot_id: str) -> int | None:
        """Return the stored boot start estimate for an uptime-only boot."""
        ...


class DeviceRegistry(Protocol):
    """Devices and their token hashes. Tokens themselves are never stored."""

    def upsert_device(
        self,
        device_id: str,
        hardware_id: str,
        model: str,
        site: str,
        firmware_version: int,
        token_hash: bytes,
    ) -> DeviceRow:
        """Register a device, or replace the token of an existing one."""
        ...

    def get_device(self, device_id: str) -> DeviceRow | None: ...

    def find_device_by_hardware_id(self, hardware_id: str) -> DeviceRow | None: ...

    def device_id_for_token_hash(self, token_hash: bytes) -> str | None:
        """Return the device whose active token has this hash, or None."""
        ...

    def set_token(self, device_id: str, token_hash: bytes | None) -> DeviceRow:
        """Replace a device's token hash; None revokes it."""
        ...

    def list_devices(
        self, query: str, offset: int, limit: int
    ) -> tuple[list[DeviceRow], int]:
        """Return one page of devices, most recently seen first, and the total."""
        ...
