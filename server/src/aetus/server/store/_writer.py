"""Writing a group of batches inside one open transaction.

DuckDB has no savepoints, so a batch is made atomic by checking everything
that can reject it (value types, frame bytes) before the group's first write.
After that only a database failure can stop the group, and the caller rolls
back the whole transaction for that.

Each DuckDB statement has a fixed cost of about a millisecond. So the rows of
all batches of a group go to each table in one statement, one INSERT per fact
table and one UPDATE per set of totals, however many batches the group holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from aetus.server.records import (
    MetricSeriesPoints,
    NormalizedBatch,
    SeriesTypeConflict,
    StoreError,
    ValueType,
)
from aetus.server.store._codec import (
    ChannelSummary,
    FrameDecodeError,
    summarize_frame,
)
from aetus.server.store._dimensions import DimensionRows
from aetus.server.store._frames_writer import FrameRows
from aetus.server.store._keys import Keys
from aetus.server.store._parts import insert_parts
from aetus.server.store._points_writer import PointRows, object_array

BoolArray = npt.NDArray[np.bool_]
SeriesId = tuple[str, str]

# Event payloads up to this size stay in events.payload; larger ones go to
# event_payloads in parts. DuckDB 2.0 gives strings of 256 KiB or more blocks
# of their own (see _parts.py), so 64 KiB keeps inline payloads in shared
# blocks while typical batches of a few thousand points avoid the part table.
INLINE_PAYLOAD_MAX_BYTES = 65_536


class InvalidFrame(StoreError):
    """A signal frame whose bytes do not decode; the batch stores nothing."""


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Events stored and events skipped as duplicates for one batch."""

    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A batch that passed the checks, with what the checks worked out."""

    batch: NormalizedBatch
    # Stored value type of every series the batch writes.
    types: dict[SeriesId, ValueType]
    # Per-channel statistics of each frame, in batch order.
    summaries: list[list[ChannelSummary]]


class GroupChecker:
    """Checks the batches of one group in order, before anything is written.

    A series created by an earlier accepted batch of the group has the type
    that batch gives it, as if that batch were already stored.
    """

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._planned: dict[SeriesId, ValueType] = {}

    def check(self, batch: NormalizedBatch) -> CheckedBatch:
        """Check one batch and return it with its series types and frames.

        Raises:
            SeriesTypeConflict: A series receives values of another type than
                it has (an int64 into a double series is allowed).
            InvalidFrame: A frame's bytes do not match its encoding and size.
        """
        types = self._plan_types(batch)
        summaries = summarize_frames(batch)
        self._planned.update(types)
        return CheckedBatch(batch, types, summaries)

    def _plan_types(self, batch: NormalizedBatch) -> dict[SeriesId, ValueType]:
        received: dict[SeriesId, list[MetricSeriesPoints]] = {}
        for points in batch.metrics:
            if len(points.time_ns):
                received.setdefault((points.device_id, points.name), []).append(points)

        planned: dict[SeriesId, ValueType] = {}
        for series, parts in received.items():
            target = self._known_type(*series) or _new_series_type(parts)
            for part in parts:
                if not _compatible(target, part):
                    raise SeriesTypeConflict(
                        int(part.event_index[0]), series[1], target, part.value_type
                    )
            planned[series] = target
        return planned

    def _known_type(self, device_id: str, name: str) -> ValueType | None:
        planned = self._planned.get((device_id, name))
        if planned is not None:
            return planned
        device_key = self._keys.devices.get(device_id)
        if device_key is None:
            return None
        stored = self._keys.series.get((device_key, name))
        return None if stored is None else stored.value_type


def summarize_frames(batch: NormalizedBatch) -> list[list[ChannelSummary]]:
    """Decode every frame of the batch and return its per-channel statistics.

    Frames are decoded in chunks, so a frame up to the gRPC message limit
    never needs its whole float64 copy in memory.

    Raises:
        InvalidFrame: A frame's bytes do not match its encoding and size.
    """
    summaries = []
    for frame in batch.frames:
        try:
            summaries.append(
                summarize_frame(
                    frame.samples,
                    frame.encoding,
                    frame.layout,
                    frame.sample_count,
                    frame.channels,
                )
            )
        except FrameDecodeError as exc:
            raise InvalidFrame(
                f"Signal frame {frame.stream!r} of event {frame.event_index} "
                f"cannot be decoded: {exc}"
            ) from exc
    return summaries


def _new_series_type(parts: list[MetricSeriesPoints]) -> ValueType:
    """Return the type of a new series: that of its values, double if it has none."""
    typed = [part for part in parts if not _all_missing(part)]
    received = {part.value_type for part in typed}
    if not typed or received == {ValueType.DOUBLE, ValueType.INT64}:
        return ValueType.DOUBLE
    return typed[0].value_type


def _compatible(stored: ValueType, part: MetricSeriesPoints) -> bool:
    """Return whether ``part`` may be stored in a series of type ``stored``.

    Missing readings fit any type, and int64 values fit a double series.
    """
    received = part.value_type
    return (
        received == stored
        or (stored == ValueType.DOUBLE and received == ValueType.INT64)
        or _all_missing(part)
    )


def _all_missing(part: MetricSeriesPoints) -> bool:
    return part.missing is not None and bool(part.missing.all())


@dataclass(frozen=True, slots=True)
class _GroupEvents:
    """Keys of a group's events and which of them were stored as new.

    Event i of the group (counting through the batches in order) has key
    ``first_key + i``; ``offsets[b]`` is the group index of batch b's first
    event.
    """

    first_key: int
    offsets: list[int]
    new: BoolArray

    def of_batch(
        self, index: int, count: int
    ) -> tuple[BoolArray, npt.NDArray[np.int64]]:
        """Return the new-mask and event keys of batch ``index``."""
        start = self.offsets[index]
        keys = np.arange(count, dtype=np.int64) + (self.first_key + start)
        return self.new[start : start + count], keys


def write_group(
    db: duckdb.DuckDBPyConnection, keys: Keys, group: list[CheckedBatch]
) -> list[BatchCounts]:
    """Write checked batches in one open transaction; return counts per batch.

    An event whose identity (device, boot, sequence) is already stored, or
    appears earlier in the group, is a duplicate: its points, frames and
    device events are skipped, and the first occurrence wins.
    """
    dimensions = DimensionRows(keys)
    events = _insert_events(db, dimensions, group)
    points = PointRows(dimensions)
    frames = FrameRows(dimensions)
    for index, checked in enumerate(group):
        _queue_batch(dimensions, points, frames, checked, events, index)
    points.queue_new_series()
    device_events = _device_event_rows(dimensions, group, events)
    estimates = _boot_estimates(dimensions, group)
    dimensions.flush(db)

    points.write(db)
    frames.write(db)
    _insert_device_events(db, device_events)
    _update_boot_times(db, estimates)
    _update_devices(db, dimensions, group, events)

    counts = []
    for index, checked in enumerate(group):
        new, _ = events.of_batch(index, len(checked.batch.events))
        accepted = int(new.sum())
        counts.append(BatchCounts(accepted, len(new) - accepted))
    return counts


def _queue_batch(
    dimensions: DimensionRows,
    points: PointRows,
    frames: FrameRows,
    checked: CheckedBatch,
    events: _GroupEvents,
    index: int,
) -> None:
    """Queue the points and frames of one batch's new events."""
    batch = checked.batch
    new, event_keys = events.of_batch(index, len(batch.events))
    for part in batch.metrics:
        if not len(part.event_index):
            continue
        keep = new[part.event_index]
        if keep.any():
            target = checked.types[(part.device_id, part.name)]
            points.add(part, target, keep, event_keys, batch.received_time_ns)
    for frame, summaries in zip(batch.frames, checked.summaries, strict=True):
        if new[frame.event_index]:
            device_key = dimensions.device(frame.device_id, batch.received_time_ns)
            event_key = int(event_keys[frame.event_index])
            frames.add(frame, summaries, event_key, device_key)


def _insert_events(
    db: duckdb.DuckDBPyConnection, dimensions: DimensionRows, group: list[CheckedBatch]
) -> _GroupEvents:
    """Insert the group's events and mark which were stored as new.

    Only the first occurrence of an identity within the group is offered to
    the database, and ON CONFLICT skips identities stored before.
    """
    offsets: list[int] = []
    total = 0
    for checked in group:
        offsets.append(total)
        total += len(checked.batch.events)
    first = dimensions.keys.allocate("events", total)
    new = np.zeros(total, dtype=np.bool_)
    rows = _event_rows(dimensions, group)
    if not rows["position"]:
        return _GroupEvents(first, offsets, new)

    event_frame = {  # noqa: F841  # read by DuckDB's replacement scan
        "event_key": np.array(rows["position"], dtype=np.int64) + first,
        "device_key": np.array(rows["device_key"], dtype=np.int32),
        "boot_key": np.array(rows["boot_key"], dtype=np.int32),
        "sequence": np.array(rows["sequence"], dtype=np.uint64),
        "kind": np.array(rows["kind"], dtype=np.int8),
        "time_ns": np.array(rows["time_ns"], dtype=np.int64),
        "time_source": np.array(rows["time_source"], dtype=np.int8),
        "uptime_ms": np.array(rows["uptime_ms"], dtype=np.uint64),
        "firmware_version": np.array(rows["firmware_version"], dtype=np.uint32),
        "received_time_ns": np.array(rows["received_time_ns"], dtype=np.int64),
        "payload": object_array(_inline_payload(item) for item in rows["payload"]),
    }
    inserted = db.execute(
        "INSERT INTO events SELECT event_key, device_key, boot_key, sequence, "
        "kind, time_ns, time_source, uptime_ms, firmware_version, "
        "received_time_ns, payload FROM event_frame "
        "ON CONFLICT DO NOTHING RETURNING event_key"
    ).fetchnumpy()["event_key"]
    new[np.asarray(inserted, dtype=np.int64) - first] = True
    _insert_large_payloads(db, rows, first, new)
    return _GroupEvents(first, offsets, new)


def _inline_payload(payload: object) -> bytes:
    """Return what events.payload stores: the payload, or b"" if it goes in parts."""
    assert isinstance(payload, bytes)
    return b"" if len(payload) > INLINE_PAYLOAD_MAX_BYTES else payload


def _insert_large_payloads(
    db: duckdb.DuckDBPyConnection,
    rows: dict[str, list[object]],
    first: int,
    new: BoolArray,
) -> None:
    keys: list[int] = []
    payloads: list[bytes] = []
    for position, payload in zip(rows["position"], rows["payload"], strict=True):
        assert isinstance(position, int) and isinstance(payload, bytes)
        if len(payload) > INLINE_PAYLOAD_MAX_BYTES and new[position]:
            keys.append(first + position)
            payloads.append(payload)
    insert_parts(db, "event_payloads", keys, payloads)


_EVENT_COLUMNS = (
    "position",
    "device_key",
    "boot_key",
    "sequence",
    "kind",
    "time_ns",
    "time_source",
    "uptime_ms",
    "firmware_version",
    "received_time_ns",
    "payload",
)


def _event_rows(
    dimensions: DimensionRows, group: list[CheckedBatch]
) -> dict[str, list[object]]:
    """Return the event columns of the first occurrence of each identity."""
    rows: dict[str, list[object]] = {name: [] for name in _EVENT_COLUMNS}
    seen: set[tuple[str, str, int]] = set()
    position = -1
    for checked in group:
        now = checked.batch.received_time_ns
        for event in checked.batch.events:
            position += 1
            key = event.key
            identity = (key.device_id, key.boot_id, key.sequence)
            if identity in seen:
                continue
            seen.add(identity)
            device_key = dimensions.device(key.device_id, now)
            boot_key = dimensions.boot(device_key, key.boot_id, now)
            values = (
                position,
                device_key,
                boot_key,
                key.sequence,
                int(event.kind),
                event.time_ns,
                event.time_source,
                event.uptime_ms,
                event.firmware_version,
                now,
                event.payload,
            )
            for name, value in zip(_EVENT_COLUMNS, values, strict=True):
                rows[name].append(value)
    return rows


DeviceEventRow = tuple[int, int, int, int, bytes]


def _device_event_rows(
    dimensions: DimensionRows, group: list[CheckedBatch], events: _GroupEvents
) -> list[DeviceEventRow]:
    """Return (event key, device key, kind, time, body) of new device events."""
    rows: list[DeviceEventRow] = []
    for index, checked in enumerate(group):
        batch = checked.batch
        new, event_keys = events.of_batch(index, len(batch.events))
        for item in batch.device_events:
            if new[item.event_index]:
                device_key = dimensions.device(item.device_id, batch.received_time_ns)
                event_key = int(event_keys[item.event_index])
                rows.append(
                    (event_key, device_key, int(item.kind), item.time_ns, item.body)
                )
    return rows


def _insert_device_events(
    db: duckdb.DuckDBPyConnection, rows: list[DeviceEventRow]
) -> None:
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    device_event_frame = {  # noqa: F841  # read by DuckDB's replacement scan
        "event_key": np.array(columns[0], dtype=np.int64),
        "device_key": np.array(columns[1], dtype=np.int32),
        "kind": np.array(columns[2], dtype=np.int8),
        "time_ns": np.array(columns[3], dtype=np.int64),
        "body": object_array(columns[4]),
    }
    db.execute("INSERT INTO device_events SELECT * FROM device_event_frame")


def _boot_estimates(
    dimensions: DimensionRows, group: list[CheckedBatch]
) -> dict[int, int]:
    """Return the smallest boot start estimate of the group per boot key."""
    estimates: dict[int, int] = {}
    for checked in group:
        now = checked.batch.received_time_ns
        for (device_id, boot_id), estimate in checked.batch.boot_times_ns.items():
            device_key = dimensions.device(device_id, now)
            boot_key = dimensions.boot(device_key, boot_id, now)
            estimates[boot_key] = min(estimate, estimates.get(boot_key, estimate))
    return estimates


def _update_boot_times(
    db: duckdb.DuckDBPyConnection, estimates: dict[int, int]
) -> None:
    """Keep the smallest boot start estimate seen for each boot."""
    if not estimates:
        return
    boot_estimates = {  # noqa: F841  # read by DuckDB's replacement scan
        "boot_key": np.fromiter(estimates, dtype=np.int32, count=len(estimates)),
        "estimate": np.fromiter(
            estimates.values(), dtype=np.int64, count=len(estimates)
        ),
    }
    db.execute(
        "UPDATE boots SET boot_time_ns = "
        "least(coalesce(boots.boot_time_ns, t.estimate), t.estimate) "
        "FROM boot_estimates AS t WHERE boots.boot_key = t.boot_key"
    )


def _update_devices(
    db: duckdb.DuckDBPyConnection,
    dimensions: DimensionRows,
    group: list[CheckedBatch],
    events: _GroupEvents,
) -> None:
    """Record last-seen time, last boot and the count of stored events.

    The last boot of a device is the boot of its last event in group order,
    duplicates included, as if the batches were written one after another.
    """
    counts: dict[int, int] = {}
    last_boot: dict[int, str] = {}
    last_seen: dict[int, int] = {}
    for index, checked in enumerate(group):
        batch = checked.batch
        new, _ = events.of_batch(index, len(batch.events))
        for event, is_new in zip(batch.events, new.tolist(), strict=True):
            key = dimensions.device(event.key.device_id, batch.received_time_ns)
            counts[key] = counts.get(key, 0) + int(is_new)
            last_boot[key] = event.key.boot_id
            seen = last_seen.get(key, batch.received_time_ns)
            last_seen[key] = max(seen, batch.received_time_ns)
    if not counts:
        return
    device_updates = {  # noqa: F841  # read by DuckDB's replacement scan
        "device_key": np.fromiter(counts, dtype=np.int32, count=len(counts)),
        "count": np.array([counts[key] for key in counts], dtype=np.int64),
        "seen": np.array([last_seen[key] for key in counts], dtype=np.int64),
        "boot_id": object_array(last_boot[key] for key in counts),
    }
    db.execute(
        "UPDATE devices SET event_count = devices.event_count + t.count, "
        "last_seen_time_ns = greatest(coalesce(devices.last_seen_time_ns, t.seen), "
        "t.seen), last_boot_id = t.boot_id "
        "FROM device_updates AS t WHERE devices.device_key = t.device_key"
    )
